#include "program_executor/store/dialect.hpp"

#include <chrono>
#include <cstdint>
#include <thread>

#include <soci/soci.h>

#include "program_executor/store/program_store.hpp"

namespace program_executor::store {
namespace {

std::string concat(std::initializer_list<std::string_view> parts) {
  std::string text;
  for (std::string_view part : parts) text += part;
  return text;
}

int count(soci::session& session, const std::string& sql, const std::string& a) {
  int n = 0;
  session << sql, soci::into(n), soci::use(a);
  return n;
}

int count(soci::session& session, const std::string& sql, const std::string& a,
          const std::string& b) {
  int n = 0;
  session << sql, soci::into(n), soci::use(a), soci::use(b);
  return n;
}

std::vector<std::string> strings(soci::session& session, const std::string& sql,
                                 const std::string& parameter) {
  std::vector<std::string> values;
  soci::rowset<std::string> rows = (session.prepare << sql, soci::use(parameter));
  for (const std::string& value : rows) values.push_back(value);
  return values;
}

// ---- SQLite -------------------------------------------------------------------

constexpr std::string_view sqlite_utc = "'%Y-%m-%dT%H:%M:%fZ'";

class SqliteDialect final : public Dialect {
 public:
  std::string_view name() const noexcept override { return "sqlite3"; }
  std::string quote(std::string_view identifier) const override {
    return concat({"\"", identifier, "\""});
  }
  std::string now() const override { return concat({"strftime(", sqlite_utc, ", 'now')"}); }
  std::string now_plus(std::string_view parameter) const override {
    // A date modifier such as "-60.0 seconds", computed from the bound milliseconds.
    return concat({"strftime(", sqlite_utc, ", 'now', (:", parameter, " / 1000.0) || ' seconds')"});
  }
  std::string timestamp_text(std::string_view column) const override {
    // Our rows hold ISO text already; knex on SQLite writes JavaScript dates
    // as integer milliseconds and CURRENT_TIMESTAMP as "YYYY-MM-DD HH:MM:SS".
    return concat({"CASE WHEN typeof(", column, ") = 'integer' THEN strftime(", sqlite_utc, ", ",
                   column, " / 1000.0, 'unixepoch') ELSE strftime(", sqlite_utc, ", ", column,
                   ") END"});
  }
  // An expression, not the bare column: for a column whose declared type it
  // does not know (the original's "json"), SOCI's SQLite backend runs the
  // statement once to look at a value, then resets and runs it again, which
  // would apply an UPDATE ... RETURNING twice.
  std::string json_text(std::string_view column) const override {
    return concat({"CAST(", column, " AS TEXT)"});
  }
  // The job's JSON string in the list's text; instr() compares bytes: exact,
  // where LIKE ignores ASCII case.
  std::string job_list_contains(std::string_view column, std::string_view parameter) const override {
    return "instr(" + json_text(column) + ", :" + std::string(parameter) + ") > 0";
  }
  // json_array_length fails the statement on text that is not JSON (and
  // gives 0 for JSON that is no array, which no step matches: steps start at 0
  // and a message has at least one job left).
  std::string json_array_length(std::string_view column) const override {
    return concat({"CASE WHEN json_valid(", column, ") THEN json_array_length(", column, ") END"});
  }
  std::string json_value(std::string_view parameter) const override {
    return concat({":", parameter});
  }
  std::string json_array_text_at(std::string_view column, std::string_view index) const override {
    return concat({"CASE WHEN json_valid(", column, ") THEN json_extract(", column, ", '$[' || (",
                   index, ") || ']') END"});
  }
  std::string milliseconds_between(std::string_view from, std::string_view to) const override {
    return concat({"CAST(ROUND((julianday(", to, ") - julianday(", from, ")) * 86400000.0) AS INTEGER)"});
  }
  std::string lock_rows() const override { return ""; }
  bool update_returning() const noexcept override { return true; }
  bool prepares_on_server() const noexcept override { return true; }
  bool in_process() const noexcept override { return true; }
  // SQLite's plain BEGIN takes a read lock first and fails with "database is
  // locked" when two such transactions both upgrade; BEGIN IMMEDIATE takes the
  // write lock up front and waits on the busy timeout instead.
  void begin_write(soci::session& session) const override { session << "BEGIN IMMEDIATE"; }
  void commit(soci::session& session) const override { session << "COMMIT"; }
  void rollback(soci::session& session) const override { session << "ROLLBACK"; }
  void prepare_session(soci::session& session) const override {
    // The busy timeout first, so that everything after it waits for a lock
    // instead of failing at once.
    session << "PRAGMA busy_timeout=30000";
    // WAL lets readers run while one writer commits; several workers and
    // several daemons share one file this way without "database is locked".
    // Switching a new file to WAL needs it to itself: when two processes open
    // it at the same moment, the loser may be told "locked" even with a busy
    // timeout, so it tries again for a while.
    std::string mode;
    for (int attempt = 1;; ++attempt) {
      try {
        session << "PRAGMA journal_mode=WAL", soci::into(mode);
        return;
      } catch (const soci::soci_error&) {
        if (attempt == 100) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
  bool table_exists(soci::session& session, const std::string& table) const override {
    return count(session, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = :name",
                 table) > 0;
  }
  std::vector<std::string> columns(soci::session& session, const std::string& table) const override {
    return strings(session, "SELECT name FROM pragma_table_info(:name) ORDER BY cid", table);
  }
  bool index_exists(soci::session& session, const std::string& /*table*/,
                    const std::string& index) const override {
    return count(session, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = :name",
                 index) > 0;
  }
  bool transactional_ddl() const noexcept override { return true; }
  void begin_migration(soci::session& session, const std::string& /*table*/) const override {
    begin_write(session);
  }
  void end_migration(soci::session& session, const std::string& /*table*/,
                     bool success) const override {
    success ? commit(session) : rollback(session);
  }
  std::string version_table_ddl(const std::string& quoted) const override {
    return "CREATE TABLE IF NOT EXISTS " + quoted +
           " (version INTEGER NOT NULL PRIMARY KEY, description VARCHAR(255) NOT NULL,"
           " applied_at TIMESTAMP NOT NULL)";
  }
};

// ---- PostgreSQL -----------------------------------------------------------------

// FNV-1a: a stable 32-bit key for the advisory lock of one table's migrations.
std::int32_t lock_key(const std::string& text) {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return static_cast<std::int32_t>(hash);
}

class PostgresDialect final : public Dialect {
 public:
  /// `through_odbc`: reached through psqlODBC rather than libpq.
  explicit PostgresDialect(bool through_odbc = false) : through_odbc_(through_odbc) {}
  std::string_view name() const noexcept override { return "postgresql"; }
  std::string quote(std::string_view identifier) const override {
    return concat({"\"", identifier, "\""});
  }
  std::string now() const override { return "now()"; }
  std::string now_plus(std::string_view parameter) const override {
    return concat({"(now() + :", parameter, " * INTERVAL '1 millisecond')"});
  }
  std::string timestamp_text(std::string_view column) const override {
    // AT TIME ZONE 'UTC' turns a timestamptz into UTC wall time whatever the
    // session's TimeZone (reading it as text or std::tm would use the session's).
    // The CAST gives the text a declared length: psqlODBC reports a text
    // result as a long column, for which SOCI's ODBC backend allocates a
    // 100 MiB buffer per read (odbc_max_buffer_length).
    return concat({"CAST(to_char(", column,
                   " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS varchar(32))"});
  }
  // CAST rather than "::": SOCI's ODBC backend would take ":text" for a parameter.
  std::string json_text(std::string_view column) const override {
    return concat({"CAST(", column, " AS text)"});
  }
  // Containment, written as the jobs index of migration 5 is built (the same
  // CAST), so the planner can use it.
  std::string job_list_contains(std::string_view column, std::string_view parameter) const override {
    return concat({"CAST(", column, " AS jsonb) @> jsonb_build_array(CAST(:", parameter, " AS jsonb))"});
  }
  // Four bytes per character: the buffer then holds any 255 characters of
  // UTF-8 (we write at most 255), without becoming a long column.
  std::string varchar_text(std::string_view column) const override {
    return concat({"CAST(", column, " AS varchar(1020))"});
  }
  // CAST to json serves json, jsonb (ours) and text columns alike; CASE keeps
  // json_array_length from failing the statement on a row that holds no array.
  std::string json_array_length(std::string_view column) const override {
    return concat({"CASE WHEN json_typeof(CAST(", column, " AS json)) = 'array' THEN json_array_length(CAST(",
                   column, " AS json)) END"});
  }
  // Explicit, because psqlODBC sends parameters as varchar, which PostgreSQL
  // does not assign to jsonb implicitly.
  std::string json_value(std::string_view parameter) const override {
    return concat({"CAST(:", parameter, " AS jsonb)"});
  }
  std::string json_array_text_at(std::string_view column, std::string_view index) const override {
    return concat({"(CASE WHEN json_typeof(CAST(", column, " AS json)) = 'array' THEN CAST(", column,
                   " AS json) ->> (", index, ") END)"});
  }
  std::string milliseconds_between(std::string_view from, std::string_view to) const override {
    return concat({"CAST(ROUND(EXTRACT(EPOCH FROM (", to, ") - (", from, ")) * 1000) AS bigint)"});
  }
  std::string lock_rows() const override { return " FOR UPDATE"; }
  bool update_returning() const noexcept override { return true; }
  std::string update_returning_rows(std::string update) const override {
    if (!through_odbc_) return update;
    return "WITH changed AS (" + update + ") SELECT * FROM changed";
  }
  bool prepares_on_server() const noexcept override { return true; }
  bool data_modifying_with() const noexcept override { return !through_odbc_; }
  void prepare_session(soci::session& session) const override {
    session << "SET TIME ZONE 'UTC'";
    // NOTICEs (e.g. "relation already exists, skipping") would go to stderr through libpq.
    session << "SET client_min_messages TO warning";
  }
  bool table_exists(soci::session& session, const std::string& table) const override {
    // to_regclass resolves the name as our queries do (search_path).
    return count(session, "SELECT count(*) FROM pg_catalog.pg_class WHERE oid = to_regclass(:name)",
                 quote(table)) > 0;
  }
  std::vector<std::string> columns(soci::session& session, const std::string& table) const override {
    return strings(session,
                   "SELECT CAST(attname AS text) FROM pg_catalog.pg_attribute"
                   " WHERE attrelid = to_regclass(:name) AND attnum > 0 AND NOT attisdropped"
                   " ORDER BY attnum",
                   quote(table));
  }
  bool index_exists(soci::session& session, const std::string& /*table*/,
                    const std::string& index) const override {
    return table_exists(session, index);  // an index is a relation too
  }
  bool transactional_ddl() const noexcept override { return true; }
  void begin_migration(soci::session& session, const std::string& table) const override {
    session.begin();
    // Held until the transaction ends: a second daemon starting at the same
    // time waits here, then finds the schema current.
    int locked = 0;
    session << "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(28773, " +
                   std::to_string(lock_key(table)) + ")) AS migration_lock",
        soci::into(locked);
  }
  void end_migration(soci::session& session, const std::string& /*table*/,
                     bool success) const override {
    success ? session.commit() : session.rollback();
  }
  std::string version_table_ddl(const std::string& quoted) const override {
    return "CREATE TABLE IF NOT EXISTS " + quoted +
           " (version integer NOT NULL PRIMARY KEY, description varchar(255) NOT NULL,"
           " applied_at timestamptz NOT NULL)";
  }

 private:
  bool through_odbc_;
};

// ---- MySQL / MariaDB -------------------------------------------------------------

// A named lock per database and table, hashed to fit GET_LOCK's 64 characters.
constexpr const char* mysql_lock_name =
    "CONCAT('pe_migrate_', SHA1(CONCAT(DATABASE(), '.', :name)))";

class MysqlDialect final : public Dialect {
 public:
  std::string_view name() const noexcept override { return "mysql"; }
  std::string quote(std::string_view identifier) const override {
    return concat({"`", identifier, "`"});
  }
  std::string now() const override { return "UTC_TIMESTAMP(3)"; }
  std::string now_plus(std::string_view parameter) const override {
    return concat({"TIMESTAMPADD(MICROSECOND, :", parameter, " * 1000, UTC_TIMESTAMP(3))"});
  }
  std::string timestamp_text(std::string_view column) const override {
    // DATETIME(3) holds UTC (we write UTC_TIMESTAMP); TIMESTAMP columns (knex's
    // choice) are converted to the session time zone, which we set to UTC.
    return concat({"CONCAT(LEFT(DATE_FORMAT(", column, ", '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z')"});
  }
  std::string json_text(std::string_view column) const override { return std::string(column); }
  // As bytes: the connection's collation would ignore case.
  std::string job_list_contains(std::string_view column, std::string_view parameter) const override {
    return "INSTR(CAST(" + json_text(column) + " AS BINARY), CAST(:" + std::string(parameter) +
           " AS BINARY)) > 0";
  }
  std::string json_value(std::string_view parameter) const override {
    return concat({":", parameter});
  }
  std::string from_dual() const override { return " FROM DUAL"; }
  std::string json_array_text_at(std::string_view column, std::string_view index) const override {
    return concat({"JSON_UNQUOTE(JSON_EXTRACT(", column, ", CONCAT('$[', ", index, ", ']')))"});
  }
  std::string milliseconds_between(std::string_view from, std::string_view to) const override {
    return concat({"(TIMESTAMPDIFF(MICROSECOND, ", from, ", ", to, ") DIV 1000)"});
  }
  std::string lock_rows() const override { return " FOR UPDATE"; }
  void prepare_session(soci::session& session) const override {
    session << "SET NAMES utf8mb4";
    session << "SET time_zone = '+00:00'";
    // READ COMMITTED: locking reads take no gap locks, so concurrent claims
    // and program inserts never wait on each other's neighbouring rows.
    session << "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";
  }
  bool table_exists(soci::session& session, const std::string& table) const override {
    return count(session,
                 "SELECT COUNT(*) FROM information_schema.tables"
                 " WHERE table_schema = DATABASE() AND table_name = :name",
                 table) > 0;
  }
  std::vector<std::string> columns(soci::session& session, const std::string& table) const override {
    return strings(session,
                   "SELECT column_name FROM information_schema.columns"
                   " WHERE table_schema = DATABASE() AND table_name = :name"
                   " ORDER BY ordinal_position",
                   table);
  }
  bool index_exists(soci::session& session, const std::string& table,
                    const std::string& index) const override {
    return count(session,
                 "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE()"
                 " AND table_name = :name AND index_name = :index",
                 table, index) > 0;
  }
  bool transactional_ddl() const noexcept override { return false; }
  void begin_migration(soci::session& session, const std::string& table) const override {
    int locked = 0;
    soci::indicator ind{};
    session << std::string("SELECT GET_LOCK(") + mysql_lock_name + ", 120)",
        soci::into(locked, ind), soci::use(table);
    if (ind == soci::i_null || locked != 1) {
      throw StoreError("another process has been migrating table " + table +
                       " for 120 s; try again later");
    }
  }
  void end_migration(soci::session& session, const std::string& table,
                     bool /*success*/) const override {
    int released = 0;
    soci::indicator ind{};
    session << std::string("SELECT RELEASE_LOCK(") + mysql_lock_name + ")",
        soci::into(released, ind), soci::use(table);
  }
  std::string version_table_ddl(const std::string& quoted) const override {
    return "CREATE TABLE IF NOT EXISTS " + quoted +
           " (version INT NOT NULL PRIMARY KEY, description VARCHAR(255) NOT NULL,"
           " applied_at DATETIME(3) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
           " COLLATE=utf8mb4_bin";
  }
};

}  // namespace

void Dialect::begin_write(soci::session& session) const { session.begin(); }
void Dialect::commit(soci::session& session) const { session.commit(); }
void Dialect::rollback(soci::session& session) const { session.rollback(); }

std::unique_ptr<Dialect> make_dialect(std::string_view name) {
  if (name == "sqlite3") return std::make_unique<SqliteDialect>();
  if (name == "postgresql") return std::make_unique<PostgresDialect>();
  if (name == "mysql") return std::make_unique<MysqlDialect>();
  throw StoreError("no SQL dialect '" + std::string(name) +
                   "' (known: sqlite3, postgresql, mysql)");
}

std::unique_ptr<Dialect> detect_odbc_dialect(soci::session& session) {
  std::string version;
  try {
    session << "SELECT version()", soci::into(version);
  } catch (const soci::soci_error& e) {
    throw StoreError(
        std::string("the ODBC data source does not answer SELECT version(), so it is neither "
                    "PostgreSQL nor MySQL/MariaDB; no SQL dialect for it yet: ") +
        e.what());
  }
  if (version.find("PostgreSQL") != std::string::npos) return std::make_unique<PostgresDialect>(true);
  if (version.find("MariaDB") != std::string::npos ||
      (!version.empty() && version.front() >= '5' && version.front() <= '9')) {
    return make_dialect("mysql");
  }
  throw StoreError("the ODBC data source is '" + version.substr(0, 80) +
                   "': no SQL dialect for it yet (supported behind ODBC: PostgreSQL, "
                   "MySQL/MariaDB)");
}

}  // namespace program_executor::store
