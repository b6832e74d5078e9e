// Shared by the daemon tests that need a server database user other than the
// suite's owner (the password-file user pe_secret, the least-privileged user
// pe_least of .ci/databases): the per-backend variables of
// /var/tmp/pe-databases/env, and suite_database, the suite's backend for a
// test::Deployment (support/deployment.hpp writes the config and cleans up).
#pragma once

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/throughput_store.hpp"
#include "program_executor/store/dialect.hpp"
#include "support/deployment.hpp"
#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/program_cli.hpp"
#include "support/test_environment.hpp"

namespace program_executor::test {

inline std::string env_text(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value != nullptr ? std::string(value) : std::string();
}

/// PE_TEST_DATABASE, or "" when it is sqlite3 (these tests need a server).
inline std::string server_backend_name() {
  const std::string backend = env_text("PE_TEST_DATABASE");
  return backend == "sqlite3" ? std::string() : backend;
}

/// PE_TEST_<BACKEND>_<kind>_CONNECTION (kind SECRET, LEAST), which .ci/test
/// exports by sourcing the env file of .ci/databases. Missing: under CI a
/// failure, locally a warning; nullopt either way.
inline std::optional<std::string> per_backend_connection(const std::string& backend,
                                                         const std::string& kind) {
  std::string name = "PE_TEST_";
  for (const char c : backend) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  name += "_" + kind + "_CONNECTION";
  const std::string value = env_text(name);
  if (!value.empty()) return value;
  if (running_in_ci()) {
    FAIL(name << " is not set: source the env file of .ci/databases");
  }
  WARN("SKIPPED: " << name << " is not set (source /var/tmp/pe-databases/env)");
  return std::nullopt;
}

/// The suite's database for one test (PE_TEST_DATABASE, default sqlite3: a
/// file in `dir`), with a table of the test's own. A configured server that
/// cannot be reached fails the test.
inline config::DatabaseSettings suite_database(const std::filesystem::path& dir) {
  config::DatabaseSettings settings;
  const char* backend = std::getenv("PE_TEST_DATABASE");
  settings.backend =
      store::parse_backend(backend != nullptr && *backend != '\0' ? backend : "sqlite3");
  settings.table = unique_name("pe_it");
  if (settings.backend == config::DatabaseBackend::sqlite3) {
    settings.connection = "db=" + (dir / "programs.db").string();
    return settings;
  }
  const char* connection = std::getenv("PE_TEST_DATABASE_CONNECTION");
  if (connection == nullptr || *connection == '\0') {
    FAIL("PE_TEST_DATABASE=" << to_string(settings.backend)
                             << " needs PE_TEST_DATABASE_CONNECTION (see .ci/databases)");
  }
  settings.connection = connection;
  try {
    store::Database probe(settings, 1);
  } catch (const std::exception& e) {
    FAIL("the configured test database (" << to_string(settings.backend) << ") is unreachable: " << e.what());
  }
  return settings;
}


/// A Deployment's database (DeploymentOptions::database): the server
/// `backend` reached through `connection`, on a table of the test's own.
inline std::function<config::DatabaseSettings(const std::filesystem::path&)> server_database(
    const std::string& backend, const std::string& connection) {
  return [backend, connection](const std::filesystem::path&) {
    config::DatabaseSettings database;
    database.backend = store::parse_backend(backend);
    database.connection = connection;
    database.table = unique_name("pe_it");
    return database;
  };
}

}  // namespace program_executor::test
