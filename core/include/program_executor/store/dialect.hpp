// What differs between the SQL databases the store runs on. Only the store
// includes this; SOCI stays private to core.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace soci {
class session;
}  // namespace soci

namespace program_executor::store {

/// The SQL of one database product. The SOCI backend says how we connect
/// (sqlite3, postgresql, mysql, odbc); the dialect says what SQL the server
/// behind it speaks (ODBC borrows the dialect of the server it reaches).
/// Every method returns SQL text or runs fixed SQL; values are always bound.
class Dialect {
 public:
  virtual ~Dialect() = default;

  /// "sqlite3", "postgresql" or "mysql": also the folder of its migrations (core/sql/<name>).
  virtual std::string_view name() const noexcept = 0;

  /// An identifier (already validated as [A-Za-z_][A-Za-z0-9_]*) quoted for this database.
  virtual std::string quote(std::string_view identifier) const = 0;

  /// The current time, as stored in timestamp columns (UTC).
  virtual std::string now() const = 0;
  /// The current time plus the milliseconds bound to `:parameter` (a long long; may be negative).
  virtual std::string now_plus(std::string_view parameter) const = 0;
  /// A timestamp column read back as UTC ISO 8601 text "YYYY-MM-DDTHH:MM:SS.mmmZ",
  /// whatever the session time zone.
  virtual std::string timestamp_text(std::string_view column) const = 0;

  /// A JSON column read back as text.
  virtual std::string json_text(std::string_view column) const = 0;
  /// A varchar(n) column read back whole. SOCI's ODBC backend sizes its
  /// buffer from the declared length, counted in characters, but receives
  /// UTF-8 bytes, so non-ASCII text in a varchar(255) would come back cut.
  virtual std::string varchar_text(std::string_view column) const { return std::string(column); }
  /// The length of the JSON array in `column`, NULL when it holds no valid
  /// array; empty when the dialect has no such expression (the store then
  /// reads a row before claiming its step).
  virtual std::string json_array_length(std::string_view /*column*/) const { return ""; }
  /// True when the job list in `column` (a JSON array of job names) holds the
  /// job whose JSON string (quotes included) is bound to `:parameter`: exact,
  /// no wildcards, case counts (what LIKE would not promise). PostgreSQL's
  /// form is served by the jobs index of migration 5.
  virtual std::string job_list_contains(std::string_view column, std::string_view parameter) const = 0;
  /// The text of the string at 0-based position `index` (an SQL expression)
  /// of the JSON array in `column`; NULL when there is none.
  virtual std::string json_array_text_at(std::string_view column, std::string_view index) const = 0;
  /// The whole milliseconds from timestamp `from` to timestamp `to` (SQL
  /// expressions), as an integer.
  virtual std::string milliseconds_between(std::string_view from, std::string_view to) const = 0;
  /// The JSON text bound to `:parameter`, as written into a JSON column.
  virtual std::string json_value(std::string_view parameter) const = 0;

  /// Whether UPDATE ... RETURNING works through every SOCI backend that
  /// reaches this database: the store then claims or commits a batch of steps
  /// in one statement, and claims a step before reading its row (with
  /// json_array_length). PostgreSQL (natively and behind ODBC, there in the
  /// form of update_returning_rows) and SQLite (since 3.35) have it;
  /// MySQL and MariaDB have no such UPDATE, so a batch is one transaction of
  /// single-row statements there.
  virtual bool update_returning() const noexcept { return false; }
  /// `update`, an UPDATE ... RETURNING, written so that it yields a result
  /// set even when it changes no row. psqlODBC reports no result set for an
  /// UPDATE ... RETURNING that matched nothing, and fetching from it fails
  /// ("invalid cursor state"); a SELECT from it as a data-modifying WITH
  /// always has one. Elsewhere the statement as it is.
  virtual std::string update_returning_rows(std::string update) const { return update; }
  /// Whether a statement prepared once per session and kept there is parsed
  /// and planned once (PostgreSQL, natively or through psqlODBC; SQLite
  /// compiles it once): the store then keeps the statements every step runs.
  /// False for MySQL, whose SOCI backend prepares on the client only.
  virtual bool prepares_on_server() const noexcept { return false; }
  /// Whether an UPDATE ... RETURNING may feed an INSERT in the same statement
  /// (a data-modifying WITH): native PostgreSQL. A step's commit and its
  /// attempt are then one statement, atomic without a transaction. Not
  /// behind ODBC, whose update_returning_rows already wraps the UPDATE in a
  /// WITH, and a data-modifying WITH may not be nested.
  virtual bool data_modifying_with() const noexcept { return false; }
  /// Whether the database runs inside this process (SQLite): a statement
  /// costs no round trip, so a batch runs a kept single-row statement once
  /// per row, in one transaction, rather than compiling a statement of the
  /// batch's size each time (SQLite's parse of many named parameters grows
  /// faster than the batch).
  virtual bool in_process() const noexcept { return false; }

  /// What follows "SELECT <values>" to make a one-row SELECT with a WHERE clause
  /// (" FROM DUAL" on MySQL, nothing elsewhere).
  virtual std::string from_dual() const { return ""; }
  /// What ends a SELECT that locks its row until the transaction ends
  /// (" FOR UPDATE"; nothing on SQLite, whose write transaction locks the file).
  virtual std::string lock_rows() const = 0;

  /// A transaction that will write: SQLite takes the write lock up front
  /// (BEGIN IMMEDIATE), so two of them never deadlock on the upgrade.
  virtual void begin_write(soci::session& session) const;
  virtual void commit(soci::session& session) const;
  virtual void rollback(soci::session& session) const;

  /// Run on every new or re-established session: time zone UTC, isolation,
  /// character set, journal mode (whatever the dialect needs).
  virtual void prepare_session(soci::session& session) const = 0;
  /// A statement that fails on a dead connection and costs nothing otherwise.
  virtual std::string ping() const { return "SELECT 1"; }

  /// Catalog queries (unquoted names, in the session's default schema/database).
  virtual bool table_exists(soci::session& session, const std::string& table) const = 0;
  virtual std::vector<std::string> columns(soci::session& session, const std::string& table) const = 0;
  virtual bool index_exists(soci::session& session, const std::string& table,
                            const std::string& index) const = 0;

  /// Whether DDL takes part in transactions (PostgreSQL, SQLite: a failed
  /// migration leaves nothing behind; MySQL commits each DDL statement).
  virtual bool transactional_ddl() const noexcept = 0;
  /// Serialises migrations between processes, from begin to end: a
  /// transaction plus an advisory lock, a write transaction, or a named lock.
  virtual void begin_migration(soci::session& session, const std::string& table) const = 0;
  virtual void end_migration(soci::session& session, const std::string& table, bool success) const = 0;
  /// CREATE TABLE IF NOT EXISTS for the schema version table (`quoted` name).
  virtual std::string version_table_ddl(const std::string& quoted) const = 0;
};

/// The dialect called `name` ("sqlite3", "postgresql", "mysql"); throws StoreError otherwise.
std::unique_ptr<Dialect> make_dialect(std::string_view name);

/// The dialect of the server behind an open ODBC session, from what it says
/// it is (`SELECT version()`): PostgreSQL or MySQL/MariaDB. Throws StoreError
/// for a server without a dialect yet (MSSQL, Oracle: see docs/databases.md).
std::unique_ptr<Dialect> detect_odbc_dialect(soci::session& session);

}  // namespace program_executor::store
