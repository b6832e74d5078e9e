// The connection to the bookkeeping database: a SOCI session pool, the SQL
// dialect of its server, and the table's versioned schema.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "program_executor/config/config.hpp"
#include "program_executor/store/migrations.hpp"
#include "program_executor/store/program_store.hpp"

namespace soci {
class connection_pool;
class session;
}  // namespace soci

namespace program_executor::store {

class Dialect;

/// How we connect: the SOCI backend, loaded at run time (database.backend).
using Backend = config::DatabaseBackend;

/// "sqlite3", "postgresql", "mysql" or "odbc", for tools that take the name on
/// their command line; throws StoreError naming the supported ones.
Backend parse_backend(std::string_view name);

/// The SOCI connection string for `connection` as configured: sqlite3 gets a
/// busy timeout, mysql:// and mariadb:// URLs become SOCI parameters,
/// PostgreSQL key=value strings get a connect timeout (libpq reads
/// postgresql:// URLs itself). Throws StoreError for a URL of another backend.
std::string soci_connection_string(Backend backend, const std::string& connection);

class Database {
 public:
  /// Opens `pool_size` sessions. Throws DatabaseUnreachableError (a
  /// StoreError) when the server did not answer, StoreError when it answered
  /// and refused or the settings are wrong. SOCI loads backends only from the directory this project was
  /// built against (never the working directory).
  Database(const config::DatabaseSettings& settings, std::size_t pool_size);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Makes the table usable: with database.migrate (the default), applies the
  /// missing migrations (creating the table if missing, adopting one created by
  /// program-executor-js); otherwise only checks that the schema is current and
  /// throws StoreError naming `program-executor migrate` if it is not. Either way
  /// the table must have every column the store uses.
  void ensure_schema();

  /// Applies the missing migrations of `migrations` (default: the built-in ones
  /// of this dialect) under a lock shared with every other process, records them
  /// in the schema version table and never drops data. Idempotent.
  MigrationReport migrate();
  MigrationReport migrate(const std::vector<Migration>& migrations);

  /// Where the schema stands (reads only; needs no DDL privilege).
  SchemaStatus schema_status();
  SchemaStatus schema_status(const std::vector<Migration>& migrations);

  /// A ProgramStore over this database; shares the pool, thread-safe.
  /// `history`: whether the store writes the attempt history (history.enabled).
  std::unique_ptr<ProgramStore> program_store(bool history = true);

  /// Called (on the thread that reconnected) each time a lost session is
  /// re-established, e.g. to count it. Set before the database is shared.
  void on_reconnect(std::function<void()> listener) { reconnect_listener_ = std::move(listener); }

  Backend backend() const noexcept { return backend_; }
  const Dialect& dialect() const noexcept { return *dialect_; }
  const std::string& table() const noexcept { return table_; }
  soci::connection_pool& pool() noexcept { return *pool_; }

 private:
  friend class SessionLease;
  struct Slot {
    bool lost = false;                ///< connection gone: re-establish before use
    std::uint64_t checked_epoch = 0;  ///< loss_epoch_ when last known good
    /// SessionLease::kept(); cleared before the session reconnects.
    std::map<std::string, std::shared_ptr<void>> kept;
  };

  void open_session(soci::session& session);
  void reconnect(soci::session& session, Slot& slot);
  std::vector<std::string> missing_columns(soci::session& session);

  Backend backend_;
  std::string table_;
  std::string connection_;  ///< SOCI connection string (may hold a password: never logged)
  bool migrate_on_start_;
  std::chrono::milliseconds reconnect_timeout_;
  std::size_t pool_size_;
  std::unique_ptr<soci::connection_pool> pool_;
  std::unique_ptr<Dialect> dialect_;
  std::vector<Slot> slots_;  ///< per pool position; only its lessee touches it
  /// Bumped whenever a session finds its connection gone (e.g. a server
  /// restart): every other session then checks its own before its next use.
  std::atomic<std::uint64_t> loss_epoch_{0};
  std::function<void()> reconnect_listener_;
};

/// A session borrowed from the pool for one operation (RAII). A session whose
/// connection was lost is re-established when borrowed, retrying with backoff
/// for up to database.reconnect_timeout_seconds, else StoreError.
class SessionLease {
 public:
  explicit SessionLease(Database& database);
  ~SessionLease();
  SessionLease(const SessionLease&) = delete;
  SessionLease& operator=(const SessionLease&) = delete;

  soci::session& session() const noexcept { return *session_; }

  /// After a failed statement: true if the connection is gone, in which case
  /// the session is re-established at its next lease (and the other pooled
  /// sessions are checked before their next use).
  bool connection_lost() noexcept;
  /// The same, when the error already said the connection is gone.
  void mark_lost() noexcept;

  /// An object kept with this pooled session, by key, for as long as its
  /// connection lasts (empty until set): statements prepared once on the
  /// connection and run again on every step. Dropped before the session
  /// reconnects (a SOCI statement refers to the connection it was prepared
  /// on) and by drop_kept().
  std::shared_ptr<void>& kept(const std::string& key);
  /// Drops every kept object of this session, e.g. after a failed statement.
  void drop_kept() noexcept;

 private:
  Database& database_;
  std::size_t position_;
  soci::session* session_;
};

}  // namespace program_executor::store
