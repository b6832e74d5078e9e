// `prune`'s DELETE on the configured database (PE_TEST_DATABASE: sqlite3 by
// default, or postgresql, mysql, odbc; .ci/test runs it once per backend):
// ended programs go in batches of at most the limit, lowest id first;
// running ones and recently ended ones stay. And a finished program restarts.
#include <thread>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/program_pruner.hpp"
#include "store_test_backend.hpp"

using namespace program_executor;
using namespace std::chrono_literals;

namespace {

void finished(store::ProgramStore& store, const std::string& run_id) {
  store.insert({run_id, {"a"}, {}, {}});
  const auto claim = store.claim(run_id, 0, "test", 30s);
  REQUIRE(claim);
  REQUIRE(store.finish(run_id, 0, claim->token));
}

// Moves a program's end `ago` into the past, as if it had ended then.
void ended_ago(store::Database& database, const std::string& run_id, std::chrono::hours ago) {
  soci::session session(database.pool());
  const long long shift = -std::chrono::duration_cast<std::chrono::milliseconds>(ago).count();
  // Two names: SQLite binds a name once, however often it appears.
  const store::Dialect& dialect = database.dialect();
  session << "UPDATE " + dialect.quote(database.table()) +
                 " SET finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE " +
                 dialect.now_plus("finished_shift") +
                 " END, errored_at = CASE WHEN errored_at IS NULL THEN NULL ELSE " +
                 dialect.now_plus("errored_shift") + " END WHERE run_id = :run_id",
      soci::use(shift), soci::use(shift), soci::use(run_id);
}

}  // namespace

TEST_CASE("delete_ended deletes at most a batch of ended programs, oldest ids first", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  for (int i = 0; i < 5; ++i) finished(*store, "done-" + std::to_string(i));
  store->insert({"errored", {"a"}, {}, {}});
  const auto claim = store->claim("errored", 0, "test", 30s);
  REQUIRE(claim);
  REQUIRE(store->fail("errored", 0, claim->token, "boom"));
  store->insert({"cancelled", {"a"}, {}, {}});
  REQUIRE(store->cancel("cancelled", "cancelled"));
  store->insert({"running", {"a"}, {}, {}});
  finished(*store, "recent");
  for (const char* run_id :
       {"done-0", "done-1", "done-2", "done-3", "done-4", "errored", "cancelled"}) {
    ended_ago(*database, run_id, 48h);
  }
  // Also old, but still running: never pruned.
  ended_ago(*database, "running", 48h);

  CHECK(store->delete_ended(24h, 3) == 3);
  CHECK_FALSE(store->find("done-0"));
  CHECK_FALSE(store->find("done-2"));
  CHECK(store->find("done-3"));  // the batch took the lowest ids

  const store::PruneReport report =
      store::prune_ended(*store, std::chrono::system_clock::now() - 24h, 2);
  CHECK(report.deleted == 4);  // done-3, done-4, errored, cancelled
  CHECK(report.batches == 3);
  CHECK(store->find("running"));
  CHECK(store->find("recent"));
  CHECK_FALSE(store->find("errored"));
  CHECK_FALSE(store->find("cancelled"));
  CHECK(store->delete_ended(24h, 1000) == 0);
}

TEST_CASE("a finished program restarts at a step, other programs do not", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"f", {"a", "b"}, {}, {{"a", {{"kept", true}}}}});
  auto claim = store->claim("f", 0, "test", 30s);
  REQUIRE(claim);
  REQUIRE(store->record_retry("f", 0, claim->token, "flaky", 1s));
  claim = store->claim("f", 0, "test", 30s);
  REQUIRE(claim);
  REQUIRE(store->advance("f", 0, claim->token, 60s));
  claim = store->claim("f", 1, "test", 30s);
  REQUIRE(claim);
  // The last step's isolated worker died once; finishing keeps the counts.
  REQUIRE(store->record_isolated_crash("f", 1, claim->token, "killed", 1s));
  claim = store->claim("f", 1, "test", 30s);
  REQUIRE(claim);
  REQUIRE(store->finish("f", 1, claim->token));
  REQUIRE(store->find("f")->step_isolated_crash_count == 1);

  CHECK_FALSE(store->resume("f", 0, 60s));  // resume() is for errored programs
  REQUIRE(store->restart_finished("f", 0, 60s));
  const auto row = store->find("f");
  REQUIRE(row);
  CHECK_FALSE(row->ended());
  CHECK(row->step == 0);
  CHECK_FALSE(row->error_message);
  CHECK(row->step_retry_count == 0);
  // Crash counts reset as resume() resets them (restart_finished once kept
  // the isolated one: the two were written apart).
  CHECK(row->step_crash_count == 0);
  CHECK(row->step_isolated_crash_count == 0);
  CHECK(row->job_data["a"]["kept"] == true);
  CHECK(store->claim("f", 0, "test", 30s));           // runnable again
  CHECK_FALSE(store->restart_finished("f", 0, 60s));  // running now

  store->insert({"e", {"a"}, {}, {}});
  REQUIRE(store->cancel("e", "cancelled"));
  CHECK_FALSE(store->restart_finished("e", 0, 60s));
  CHECK_FALSE(store->restart_finished("missing", 0, 60s));
}
