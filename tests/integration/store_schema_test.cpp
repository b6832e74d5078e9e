// Schema management on the configured database (PE_TEST_DATABASE): creating
// the table, versioned migrations, taking over program-executor-js's table
// (fixtures in tests/fixtures/sql/<dialect>/) with the original still working
// on it afterwards.
#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "store_test_backend.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::vector<std::string> columns_of(store::Database& database, const std::string& table) {
  soci::session session(database.pool());
  return database.dialect().columns(session, table);
}

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<int> recorded_versions(store::Database& database) {
  soci::session session(database.pool());
  std::vector<int> versions;
  soci::rowset<int> rows =
      session.prepare << "SELECT version FROM " +
                             database.dialect().quote(store::schema_version_table(database.table())) +
                             " ORDER BY version";
  for (int v : rows) versions.push_back(v);
  return versions;
}

long long count_rows(store::Database& database, const std::string& where = "1 = 1") {
  soci::session session(database.pool());
  long long n = 0;
  session << "SELECT COUNT(*) FROM " + database.dialect().quote(database.table()) + " WHERE " + where,
      soci::into(n);
  return n;
}

// A migration of the tests' own, after the built-in ones.
store::Migration extra(const store::Database& database, int version, std::string sql) {
  (void)database;
  return store::Migration{version, "test_" + std::to_string(version), std::move(sql)};
}

std::vector<store::Migration> with(const store::Database& database,
                                   std::vector<store::Migration> more) {
  std::vector<store::Migration> all = store::builtin_migrations(database.dialect().name());
  for (auto& m : more) all.push_back(std::move(m));
  return all;
}

}  // namespace

TEST_CASE("a missing table is created at the latest version, starting again changes nothing",
          "[store][schema]") {
  test::ScratchTable table;
  auto database = table.open();
  const int latest =
      static_cast<int>(store::builtin_migrations(database->dialect().name()).size());
  REQUIRE(latest >= 2);
  auto status = database->schema_status();
  CHECK_FALSE(status.table_exists);
  CHECK_FALSE(status.versioned);
  CHECK(status.latest == latest);

  database->ensure_schema();
  status = database->schema_status();
  CHECK(status.current());
  CHECK(status.version == latest);
  std::vector<int> expected;
  for (int v = 1; v <= latest; ++v) expected.push_back(v);
  CHECK(recorded_versions(*database) == expected);
  const auto columns = columns_of(*database, table.name());
  for (const char* column : {"id", "run_id", "jobs", "step", "finished_at", "errored_at",
                             "error_message", "step_retry_count", "job_data", "program_data",
                             "created_at", "updated_at", "lease_owner", "lease_token",
                             "lease_until", "step_crash_count", "step_isolated_crash_count",
                             "cancelled_at"}) {
    CHECK(has(columns, column));
  }

  const auto again = database->migrate();
  CHECK(again.applied.empty());
  CHECK_FALSE(again.adopted);
  CHECK(again.from == latest);
  database->ensure_schema();
  CHECK(recorded_versions(*database) == expected);

  // Where we create the table, run ids are unique in the database itself.
  auto store = database->program_store();
  store->insert({"u", {"a"}, json::object(), json::object()});
  soci::session session(database->pool());
  CHECK_THROWS(session << "INSERT INTO " + database->dialect().quote(table.name()) +
                              " (run_id, jobs, step) VALUES ('u', '[\"a\"]', 0)");
}

TEST_CASE("program-executor-js's table is taken over: rows kept, and both keep working on it",
          "[store][schema]") {
  test::ScratchTable table;
  auto database = table.open();
  test::run_sql_file(*database, test::fixture_sql(*database, "js_table.sql"));
  const long long rows_before = count_rows(*database);
  REQUIRE(rows_before == 5);

  auto status = database->schema_status();
  CHECK(status.table_exists);
  CHECK_FALSE(status.versioned);
  const auto report = database->migrate();
  CHECK(report.adopted);
  CHECK(report.from == 0);
  CHECK(report.to == status.latest);
  CHECK(report.applied.front().rfind("2 ", 0) == 0);  // version 1 adopted, not run
  database->ensure_schema();
  CHECK(count_rows(*database) == rows_before);  // nothing dropped or rewritten

  // The original's rows, as the daemon reads them: digit run ids, UTC timestamps.
  auto store = database->program_store();
  auto row = store->find("1716898123456123456");
  REQUIRE(row);
  CHECK(row->jobs == std::vector<std::string>{"export.fetch", "export.upload"});
  CHECK(row->program_data == json{{"customer", 42}, {"name", "Zoë"}});
  CHECK(row->job_data == json{{"export.fetch", {{"page", 3}}}});
  // knex's timestamp() on MySQL keeps whole seconds.
  const bool whole_seconds = database->dialect().name() == "mysql";
  CHECK(row->created_at == (whole_seconds ? "2024-05-28T10:08:43.000Z" : "2024-05-28T10:08:43.456Z"));
  CHECK(row->lease_token == 0);
  CHECK_FALSE(row->lease_owner);
  row = store->find("1716898123999000001");
  CHECK(row->finished_at == "2024-05-28T10:10:00.000Z");
  CHECK(row->step == 2);
  row = store->find("1716898124000000002");
  CHECK(row->errored_at == "2024-05-28T10:11:00.000Z");
  CHECK(row->error_message == "boom");
  CHECK(row->step_retry_count == 3);
  CHECK(store->find("1716898125000000003")->program_data == json{{"copy", 1}});  // first of two

  // The daemon runs one of the original's programs to its end.
  auto token = store->claim("1716898123456123456", 0, "daemon", 30s)->token;
  store->update_job_data("1716898123456123456", "export.fetch", token,
                         [](const json& current) { return json{{"page", current["page"].get<int>() + 1}}; });
  CHECK(store->advance("1716898123456123456", 0, token, 1min));
  // The second step claimed as a worker claims it, on its message's word
  // (where the database can: the original's jobs column is json, not jsonb).
  // By the dialect, not the backend: PostgreSQL claims this way behind ODBC too.
  const bool claims_unread = database->dialect().name() != "mysql";
  const auto claimed = store->claim_unread({{"1716898123456123456", 1}}, "daemon", 30s);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].has_value() == claims_unread);
  token = claimed[0] ? claimed[0]->claim.token : store->claim("1716898123456123456", 1, "daemon", 30s)->token;
  CHECK(store->finish("1716898123456123456", 1, token));
  // A run id the original wrote twice: the first row is the one returned.
  if (claims_unread) {
    const auto copies = store->claim_unread({{"1716898125000000003", 1}}, "daemon", 30s);
    REQUIRE(copies[0]);
    CHECK(copies[0]->row.id == store->find("1716898125000000003")->id);
  }
  row = store->find("1716898123456123456");
  CHECK(row->finished_at);
  CHECK(row->job_data == json{{"export.fetch", {{"page", 4}}}});

  // And creates one of its own; then the original does its usual writes.
  store->insert({"daemon-created-1", {"demo.count", "js.job"}, {{"from", "daemon"}}, json::object()});
  test::run_sql_file(*database, test::fixture_sql(*database, "js_operations.sql"));
  row = store->find("daemon-created-1");
  CHECK(row->step == 1);
  CHECK(row->step_retry_count == 1);
  CHECK(row->error_message == "js retry");
  CHECK(row->job_data == json{{"demo.count", {{"runs", 1}}}, {"js.job", {{"seen", true}}}});
  row = store->find("1716899000000000001");
  REQUIRE(row);
  CHECK(row->finished_at);
  CHECK(row->program_data == json{{"from", "js"}});
  CHECK(row->lease_token == 0);  // the new columns' defaults apply to the original's inserts
  CHECK(count_rows(*database, "run_id = '1716898123999000001'") == 2);  // index still not unique

  // The row the daemon wrote, read the way the original reads it: same JSON shapes.
  soci::session session(database->pool());
  std::string jobs, program_data;
  session << "SELECT " + database->dialect().json_text("jobs") + ", " +
                 database->dialect().json_text("program_data") + " FROM " +
                 database->dialect().quote(table.name()) + " WHERE run_id = 'daemon-created-1'",
      soci::into(jobs), soci::into(program_data);
  CHECK(json::parse(jobs) == json{"demo.count", "js.job"});
  CHECK(json::parse(program_data) == json{{"from", "daemon"}});
}

TEST_CASE("with database.migrate false, an outdated schema is refused until migrate runs",
          "[store][schema]") {
  test::ScratchTable table;
  auto settings = table.settings();
  settings.migrate = false;
  {
    store::Database database(settings, 1);
    CHECK_THROWS_WITH(database.ensure_schema(),
                      Catch::Contains("does not exist") && Catch::Contains("program-executor migrate"));
    CHECK_FALSE(database.schema_status().table_exists);  // nothing was created
    test::run_sql_file(database, test::fixture_sql(database, "js_table.sql"));
    CHECK_THROWS_WITH(database.ensure_schema(), Catch::Contains("no schema version table"));
  }
  table.open()->migrate();
  store::Database database(settings, 1);
  CHECK_NOTHROW(database.ensure_schema());
  CHECK(database.program_store()->find("1716898123456123456"));
}

TEST_CASE("later migrations apply in order, once, and a half-applied one can run again",
          "[store][schema]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  const int latest = database->schema_status().latest;
  auto store = database->program_store();
  store->insert({"kept", {"a"}, {{"x", 1}}, json::object()});
  const auto migrations = with(
      *database, {extra(*database, latest + 1, "ALTER TABLE {table} ADD COLUMN note_a varchar(40) NULL;\n"),
                  extra(*database, latest + 2,
                        "-- two statements\nALTER TABLE {table} ADD COLUMN note_b varchar(40) NULL;\n"
                        "UPDATE {table} SET note_b = 'filled';\n")});
  CHECK_FALSE(database->schema_status(migrations).current());
  auto report = database->migrate(migrations);
  CHECK(report.applied == std::vector<std::string>{std::to_string(latest + 1) + " test_" + std::to_string(latest + 1),
                                                   std::to_string(latest + 2) + " test_" + std::to_string(latest + 2)});
  CHECK(database->schema_status(migrations).version == latest + 2);
  CHECK(count_rows(*database, "note_b = 'filled'") == 1);
  CHECK(database->program_store()->find("kept")->program_data == json{{"x", 1}});

  // As if the process died after the DDL, before recording (MySQL commits DDL at once).
  {
    soci::session session(database->pool());
    session << "DELETE FROM " + database->dialect().quote(store::schema_version_table(table.name())) +
                   " WHERE version = " + std::to_string(latest + 2);
  }
  report = database->migrate(migrations);
  CHECK(report.applied.size() == 1);
  REQUIRE(report.skipped.size() == 1);  // the column exists: not added twice
  CHECK_THAT(report.skipped[0], Catch::Contains("note_b"));
  CHECK(database->schema_status(migrations).current());
}

TEST_CASE("a failing migration is reported and recorded as not applied", "[store][schema]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  const int latest = database->schema_status().latest;
  const auto migrations =
      with(*database, {extra(*database, latest + 1,
                             "ALTER TABLE {table} ADD COLUMN half_done varchar(10) NULL;\n"
                             "THIS IS NOT SQL AT ALL;\n")});
  CHECK_THROWS_AS(database->migrate(migrations), store::StoreError);
  CHECK(database->schema_status(migrations).version == latest);
  const bool transactional = database->dialect().transactional_ddl();
  CHECK(has(columns_of(*database, table.name()), "half_done") == !transactional);
  // The store keeps working on the schema it knows.
  database->ensure_schema();
  database->program_store()->insert({"after", {"a"}, json::object(), json::object()});
  CHECK(database->program_store()->find("after"));
}

TEST_CASE("two processes starting at once: one creates the schema, the other finds it current",
          "[store][schema]") {
  test::ScratchTable table;
  auto first = table.open(1);
  auto second = table.open(1);
  std::atomic<int> errors{0};
  std::thread a([&] {
    try {
      first->ensure_schema();
    } catch (const std::exception& e) {
      ++errors;
      FAIL_CHECK(e.what());
    }
  });
  std::thread b([&] {
    try {
      second->ensure_schema();
    } catch (const std::exception& e) {
      ++errors;
      FAIL_CHECK(e.what());
    }
  });
  a.join();
  b.join();
  CHECK(errors == 0);
  CHECK(recorded_versions(*first).size() ==
        store::builtin_migrations(first->dialect().name()).size());
}

TEST_CASE("a table that is not a program-executor table is refused, untouched", "[store][schema]") {
  test::ScratchTable table;
  auto database = table.open();
  {
    soci::session session(database->pool());
    session << "CREATE TABLE " + database->dialect().quote(table.name()) +
                   " (id INTEGER PRIMARY KEY, run_id VARCHAR(255), payload VARCHAR(10))";
  }
  CHECK_THROWS_WITH(database->ensure_schema(),
                    Catch::Contains("not a program-executor table") && Catch::Contains("jobs"));
  CHECK(columns_of(*database, table.name()).size() == 3);
  const auto status = database->schema_status();
  CHECK(status.version == 0);  // nothing recorded
}

TEST_CASE("a user with data privileges only runs the store once migrate has run, and cannot migrate",
          "[store][schema]") {
  const std::string dml = test::env_or("PE_TEST_DATABASE_DML_CONNECTION", "");
  if (!test::server_backend() || dml.empty()) {
    SUCCEED("needs a server database and PE_TEST_DATABASE_DML_CONNECTION (.ci/databases: pe_dml)");
    return;
  }
  test::ScratchTable table;
  auto restricted = table.settings();
  restricted.connection = dml;
  {
    store::Database database(restricted, 1);
    CHECK_THROWS_AS(database.ensure_schema(), store::StoreError);  // no DDL: cannot create
  }
  table.open(1)->migrate();  // the owner migrates
  for (const bool migrate_on_start : {true, false}) {
    restricted.migrate = migrate_on_start;
    store::Database database(restricted, 1);
    CHECK_NOTHROW(database.ensure_schema());  // current: nothing to change, no DDL needed
    auto store = database.program_store();
    const std::string run_id = migrate_on_start ? "dml-1" : "dml-2";
    store->insert({run_id, {"a"}, json::object(), json::object()});
    const auto token = store->claim(run_id, 0, "dml", 30s)->token;
    store->update_job_data(run_id, "a", token, [](const json&) { return json{{"ok", true}}; });
    CHECK(store->finish(run_id, 0, token));
  }
}
