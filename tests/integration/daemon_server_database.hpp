// Shared by the daemon tests that need a server database user other than the
// suite's owner (the password-file user pe_secret, the least-privileged user
// pe_least of .ci/databases): the per-backend variables of
// /var/tmp/pe-databases/env, a configuration writer, and cleanup.
#pragma once

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/throughput_store.hpp"
#include "program_executor/store/dialect.hpp"
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

/// A YAML single-quoted scalar; "$${" keeps the loader from expanding "${".
inline std::string yaml_quoted(const std::string& text) {
  std::string quoted = "'";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\'') {
      quoted += "''";
    } else if (text.compare(i, 2, "${") == 0) {
      quoted += "$$";
    } else {
      quoted += text[i];
    }
  }
  return quoted + "'";
}

/// The suite's database for one test (PE_TEST_DATABASE, default sqlite3: a
/// file in `dir`), with a table of the test's own. A configured server that
/// cannot be reached fails the test.
inline config::DatabaseSettings suite_database(const std::filesystem::path& dir) {
  config::DatabaseSettings settings;
  const char* backend = std::getenv("PE_TEST_DATABASE");
  settings.backend = backend != nullptr && *backend != '\0' ? backend : "sqlite3";
  settings.table = unique_name("pe_it");
  if (settings.backend == "sqlite3") {
    settings.connection = "db=" + (dir / "programs.db").string();
    return settings;
  }
  const char* connection = std::getenv("PE_TEST_DATABASE_CONNECTION");
  if (connection == nullptr || *connection == '\0') {
    FAIL("PE_TEST_DATABASE=" << settings.backend
                             << " needs PE_TEST_DATABASE_CONNECTION (see .ci/databases)");
  }
  settings.connection = connection;
  try {
    store::Database probe(settings, 1);
  } catch (const std::exception& e) {
    FAIL("the configured test database (" << settings.backend << ") is unreachable: " << e.what());
  }
  return settings;
}

struct DaemonConfig {
  std::string amqp_url;
  std::string queue;
  std::string backend;
  std::string connection;
  std::string password_file;  ///< written as is: may be ${CREDENTIALS_DIRECTORY}/...
  std::string table;
  bool migrate = true;
  int workers = 2;
  std::string plugin_dir = test::demo_plugin_dir().string();
  std::string extra_yaml;  ///< more top-level sections, written as is
};

inline void write_config(const std::filesystem::path& path, const DaemonConfig& config) {
  std::ofstream out(path);
  out << "amqp:\n"
      << "  url: " << yaml_quoted(config.amqp_url) << "\n"
      << "  queue: " << config.queue << "\n"
      << "  heartbeat_seconds: 5\n"
      << "database:\n"
      << "  backend: " << config.backend << "\n"
      << "  connection: " << yaml_quoted(config.connection) << "\n";
  if (!config.password_file.empty()) out << "  password_file: " << config.password_file << "\n";
  out << "  table: " << config.table << "\n"
      << "  migrate: " << (config.migrate ? "true" : "false") << "\n"
      << "plugins:\n"
      << "  directory: " << config.plugin_dir << "\n"
      << "workers: " << config.workers << "\n"
      << "shutdown_grace_seconds: 10\n"
      << "log:\n"
      << "  level: debug\n"
      << "  format: json\n"
      << "metrics:\n"
      << "  listen: \"\"\n"
      << config.extra_yaml;
  REQUIRE(out.good());
}

/// Drops the table of a test and its version table, as the owner; deletes its queues.
inline void drop_deployment(const config::DatabaseSettings& owner, const std::string& amqp_url,
                            const std::string& queue) noexcept {
  try {
    store::Database database(owner, 1);
    soci::session session(database.pool());
    for (const std::string& table : {owner.table, store::schema_version_table(owner.table),
                                      store::throughput_table(owner.table),
                                      store::attempts_table(owner.table)}) {
      session << "DROP TABLE IF EXISTS " + database.dialect().quote(table);
    }
  } catch (const std::exception&) {
  }
  try {
    amqp::Connection connection(amqp::parse_url(amqp_url, {}, 0), "test cleanup");
    for (const auto& q : {queue, queue + "-retry-1000", queue + "-parked"}) {
      connection.delete_queue(q);
    }
  } catch (const std::exception&) {
  }
}

}  // namespace program_executor::test
