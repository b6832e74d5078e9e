#include "program_executor/store/database.hpp"

#include <algorithm>
#include <regex>
#include <utility>
#include <vector>

#include <soci/soci.h>

#include "program_executor/log/logger.hpp"
#include "program_executor/store/sql_program_store.hpp"

namespace program_executor::store {
namespace {

// The table name is pasted into SQL, so it is checked again here even though
// the config loader validated it: nothing from outside reaches SQL unchecked.
void require_identifier(const std::string& name) {
  static const std::regex identifier("^[A-Za-z_][A-Za-z0-9_]{0,62}$");
  if (!std::regex_match(name, identifier)) {
    throw StoreError("invalid table name '" + name +
                     "': use letters, digits and underscores, starting with a letter");
  }
}

// SOCI searches "." first by default; a backend must only ever come from the
// directory the project was built against (or SOCI_BACKENDS_PATH set by the
// operator, which SOCI reads itself).
void pin_backend_search_path() {
  static const bool pinned = [] {
    auto& paths = soci::dynamic_backends::search_paths();
    paths.clear();
    paths.emplace_back(PE_SOCI_BACKEND_DIR);
    return true;
  }();
  (void)pinned;
}

std::string sqlite_connection_string(std::string connection) {
  // Without a busy timeout SQLite fails at once when another writer holds the lock.
  if (connection.find("timeout=") == std::string::npos) connection += " timeout=30";
  return connection;
}

}  // namespace

Backend parse_backend(const std::string& name) {
  if (name == "sqlite3") return Backend::sqlite3;
  throw StoreError("unsupported database backend '" + name + "' (supported: sqlite3)");
}

Database::Database(const config::DatabaseSettings& settings, std::size_t pool_size)
    : backend_(parse_backend(settings.backend)),
      table_(settings.table),
      pool_size_(pool_size == 0 ? 1 : pool_size),
      pool_(std::make_unique<soci::connection_pool>(pool_size_)) {
  require_identifier(table_);
  pin_backend_search_path();
  const std::string connection = sqlite_connection_string(settings.connection);
  for (std::size_t i = 0; i < pool_size_; ++i) {
    soci::session& session = pool_->at(i);
    try {
      session.open("sqlite3", connection);
      // WAL lets readers run while one writer commits; several workers and
      // several daemons share one file this way without "database is locked".
      std::string mode;
      session << "PRAGMA journal_mode=WAL", soci::into(mode);
      session << "PRAGMA busy_timeout=30000";
    } catch (const soci::soci_error& e) {
      throw StoreError("cannot open database (" + settings.backend + "): " + e.what());
    }
  }
}

Database::~Database() = default;

void Database::ensure_schema() {
  soci::session session(*pool_);
  const std::string q = "\"" + table_ + "\"";
  const std::string now = "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))";
  try {
    session << "CREATE TABLE IF NOT EXISTS " + q +
                   " (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                   " run_id VARCHAR(255) NOT NULL,"
                   " jobs TEXT NOT NULL,"
                   " step INTEGER NOT NULL DEFAULT 0,"
                   " finished_at TIMESTAMP NULL,"
                   " errored_at TIMESTAMP NULL,"
                   " error_message VARCHAR(255) NULL,"
                   " step_retry_count INTEGER NOT NULL DEFAULT 0,"
                   " job_data TEXT NOT NULL DEFAULT '{}',"
                   " program_data TEXT NOT NULL DEFAULT '{}',"
                   " created_at TIMESTAMP NOT NULL DEFAULT " + now + ","
                   " updated_at TIMESTAMP NOT NULL DEFAULT " + now + ")";
    // The step protocol's columns, added to tables created without them (by
    // an earlier version or by program-executor-js, which ignores them).
    soci::rowset<soci::row> columns = session.prepare << "PRAGMA table_info(" + q + ")";
    std::vector<std::string> present;
    for (const auto& column : columns) present.push_back(column.get<std::string>(1));
    const std::pair<const char*, const char*> protocol_columns[] = {
        {"lease_owner", "VARCHAR(255) NULL"},
        {"lease_token", "BIGINT NOT NULL DEFAULT 0"},
        {"lease_until", "TIMESTAMP NULL"},
        {"step_crash_count", "INTEGER NOT NULL DEFAULT 0"},
    };
    for (const auto& [name, type] : protocol_columns) {
      if (std::find(present.begin(), present.end(), name) == present.end()) {
        session << "ALTER TABLE " + q + " ADD COLUMN " + name + " " + type;
      }
    }
    session << "CREATE INDEX IF NOT EXISTS \"" + table_ + "_overdue_index\" ON " + q +
                   " (lease_until) WHERE finished_at IS NULL AND errored_at IS NULL";
    // Unique where we create the table: run ids must never collide (the
    // original's index is not unique; its digit run ids can).
    session << "CREATE UNIQUE INDEX IF NOT EXISTS \"" + table_ + "_run_id_index\" ON " + q +
                   " (run_id)";
  } catch (const soci::soci_error& e) {
    throw StoreError("cannot create table " + table_ + ": " + e.what());
  }
  log::event(log::Level::debug, "database.schema_ready", "", {{"table", table_}});
}

std::unique_ptr<ProgramStore> Database::program_store() {
  return std::make_unique<SqlProgramStore>(*this);
}

}  // namespace program_executor::store
