// The database the store integration tests run against, chosen like the rest
// of the integration suite: PE_TEST_DATABASE (sqlite3, postgresql, mysql or
// odbc; default sqlite3, a file in a temporary directory) and
// PE_TEST_DATABASE_CONNECTION (the SOCI connection string; .ci/databases
// prints them). A configured database that cannot be reached fails the test.
#pragma once

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/throughput_store.hpp"
#include "program_executor/store/dialect.hpp"
#include "support/test_environment.hpp"

namespace program_executor::test {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

inline std::string test_backend() { return env_or("PE_TEST_DATABASE", "sqlite3"); }
inline bool server_backend() { return test_backend() != "sqlite3"; }

/// Settings for `table` on the configured test database.
inline config::DatabaseSettings test_database_settings(const TemporaryDirectory& dir,
                                                       const std::string& table) {
  config::DatabaseSettings settings;
  settings.backend = store::parse_backend(test_backend());
  settings.table = table;
  if (settings.backend == config::DatabaseBackend::sqlite3) {
    settings.connection = "db=" + (dir.path() / "programs.db").string();
  } else {
    settings.connection = env_or("PE_TEST_DATABASE_CONNECTION", "");
    if (settings.connection.empty()) {
      FAIL("PE_TEST_DATABASE=" << to_string(settings.backend)
                               << " needs PE_TEST_DATABASE_CONNECTION (see .ci/databases)");
    }
  }
  return settings;
}

/// A table of its own for one test (so tests run in parallel on one server
/// database), dropped with its schema version table at the end.
class ScratchTable {
 public:
  ScratchTable() : ScratchTable(unique_name("pe_store")) {}
  explicit ScratchTable(std::string name)
      : name_(std::move(name)), settings_(test_database_settings(dir_, name_)) {
    drop();  // a leftover of an aborted run
  }
  ~ScratchTable() { drop(); }
  ScratchTable(const ScratchTable&) = delete;
  ScratchTable& operator=(const ScratchTable&) = delete;

  const std::string& name() const noexcept { return name_; }
  const config::DatabaseSettings& settings() const noexcept { return settings_; }
  const TemporaryDirectory& dir() const noexcept { return dir_; }

  /// Opens the database, failing the test (not skipping) if it is unreachable.
  std::unique_ptr<store::Database> open(std::size_t pool_size = 2) const {
    try {
      return std::make_unique<store::Database>(settings_, pool_size);
    } catch (const std::exception& e) {
      FAIL("the configured test database (" << to_string(settings_.backend) << ") is unreachable: " << e.what());
    }
    return nullptr;
  }

 private:
  void drop() noexcept {
    if (settings_.backend == config::DatabaseBackend::sqlite3) return;  // the directory goes away
    try {
      store::Database database(settings_, 1);
      soci::session session(database.pool());
      for (const std::string& table :
           {name_, store::schema_version_table(name_), store::throughput_table(name_),
            store::attempts_table(name_)}) {
        session << "DROP TABLE IF EXISTS " + database.dialect().quote(table);
      }
    } catch (const std::exception&) {
      // Unreachable: the test itself reports it.
    }
  }

  TemporaryDirectory dir_;
  std::string name_;
  config::DatabaseSettings settings_;
};

/// Runs a file of SQL (same rules as the migrations: {table}, {run_id_index},
/// {overdue_index}, statements end with ';' at a line end) against `database`.
inline void run_sql_file(store::Database& database, const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  store::Migration file;
  file.name = path;
  file.sql.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  soci::session session(database.pool());
  for (const std::string& statement :
       store::migration_statements(file, database.dialect(), database.table())) {
    session << statement;
  }
}

inline std::string fixture_sql(const store::Database& database, const std::string& file) {
  return std::string(PE_SOURCE_DIR) + "/tests/fixtures/sql/" +
         std::string(database.dialect().name()) + "/" + file;
}

}  // namespace program_executor::test
