// The bookkeeping table on a real SQLite file.
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
  settings.backend = "sqlite3";
  settings.connection = "db=" + (dir.path() / "programs.db").string();
  settings.table = std::move(table);
  return settings;
}

}  // namespace

TEST_CASE("the table is created with the original's columns, and creating it twice is harmless") {
  test::TemporaryDirectory dir;
  store::Database database(settings_in(dir), 1);
  database.ensure_schema();
  database.ensure_schema();
  soci::session session(database.pool());
  soci::rowset<soci::row> columns = session.prepare << "PRAGMA table_info(programs)";
  std::vector<std::string> names;
  for (const auto& column : columns) names.push_back(column.get<std::string>(1));
  CHECK(names == std::vector<std::string>{"id", "run_id", "jobs", "step", "finished_at",
                                          "errored_at", "error_message", "step_retry_count",
                                          "job_data", "program_data", "created_at", "updated_at"});
}

TEST_CASE("a program row goes through every state change with UTC timestamps") {
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
  CHECK_FALSE(store->find("nope"));

  CHECK(store->record_retry("r1", 0, "later"));
  CHECK_FALSE(store->record_retry("r1", 1, "wrong step"));
  row = store->find("r1");
  CHECK(row->step_retry_count == 1);
  CHECK(row->error_message == "later");

  CHECK(store->advance("r1", 0));
  CHECK_FALSE(store->advance("r1", 0));  // a second advance from the same step does nothing
  row = store->find("r1");
  CHECK(row->step == 1);
  CHECK(row->step_retry_count == 0);

  CHECK(store->finish("r1", 1));
  CHECK_FALSE(store->finish("r1", 1));
  CHECK_FALSE(store->cancel("r1", "cancelled"));  // finished programs stay finished
  row = store->find("r1");
  REQUIRE(row->finished_at);
  CHECK_THAT(*row->finished_at, Catch::EndsWith("Z"));

  store->insert({"r2", {"a"}, json::object(), json::object()});
  CHECK(store->fail("r2", 0, std::string(400, 'x')));
  row = store->find("r2");
  CHECK(row->errored_at);
  CHECK(row->error_message->size() == 255);
  CHECK_FALSE(store->advance("r2", 0));  // an errored program never moves again
}

TEST_CASE("job data updates are read-modify-write of one job's entry") {
  test::TemporaryDirectory dir;
  store::Database database(settings_in(dir), 1);
  database.ensure_schema();
  auto store = database.program_store();
  store->insert({"r", {"a", "b"}, json::object(), {{"b", {{"keep", 1}}}}});
  auto result = store->update_job_data("r", "a", [](const json& current) {
    CHECK(current == json::object());
    return json{{"x", 1}};
  });
  CHECK(result == json{{"x", 1}});
  CHECK(store->find("r")->job_data == json{{"a", {{"x", 1}}}, {"b", {{"keep", 1}}}});
  CHECK_THROWS_AS(store->update_job_data("missing", "a", [](const json& j) { return j; }),
                  store::StoreError);
}

TEST_CASE("a table name that is not an identifier is refused") {
  test::TemporaryDirectory dir;
  CHECK_THROWS_WITH(store::Database(settings_in(dir, "x; DROP TABLE y"), 1),
                    Catch::Contains("invalid table name"));
}

TEST_CASE("an unknown backend is refused with the supported list") {
  test::TemporaryDirectory dir;
  auto settings = settings_in(dir);
  settings.backend = "oracle";
  CHECK_THROWS_WITH(store::Database(settings, 1), Catch::Contains("supported: sqlite3"));
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
        // Every thread tries to advance every program through every step:
        // exactly one advance per step may win.
        for (int s = 0; s < steps; ++s) {
          for (int p = 0; p < programs; ++p) {
            const std::string id = "p" + std::to_string(p);
            store.update_job_data(id, "j", [&](const json& current) {
              json next = current;
              next["touches"] = current.value("touches", 0) + 1;
              return next;
            });
            if (store.advance(id, s)) ++advances;
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
    CHECK(row->job_data["j"]["touches"] == 8 * steps);  // no lost update
  }
}
