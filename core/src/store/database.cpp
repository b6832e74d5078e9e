#include "program_executor/store/database.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <thread>
#include <utility>
#include <vector>

#include <soci/soci.h>

#include "guarded.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/store/database_unreachable.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/sql_program_store.hpp"

namespace program_executor::store {
namespace {

using namespace std::chrono_literals;

// The table name is pasted into SQL, so it is checked again here even though
// the config loader validated it: nothing from outside reaches SQL unchecked.
void require_identifier(const std::string& name) {
  static const std::regex identifier("^[A-Za-z_][A-Za-z0-9_]{0,62}$");
  if (!std::regex_match(name, identifier)) {
    throw StoreError("invalid table name '" + name +
                     "': use letters, digits and underscores, starting with a letter");
  }
  // PostgreSQL cuts longer names to 63 characters and MySQL refuses them, so
  // every name derived from the table's must fit.
  const std::string longest = schema_version_table(name);
  if (longest.size() > 63) {
    throw StoreError("table name '" + name + "' is too long: at most " +
                     std::to_string(63 - (longest.size() - name.size())) +
                     " characters, so that " + longest.substr(0, 20) +
                     "..._schema_version fits in 63");
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

// Every column the store reads or writes: the original's and the step protocol's.
const std::vector<std::string>& required_columns() {
  static const std::vector<std::string> columns = {
      "id",           "run_id",        "jobs",           "step",
      "finished_at",  "errored_at",    "error_message",  "step_retry_count",
      "job_data",     "program_data",  "created_at",     "updated_at",
      "lease_owner",  "lease_token",   "lease_until",    "step_crash_count"};
  return columns;
}

// The first twelve: what a table must have to be adopted as version 1.
bool is_original_column(const std::string& column) {
  const auto& all = required_columns();
  return std::find(all.begin(), all.begin() + 12, column) != all.begin() + 12;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return lower(n) == name; });
}

bool has_key(const std::string& connection, const std::string& key) {
  const std::regex pattern("(^|\\s)" + key + "\\s*=");
  return std::regex_search(connection, pattern);
}

std::string percent_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// name=value for SOCI's parameter parser: quoted when it holds a space,
// a quote or a backslash.
std::string soci_parameter(const std::string& name, const std::string& value) {
  // SOCI reads backslash escapes in quoted and plain values alike, so a
  // backslash or quote is escaped and the value quoted.
  const bool plain = !value.empty() && value.find_first_of(" \t\"'\\") == std::string::npos;
  if (plain) return name + "=" + value;
  std::string quoted = name + "='";
  for (const char c : value) {
    if (c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

// mysql://user:password@host:port/database?unix_socket=...&charset=...
std::string mysql_url_to_soci(const std::string& url) {
  static const std::regex pattern(
      R"(^(?:mysql|mariadb)://(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]*\]|[^:/?]*)(?::(\d+))?(?:/([^?]*))?(?:\?(.*))?$)");
  std::smatch m;
  if (!std::regex_match(url, m, pattern)) {
    throw StoreError("database.connection is not a valid mysql:// URL "
                     "(mysql://user:password@host:port/database)");
  }
  std::vector<std::string> parameters;
  std::string host = m[3];
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (!host.empty()) parameters.push_back(soci_parameter("host", host));
  if (m[4].matched) parameters.push_back(soci_parameter("port", m[4]));
  if (m[5].matched && m[5].length() > 0) parameters.push_back(soci_parameter("db", percent_decode(m[5])));
  if (m[1].matched && m[1].length() > 0) parameters.push_back(soci_parameter("user", percent_decode(m[1])));
  if (m[2].matched) parameters.push_back(soci_parameter("password", percent_decode(m[2])));
  const std::string query = m[6];
  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    start = end + 1;
    const auto equals = pair.find('=');
    if (pair.empty() || equals == std::string::npos || equals == 0) continue;
    parameters.push_back(soci_parameter(pair.substr(0, equals), percent_decode(pair.substr(equals + 1))));
  }
  std::string joined;
  for (const std::string& parameter : parameters) joined += (joined.empty() ? "" : " ") + parameter;
  return joined;
}

std::string describe(const SchemaStatus& status, const std::string& table) {
  if (!status.table_exists) return "table " + table + " does not exist";
  if (!status.versioned) {
    return "table " + table + " has no schema version table (" + schema_version_table(table) +
           "): it was created by program-executor-js or an earlier program-executor";
  }
  return "the schema of table " + table + " is at version " + std::to_string(status.version) +
         ", this program needs version " + std::to_string(status.latest);
}

int latest_version(const std::vector<Migration>& migrations) {
  int latest = 0;
  for (const Migration& m : migrations) latest = std::max(latest, m.version);
  return latest;
}

}  // namespace

Backend parse_backend(std::string_view name) {
  if (const auto backend = config::database_backend_named(name)) return *backend;
  std::string supported;
  for (const Backend backend : config::database_backends) {
    supported += (supported.empty() ? "" : ", ") + std::string(to_string(backend));
  }
  throw StoreError("unsupported database backend '" + std::string(name) + "' (supported: " +
                   supported + ")");
}

std::string soci_connection_string(Backend backend, const std::string& connection) {
  static const std::regex url_scheme("^([A-Za-z][A-Za-z0-9+.-]*)://");
  std::smatch m;
  const std::string scheme =
      std::regex_search(connection, m, url_scheme) ? lower(m[1].str()) : std::string();
  const auto wrong_url = [&](const char* expected) {
    return StoreError(std::string("database.connection is a ") + scheme + ":// URL, but " +
                      "database.backend is " + std::string(to_string(backend)) + " (expected " +
                      expected + ")");
  };
  switch (backend) {
    case Backend::sqlite3: {
      if (!scheme.empty()) throw wrong_url("db=<file>");
      // Without a busy timeout SQLite fails at once when another writer holds the lock.
      return has_key(connection, "timeout") ? connection : connection + " timeout=30";
    }
    case Backend::postgresql:
      if (scheme == "postgresql" || scheme == "postgres") return connection;  // libpq reads URLs
      if (!scheme.empty()) throw wrong_url("postgresql://... or key=value parameters");
      // libpq waits for an unreachable host as long as TCP does otherwise.
      return has_key(connection, "connect_timeout") ? connection
                                                    : connection + " connect_timeout=10";
    case Backend::mysql: {
      std::string parameters = connection;
      if (scheme == "mysql" || scheme == "mariadb") {
        parameters = mysql_url_to_soci(connection);
      } else if (!scheme.empty()) {
        throw wrong_url("mysql://... or SOCI parameters");
      }
      if (!has_key(parameters, "connect_timeout")) parameters += " connect_timeout=10";
      if (!has_key(parameters, "charset")) parameters += " charset=utf8mb4";
      return parameters;
    }
    case Backend::odbc:
      return connection;
  }
  return connection;
}

Database::Database(const config::DatabaseSettings& settings, std::size_t pool_size)
    : backend_(settings.backend),
      table_(settings.table),
      connection_(soci_connection_string(backend_, settings.connection)),
      migrate_on_start_(settings.migrate),
      reconnect_timeout_(std::chrono::seconds(std::max(0, settings.reconnect_timeout_seconds))),
      pool_size_(pool_size == 0 ? 1 : pool_size),
      pool_(std::make_unique<soci::connection_pool>(pool_size_)),
      slots_(pool_size_) {
  require_identifier(table_);
  pin_backend_search_path();
  for (std::size_t i = 0; i < pool_size_; ++i) {
    try {
      open_session(pool_->at(i));
    } catch (const soci::soci_error& e) {
      std::string message = std::string("cannot open database (") +
                            std::string(to_string(backend_)) + "): " + e.what();
      // An SQLite file is there or not: only a server can be not up yet.
      // SOCI's ODBC backend classes every failed connection (SQL state 08001,
      // a wrong password too) as a connection error: only MySQL's is precise.
      const bool connection_category = backend_ == Backend::mysql &&
                                       e.get_error_category() == soci::soci_error::connection_error;
      if (backend_ != Backend::sqlite3 && database_unreachable(e.what(), connection_category)) {
        throw DatabaseUnreachableError(message);
      }
      throw StoreError(message);
    }
  }
}

Database::~Database() = default;

void Database::open_session(soci::session& session) {
  session.open(std::string(to_string(backend_)), connection_);
  // ODBC is a way to connect, not a dialect: ask the server what it is.
  if (!dialect_) {
    dialect_ = backend_ == Backend::odbc ? detect_odbc_dialect(session)
                                         : make_dialect(std::string(to_string(backend_)));
  }
  dialect_->prepare_session(session);
}

void Database::reconnect(soci::session& session, Slot& slot) {
  const auto deadline = std::chrono::steady_clock::now() + reconnect_timeout_;
  auto delay = std::chrono::milliseconds(100);
  std::string last_error;
  // Statements prepared on the old connection must go before it does.
  slot.kept.clear();
  for (int attempt = 1;; ++attempt) {
    try {
      session.reconnect();
      dialect_->prepare_session(session);
      slot.lost = false;
      slot.checked_epoch = loss_epoch_.load();
      log::event(log::Level::info, "database.reconnected", "",
                 {{"backend", std::string(to_string(backend_))}, {"attempts", attempt}});
      if (reconnect_listener_) reconnect_listener_();
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    if (std::chrono::steady_clock::now() + delay > deadline) break;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(2000));
  }
  throw StoreError("the database connection was lost and could not be re-established within " +
                   std::to_string(reconnect_timeout_.count() / 1000) + " s: " + last_error);
}

SessionLease::SessionLease(Database& database)
    : database_(database),
      position_(database.pool_->lease()),
      session_(&database.pool_->at(position_)) {
  Database::Slot& slot = database_.slots_[position_];
  try {
    const std::uint64_t epoch = database_.loss_epoch_.load();
    if (!slot.lost && slot.checked_epoch != epoch) {
      // Another session lost its connection since this one was last used
      // (a server restart breaks them all): check before trusting it.
      try {
        *session_ << database_.dialect_->ping();
        slot.checked_epoch = epoch;
      } catch (const std::exception&) {
        slot.lost = true;
      }
    }
    if (slot.lost) database_.reconnect(*session_, slot);
  } catch (...) {
    database_.pool_->give_back(position_);
    throw;
  }
}

SessionLease::~SessionLease() { database_.pool_->give_back(position_); }

void SessionLease::mark_lost() noexcept {
  Database::Slot& slot = database_.slots_[position_];
  if (slot.lost) return;
  slot.lost = true;
  ++database_.loss_epoch_;
  log::event(log::Level::warn, "database.connection_lost",
             "the operation failed; the session is re-established on next use",
             {{"backend", std::string(to_string(database_.backend_))}});
}

std::shared_ptr<void>& SessionLease::kept(const std::string& key) {
  return database_.slots_[position_].kept[key];
}

void SessionLease::drop_kept() noexcept { database_.slots_[position_].kept.clear(); }

bool SessionLease::connection_lost() noexcept {
  bool connected = false;
  try {
    connected = session_->is_connected();
  } catch (...) {
    connected = false;
  }
  if (!connected) mark_lost();
  return !connected;
}

std::vector<std::string> Database::missing_columns(soci::session& session) {
  const std::vector<std::string> present = dialect_->columns(session, table_);
  std::vector<std::string> missing;
  for (const std::string& column : required_columns()) {
    if (!contains(present, column)) missing.push_back(column);
  }
  return missing;
}

SchemaStatus Database::schema_status() { return schema_status(builtin_migrations(dialect_->name())); }

SchemaStatus Database::schema_status(const std::vector<Migration>& migrations) {
  return detail::guarded(*this, "reading the schema version", "", [&](soci::session& session) {
    SchemaStatus status;
    status.latest = latest_version(migrations);
    status.table_exists = dialect_->table_exists(session, table_);
    const std::string version_table = schema_version_table(table_);
    status.versioned = dialect_->table_exists(session, version_table);
    if (status.versioned) {
      session << "SELECT COALESCE(MAX(version), 0) FROM " + dialect_->quote(version_table),
          soci::into(status.version);
    }
    return status;
  });
}

void Database::ensure_schema() {
  const SchemaStatus status = schema_status();
  if (!status.current()) {
    if (!migrate_on_start_) {
      throw StoreError(describe(status, table_) +
                       ". database.migrate is false: run `program-executor migrate -c CONFIG` "
                       "as a database user allowed to change the schema");
    }
    migrate();
  } else if (status.version > status.latest) {
    // A newer program-executor migrated: its changes only add, so we can run.
    log::event(log::Level::warn, "database.schema_newer",
               "the table's schema is newer than this program knows",
               {{"table", table_}, {"version", status.version}, {"known", status.latest}});
  }
  const std::vector<std::string> missing =
      detail::guarded(*this, "checking the table's columns", "",
                      [&](soci::session& session) { return missing_columns(session); });
  if (!missing.empty()) {
    std::string names;
    for (const auto& name : missing) names += (names.empty() ? "" : ", ") + name;
    throw StoreError("table " + table_ + " lacks the column(s) " + names +
                     " although its schema version says otherwise; see docs/databases.md");
  }
  log::event(log::Level::debug, "database.schema_ready", "",
             {{"table", table_}, {"dialect", std::string(dialect_->name())}});
}

MigrationReport Database::migrate() { return migrate(builtin_migrations(dialect_->name())); }

MigrationReport Database::migrate(const std::vector<Migration>& migrations) {
  static const std::regex adds_column(R"(^ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*))",
                                      std::regex::icase);
  static const std::regex creates_index(
      R"(^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?["`]?([A-Za-z_][A-Za-z0-9_]*)["`]?\s+ON)",
      std::regex::icase);
  std::vector<const Migration*> ordered;
  for (const Migration& m : migrations) ordered.push_back(&m);
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });

  MigrationReport report = detail::guarded(*this, "migrating the schema", "", [&](soci::session& session) {
    MigrationReport run;
    const Dialect& dialect = *dialect_;
    const std::string version_table = dialect.quote(schema_version_table(table_));
    const auto record = [&](int version, const std::string& description) {
      session << "INSERT INTO " + version_table + " (version, description, applied_at) VALUES (:v, :d, " +
                     dialect.now() + ")",
          soci::use(version), soci::use(description);
    };
    dialect.begin_migration(session, table_);
    try {
      session << dialect.version_table_ddl(version_table);
      int version = 0;
      session << "SELECT COALESCE(MAX(version), 0) FROM " + version_table, soci::into(version);
      run.from = version;
      if (version == 0 && dialect.table_exists(session, table_)) {
        // Taking over a table we did not create (program-executor-js's, or
        // one from before versioning): it must be the original's shape.
        const auto present = dialect.columns(session, table_);
        std::string missing;
        for (const auto& column : required_columns()) {
          if (is_original_column(column) && !contains(present, column)) {
            missing += (missing.empty() ? "" : ", ") + column;
          }
        }
        if (!missing.empty()) {
          throw StoreError("table " + table_ + " exists but is not a program-executor table: " +
                           "it lacks " + missing);
        }
        const std::string first = ordered.empty() ? "create_table" : ordered.front()->name;
        record(1, first + " (adopted an existing table)");
        version = 1;
        run.adopted = true;
      }
      for (const Migration* migration : ordered) {
        if (migration->version <= version) continue;
        for (const std::string& statement : migration_statements(*migration, dialect, table_)) {
          std::smatch m;
          if (std::regex_search(statement, m, adds_column) &&
              contains(dialect.columns(session, table_), lower(m[1].str()))) {
            run.skipped.push_back(statement);
            continue;
          }
          if (std::regex_search(statement, m, creates_index) &&
              dialect.index_exists(session, table_, m[1].str())) {
            run.skipped.push_back(statement);
            continue;
          }
          session << statement;
        }
        record(migration->version, migration->name);
        run.applied.push_back(std::to_string(migration->version) + " " + migration->name);
        version = migration->version;
      }
      run.to = version;
    } catch (...) {
      try {
        dialect.end_migration(session, table_, false);
      } catch (...) {
        // The failure that got us here is the one to report.
      }
      throw;
    }
    dialect.end_migration(session, table_, true);
    return run;
  });
  if (report.adopted || !report.applied.empty()) {
    std::string applied;
    for (const auto& name : report.applied) applied += (applied.empty() ? "" : ", ") + name;
    log::event(log::Level::info, "database.migrated", "",
               {{"table", table_},
                {"from", report.from},
                {"to", report.to},
                {"adopted", report.adopted},
                {"applied", applied}});
  }
  return report;
}

std::unique_ptr<ProgramStore> Database::program_store(bool history) {
  return std::make_unique<SqlProgramStore>(*this, history);
}

}  // namespace program_executor::store
