// The bookkeeping table on a real SQLite file.
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using nlohmann::json;

namespace {

config::DatabaseSettings settings_in(const test::TemporaryDirectory& dir, std::string table = "programs") {
  config::DatabaseSettings settings;
  settings.backend = config::DatabaseBackend::sqlite3;
  settings.connection = "db=" + (dir.path() / "programs.db").string();
  settings.table = std::move(table);
  return settings;
}

}  // namespace

TEST_CASE("the table is created with the original's columns plus the protocol's, twice harmlessly") {
  test::TemporaryDirectory dir;
  store::Database database(settings_in(dir), 1);
  database.ensure_schema();
  database.ensure_schema();
  soci::session session(database.pool());
  soci::rowset<soci::row> columns = session.prepare << "PRAGMA table_info(programs)";
  std::vector<std::string> names;
  for (const auto& column : columns) names.push_back(column.get<std::string>(1));
  // The original's columns, then the step protocol's (which the original ignores).
  CHECK(names == std::vector<std::string>{"id", "run_id", "jobs", "step", "finished_at",
                                          "errored_at", "error_message", "step_retry_count",
                                          "job_data", "program_data", "created_at", "updated_at",
                                          "lease_owner", "lease_token", "lease_until",
                                          "step_crash_count", "step_isolated_crash_count",
                                          "cancelled_at", "claimed_at"});
}

TEST_CASE("a program row goes through every state change with UTC timestamps") {
  using namespace std::chrono_literals;
  test::TemporaryDirectory dir;
  store::Database database(settings_in(dir), 2);
  database.ensure_schema();
  auto store = database.program_store();
  store->insert({"r1", {"a", "b"}, {{"p", 1}}, {{"a", {{"n", 1}}}}});
  CHECK_THROWS_AS(store->insert({"r1", {"a"}, json::object(), json::object()}), store::StoreError);

  auto row = store->find("r1");
  REQUIRE(row);
  CHECK(row->jobs == std::vector<std::string>{"a", "b"});
  CHECK(row->step == 0);
  CHECK(row->program_data == json{{"p", 1}});
  CHECK(row->job_data == json{{"a", {{"n", 1}}}});
  CHECK_THAT(row->created_at, Catch::Matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"));
  CHECK_FALSE(row->lease_owner);
  CHECK_FALSE(store->find("nope"));

  auto claim = store->claim("r1", 0, "w1", 30s);
  REQUIRE(claim);
  CHECK(claim->crashes == 0);
  CHECK_FALSE(store->claim("r1", 0, "w2", 30s));  // held by w1
  CHECK(store->find("r1")->lease_owner == "w1");
  CHECK(store->record_retry("r1", 0, claim->token, "later", 1s));
  CHECK_FALSE(store->record_retry("r1", 1, claim->token, "wrong step", 1s));
  row = store->find("r1");
  CHECK(row->step_retry_count == 1);
  CHECK(row->error_message == "later");
  CHECK_FALSE(row->lease_owner);  // a retry releases the claim

  claim = store->claim("r1", 0, "w2", 30s);
  REQUIRE(claim);
  CHECK_FALSE(store->advance("r1", 0, claim->token - 1, 60s));  // a stale token is fenced off
  CHECK(store->advance("r1", 0, claim->token, 60s));
  CHECK_FALSE(store->advance("r1", 0, claim->token, 60s));  // a second advance does nothing
  row = store->find("r1");
  CHECK(row->step == 1);
  CHECK(row->step_retry_count == 0);

  claim = store->claim("r1", 1, "w1", 30s);
  REQUIRE(claim);
  CHECK(store->finish("r1", 1, claim->token));
  CHECK_FALSE(store->finish("r1", 1, claim->token));
  CHECK_FALSE(store->cancel("r1", "cancelled"));  // finished programs stay finished
  row = store->find("r1");
  REQUIRE(row->finished_at);
  CHECK_THAT(*row->finished_at, Catch::EndsWith("Z"));

  store->insert({"r2", {"a"}, json::object(), json::object()});
  claim = store->claim("r2", 0, "w1", 30s);
  CHECK(store->fail("r2", 0, claim->token, std::string(400, 'x')));
  row = store->find("r2");
  CHECK(row->errored_at);
  CHECK(row->error_message->size() == 255);
  CHECK_FALSE(store->claim("r2", 0, "w1", 30s));  // an errored program never runs again
}

TEST_CASE("an expired claim is taken over as a crash, and overdue programs are recovered once") {
  using namespace std::chrono_literals;
  test::TemporaryDirectory dir;
  store::Database database(settings_in(dir), 2);
  database.ensure_schema();
  auto store = database.program_store();
  store->insert({"r", {"a", "b"}, {{"k", "v"}}, json::object()}, 0ms);
  std::this_thread::sleep_for(5ms);
  // Expected at once and not claimed: overdue.
  auto overdue = store->overdue(store::RecoveryWindow(60s), 10);
  REQUIRE(overdue.size() == 1);
  CHECK(overdue[0].run_id == "r");
  CHECK(overdue[0].step == 0);
  CHECK(overdue[0].jobs == std::vector<std::string>{"a", "b"});
  CHECK(overdue[0].program_data == json{{"k", "v"}});
  CHECK(store->begin_recovery("r", 0, overdue[0].token, store::RecoveryWindow(60s), 60s));
  CHECK_FALSE(store->begin_recovery("r", 0, overdue[0].token, store::RecoveryWindow(60s), 60s));  // one sweeper wins
  CHECK(store->overdue(store::RecoveryWindow(60s), 10).empty());

  // A worker claims with a short lease and dies.
  auto dead = store->claim("r", 0, "dead", 1ms);
  REQUIRE(dead);
  std::this_thread::sleep_for(20ms);
  CHECK(store->overdue(store::RecoveryWindow(60s), 10).size() == 1);  // its lease ran out
  CHECK_FALSE(store->renew("r", 0, dead->token + 1, 30s));
  auto next = store->claim("r", 0, "alive", 30s);
  REQUIRE(next);
  CHECK(next->crashes == 1);
  CHECK(next->token > dead->token);
  CHECK_FALSE(store->advance("r", 0, dead->token, 60s));  // the dead claim can never commit
  CHECK_THROWS_AS(store->update_job_data("r", "a", dead->token, [](const json& j) { return j; }),
                  store::StoreError);
  CHECK(store->renew("r", 0, next->token, 30s));
  CHECK(store->release("r", 0, next->token, 0ms));
  CHECK(store->find("r")->step_crash_count == 1);
  auto again = store->claim("r", 0, "alive", 30s);
  REQUIRE(again);
  CHECK(again->crashes == 1);  // a release is not a crash
  CHECK(store->advance("r", 0, again->token, 60s));
  CHECK(store->find("r")->step_crash_count == 0);  // counted per step
}

TEST_CASE("job data updates are read-modify-write of one job's entry") {
  test::TemporaryDirectory dir;
  store::Database database(settings_in(dir), 1);
  database.ensure_schema();
  auto store = database.program_store();
  store->insert({"r", {"a", "b"}, json::object(), {{"b", {{"keep", 1}}}}});
  auto claim = store->claim("r", 0, "w", std::chrono::seconds(30));
  REQUIRE(claim);
  auto result = store->update_job_data("r", "a", claim->token, [](const json& current) {
    CHECK(current == json::object());
    return json{{"x", 1}};
  });
  CHECK(result == json{{"x", 1}});
  CHECK(store->find("r")->job_data == json{{"a", {{"x", 1}}}, {"b", {{"keep", 1}}}});
  CHECK_THROWS_AS(store->update_job_data("missing", "a", 0, [](const json& j) { return j; }),
                  store::StoreError);
}

TEST_CASE("a table name that is not an identifier is refused") {
  test::TemporaryDirectory dir;
  CHECK_THROWS_WITH(store::Database(settings_in(dir, "x; DROP TABLE y"), 1),
                    Catch::Contains("invalid table name"));
}

TEST_CASE("several threads and two pools on one SQLite file never see 'database is locked'") {
  test::TemporaryDirectory dir;
  store::Database first(settings_in(dir), 4);
  store::Database second(settings_in(dir), 4);  // stands for a second daemon process
  first.ensure_schema();
  auto store_a = first.program_store();
  auto store_b = second.program_store();
  constexpr int programs = 40;
  constexpr int steps = 5;
  for (int p = 0; p < programs; ++p) {
    store_a->insert({"p" + std::to_string(p), std::vector<std::string>(steps, "j"), json::object(),
                     json::object()});
  }
  std::atomic<int> errors{0};
  std::atomic<int> advances{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      store::ProgramStore& store = t % 2 ? *store_a : *store_b;
      try {
        // Every thread tries to run every step of every program: claims make
        // sure each step is run (and advanced) by exactly one of them.
        bool work_left = true;
        while (work_left) {
          work_left = false;
          for (int p = 0; p < programs; ++p) {
            const std::string id = "p" + std::to_string(p);
            const auto row = store.find(id);
            if (row->step >= steps) continue;
            work_left = true;
            auto claim = store.claim(id, row->step, "t" + std::to_string(t), std::chrono::seconds(30));
            if (!claim) continue;
            store.update_job_data(id, "j", claim->token, [&](const json& current) {
              json next = current;
              next["touches"] = current.value("touches", 0) + 1;
              return next;
            });
            if (store.advance(id, row->step, claim->token, std::chrono::seconds(60))) ++advances;
          }
        }
      } catch (const std::exception& e) {
        ++errors;
        FAIL_CHECK(e.what());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(errors == 0);
  CHECK(advances == programs * steps);
  for (int p = 0; p < programs; ++p) {
    auto row = store_a->find("p" + std::to_string(p));
    CHECK(row->step == steps);
    CHECK(row->job_data["j"]["touches"] == steps);  // one execution per step, no lost update
  }
}

TEST_CASE("a table created by an earlier, unversioned daemon is adopted without a change") {
  test::TemporaryDirectory dir;
  store::Database database(settings_in(dir), 1);
  {
    // What the daemon created before schema versions existed (same columns
    // and indexes as versions 1 and 2), with a program in flight.
    soci::session session(database.pool());
    session << "CREATE TABLE programs (id INTEGER PRIMARY KEY AUTOINCREMENT,"
               " run_id VARCHAR(255) NOT NULL, jobs TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0,"
               " finished_at TIMESTAMP NULL, errored_at TIMESTAMP NULL, error_message VARCHAR(255) NULL,"
               " step_retry_count INTEGER NOT NULL DEFAULT 0, job_data TEXT NOT NULL DEFAULT '{}',"
               " program_data TEXT NOT NULL DEFAULT '{}', created_at TIMESTAMP NOT NULL,"
               " updated_at TIMESTAMP NOT NULL, lease_owner VARCHAR(255) NULL,"
               " lease_token BIGINT NOT NULL DEFAULT 0, lease_until TIMESTAMP NULL,"
               " step_crash_count INTEGER NOT NULL DEFAULT 0)";
    session << "CREATE INDEX programs_overdue_index ON programs (lease_until)"
               " WHERE finished_at IS NULL AND errored_at IS NULL";
    session << "CREATE UNIQUE INDEX programs_run_id_index ON programs (run_id)";
    session << "INSERT INTO programs (run_id, jobs, step, created_at, updated_at, lease_token)"
               " VALUES ('old', '[\"a\",\"b\"]', 1, '2024-05-28T10:08:43.456Z',"
               " '2024-05-28T10:08:44.000Z', 7)";
  }
  const auto report = database.migrate();
  CHECK(report.adopted);
  CHECK(report.to == 6);
  CHECK(report.applied == std::vector<std::string>{"2 step_protocol", "3 crash_attribution",
                                                   "4 throughput", "5 listing_indexes",
                                                   "6 attempt_history"});
  CHECK(report.skipped.size() == 5);  // four columns and the index were there
  database.ensure_schema();
  const auto row = database.program_store()->find("old");
  REQUIRE(row);
  CHECK(row->step == 1);
  CHECK(row->lease_token == 7);
  CHECK(row->created_at == "2024-05-28T10:08:43.456Z");
}
