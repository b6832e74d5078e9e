// The attempt history on the configured database (PE_TEST_DATABASE: sqlite3
// by default, or postgresql, mysql, odbc; .ci/test runs it once per backend):
// each attempt is written with the state change that ends it and only when
// that change matched; a takeover records the dead holder's attempt as
// `crashed`, which its holder turns `stale` if it was alive after all; pruning
// and `prune` remove attempts; history.enabled false writes nothing.
#include <thread>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "store_test_backend.hpp"

using namespace program_executor;
using namespace std::chrono_literals;

namespace {

constexpr auto lease = std::chrono::milliseconds(30000);
constexpr auto soon = std::chrono::milliseconds(60000);

const char* const iso_utc = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)";

store::AttemptEnding ending(std::string_view outcome, const std::string& job, long long ms = 25,
                            const std::string& error = {}, const std::string& type = {}) {
  return store::AttemptEnding{job, 1, "host-t:1:0", std::string(outcome), ms, error, type};
}

std::int64_t claim_token(store::ProgramStore& store, const std::string& run_id, int step,
                         const std::string& owner = "host-t:1:0",
                         std::chrono::milliseconds for_how_long = lease) {
  auto claim = store.claim(run_id, step, owner, for_how_long);
  REQUIRE(claim);
  return claim->token;
}

std::vector<std::string> outcomes(const std::vector<store::AttemptRecord>& attempts) {
  std::vector<std::string> list;
  for (const auto& attempt : attempts) list.push_back(attempt.outcome);
  return list;
}

long long count_attempts(store::Database& database) {
  soci::session session(database.pool());
  long long count = 0;
  session << "SELECT COUNT(*) FROM " + database.dialect().quote(store::attempts_table(database.table())),
      soci::into(count);
  return count;
}

}  // namespace

TEST_CASE("an attempt is written with the state change it ends, only when that matched",
          "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"r", {"a", "b"}, {}, {}});

  // A retry, then the step commits.
  std::int64_t token = claim_token(*store, "r", 0);
  const auto retry = ending(store::attempt_outcome::retry, "a", 40, "connection reset",
                            "program_executor::sdk::RetryableError");
  CHECK(store->record_retry("r", 0, token, "connection reset", soon, &retry));
  token = claim_token(*store, "r", 0);
  // A fenced write that does not match (the claim before) writes no attempt.
  const auto late = ending(store::attempt_outcome::retry, "a", 5, "too late");
  CHECK_FALSE(store->record_retry("r", 0, token - 1, "too late", soon, &late));
  store::StepCommit commit{"r", 0, token, false, ending(store::attempt_outcome::finished, "a", 12)};
  CHECK(store->commit_all({commit}, soon) == std::vector<bool>{true});
  CHECK(store->commit_all({commit}, soon) == std::vector<bool>{false});  // a second commit: no row

  // A yield, then the program errors.
  token = claim_token(*store, "r", 1);
  const auto yield = ending(store::attempt_outcome::yield, "b", 2000);
  CHECK(store->release("r", 1, token, soon, &yield));
  token = claim_token(*store, "r", 1);
  const auto failed = ending(store::attempt_outcome::errored, "b", 7, "card declined", "std::runtime_error");
  CHECK(store->fail("r", 1, token, "card declined", &failed));

  const auto attempts = store->attempts("r");
  REQUIRE(outcomes(attempts) == std::vector<std::string>{"retry", "finished", "yield", "errored"});
  CHECK(attempts[0].step == 0);
  CHECK(attempts[0].job == "a");
  CHECK(attempts[0].attempt == 1);
  CHECK(attempts[0].worker == "host-t:1:0");
  CHECK(attempts[0].duration_ms == 40);
  CHECK(attempts[0].error == "connection reset");
  CHECK(attempts[0].exception_type == "program_executor::sdk::RetryableError");
  CHECK_FALSE(attempts[1].error);
  CHECK_FALSE(attempts[1].exception_type);
  CHECK(attempts[2].step == 1);
  CHECK(attempts[3].error == "card declined");
  for (const auto& attempt : attempts) {
    CHECK(attempt.run_id == "r");
    CHECK(attempt.token > 0);
    CHECK_THAT(attempt.started_at, Catch::Matches(iso_utc));
    CHECK_THAT(attempt.ended_at, Catch::Matches(iso_utc));
    CHECK(attempt.started_at <= attempt.ended_at);
  }
  CHECK(attempts[0].id < attempts[1].id);
  CHECK(store->attempts("nobody").empty());
}

TEST_CASE("a batch commit writes one finished attempt per committed step in one statement",
          "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  std::vector<store::StepCommit> commits;
  for (const char* run_id : {"p1", "p2", "p3"}) {
    store->insert({run_id, {"a", "b"}, {}, {}});
    commits.push_back(store::StepCommit{run_id, 0, claim_token(*store, run_id, 0), false,
                                        ending(store::attempt_outcome::finished, "a")});
  }
  store->insert({"last", {"z"}, {}, {}});
  commits.push_back(store::StepCommit{"last", 0, claim_token(*store, "last", 0), true,
                                      ending(store::attempt_outcome::skipped, "z", 0)});
  // A commit under a claim that is not the row's: refused, no attempt.
  store->insert({"p4", {"a", "b"}, {}, {}});
  const std::int64_t p4 = claim_token(*store, "p4", 0);
  commits.push_back(store::StepCommit{"p4", 0, p4 + 7, false, ending(store::attempt_outcome::finished, "a")});
  CHECK(store->commit_all(commits, soon) == std::vector<bool>{true, true, true, true, false});
  CHECK(store->attempts("p4").empty());
  for (const char* run_id : {"p1", "p2", "p3"}) {
    INFO(run_id);
    CHECK(outcomes(store->attempts(run_id)) == std::vector<std::string>{"finished"});  // exactly one
  }
  CHECK(outcomes(store->attempts("last")) == std::vector<std::string>{"skipped"});
  CHECK(store->find("last")->finished_at);
}

TEST_CASE("batches of any size, one after another on a session, each write their own attempts",
          "[store][history]") {
  // PostgreSQL keeps one statement for every batch size (the batch is a JSON
  // parameter); the others build theirs per size. Sizes that differ, steps
  // that advance beside steps that finish, and a job name JSON must escape
  // all go through it.
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  const std::string job = "quote \" back\\slash \u00e9t\u00e9";
  int program = 0;
  for (const std::size_t size : {3u, 1u, 17u, 2u}) {
    INFO("batch of " << size);
    std::vector<store::StepCommit> commits;
    std::vector<std::string> run_ids;
    for (std::size_t i = 0; i < size; ++i) {
      const std::string run_id = "b" + std::to_string(program++);
      run_ids.push_back(run_id);
      store->insert({run_id, {job, "next"}, {}, {}});
      const bool last = i % 2 == 1;  // advancing and finishing in one batch
      commits.push_back(store::StepCommit{run_id, 0, claim_token(*store, run_id, 0), last,
                                          ending(store::attempt_outcome::finished, job)});
    }
    CHECK(store->commit_all(commits, soon) == std::vector<bool>(size, true));
    for (std::size_t i = 0; i < size; ++i) {
      const auto attempts = store->attempts(run_ids[i]);
      REQUIRE(attempts.size() == 1);
      CHECK(attempts[0].job == job);
      CHECK(attempts[0].outcome == "finished");
      CHECK(attempts[0].worker == "host-t:1:0");
      CHECK(attempts[0].duration_ms == 25);
      const auto row = store->find(run_ids[i]);
      REQUIRE(row);
      if (i % 2 == 1) {
        CHECK(row->finished_at);
      } else {
        CHECK(row->step == 1);
        CHECK_FALSE(row->finished_at);
      }
    }
  }
}

TEST_CASE("an error is kept up to 64 KiB, cut beyond with a marker", "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"long", {"a"}, {}, {}});
  const std::string huge(100000, 'x');
  const auto failed = ending(store::attempt_outcome::errored, "a", 1, huge);
  CHECK(store->fail("long", 0, claim_token(*store, "long", 0), huge, &failed));
  const auto attempts = store->attempts("long");
  REQUIRE(attempts.size() == 1);
  REQUIRE(attempts[0].error);
  CHECK(attempts[0].error->substr(0, store::attempt_error_limit) == huge.substr(0, store::attempt_error_limit));
  CHECK_THAT(*attempts[0].error, Catch::EndsWith("[truncated, 100000 bytes]"));
  CHECK(store->find("long")->error_message->size() == 255);  // the row keeps its 255 characters
}

TEST_CASE("history.enabled false: nothing is written, whatever the step does", "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store(false);
  store->insert({"quiet", {"a", "b"}, {}, {}});
  const auto retry = ending(store::attempt_outcome::retry, "a", 1, "again");
  CHECK(store->record_retry("quiet", 0, claim_token(*store, "quiet", 0), "again", soon, &retry));
  CHECK(store->commit_all({store::StepCommit{"quiet", 0, claim_token(*store, "quiet", 0), false,
                                             ending(store::attempt_outcome::finished, "a")}},
                          soon) == std::vector<bool>{true});
  // A crashed claim taken over.
  claim_token(*store, "quiet", 1, "dead:1:0", 1ms);
  std::this_thread::sleep_for(50ms);
  const std::int64_t token = claim_token(*store, "quiet", 1);
  const auto failed = ending(store::attempt_outcome::errored, "b", 1, "boom");
  CHECK(store->fail("quiet", 1, token, "boom", &failed));
  CHECK(store->attempts("quiet").empty());
  CHECK(count_attempts(*database) == 0);
}

TEST_CASE("a claim taken over after its holder died is a crashed attempt, and stale when it was alive after all",
          "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"c", {"a", "b"}, {}, {}});
  const std::int64_t dead = claim_token(*store, "c", 0, "host-dead:7:1", 1ms);
  std::this_thread::sleep_for(50ms);

  // The message's own claim does not take a held claim over: that goes
  // through claim_all, which records the crash with it.
  if (!store->claim_unread({store::UnreadClaim{"c", 2}}, "host-new:8:0", lease).front()) {
    SUCCEED("claim_unread left the expired claim to claim_all");
  }
  const auto taken = store->claim_all({store::ClaimRequest{"c", 0}}, "host-new:8:0", lease);
  REQUIRE(taken.front());
  CHECK(taken.front()->crashes == 1);
  auto attempts = store->attempts("c");
  REQUIRE(outcomes(attempts) == std::vector<std::string>{"crashed"});
  CHECK(attempts[0].worker == "host-dead:7:1");
  CHECK(attempts[0].token == dead);
  CHECK(attempts[0].step == 0);
  CHECK(attempts[0].job == "a");
  CHECK(attempts[0].attempt == 1);
  CHECK(attempts[0].started_at <= attempts[0].ended_at);
  CHECK(attempts[0].duration_ms >= 40);  // claimed, then noticed 50 ms later
  CHECK_FALSE(attempts[0].error);

  // The old holder was alive: its commit is refused, and its attempt turns stale.
  const auto refused = ending(store::attempt_outcome::finished, "a", 60);
  CHECK(store->commit_all({store::StepCommit{"c", 0, dead, false, refused}}, soon) ==
        std::vector<bool>{false});
  auto stale = refused;
  stale.outcome = store::attempt_outcome::stale;
  store->drop_claim("c", dead, 0, &stale);
  attempts = store->attempts("c");
  REQUIRE(outcomes(attempts) == std::vector<std::string>{"stale"});
  CHECK(attempts[0].duration_ms == 60);
  CHECK(attempts[0].worker == "host-dead:7:1");

  // The new holder commits: exactly one finished attempt for the step.
  CHECK(store->commit_all({store::StepCommit{"c", 0, taken.front()->token, false,
                                             ending(store::attempt_outcome::finished, "a")}},
                          soon) == std::vector<bool>{true});
  CHECK(outcomes(store->attempts("c")) == std::vector<std::string>{"stale", "finished"});

  // A cancel seen by the holder: a cancelled attempt, written with its drop.
  const std::int64_t running = claim_token(*store, "c", 1);
  REQUIRE(store->cancel("c", "cancelled"));
  const auto cancelled = ending(store::attempt_outcome::cancelled, "b", 30);
  store->drop_claim("c", running, 1, &cancelled);
  CHECK(outcomes(store->attempts("c")) == std::vector<std::string>{"stale", "finished", "cancelled"});
}

TEST_CASE("the sweeper recovering a dead claim records the crash with it", "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"s", {"only"}, {}, {}});
  const std::int64_t dead = claim_token(*store, "s", 0, "host-dead:9:0", 1ms);
  std::this_thread::sleep_for(50ms);
  store::RecoveryWindow window(1ms);
  const auto overdue = store->overdue(window, 10);
  REQUIRE(overdue.size() == 1);
  CHECK(store->begin_recovery("s", 0, dead, window, soon));
  CHECK_FALSE(store->begin_recovery("s", 0, dead, window, soon));  // another sweeper: nothing more
  const auto attempts = store->attempts("s");
  REQUIRE(outcomes(attempts) == std::vector<std::string>{"crashed"});
  CHECK(attempts[0].worker == "host-dead:9:0");
  CHECK(attempts[0].job == "only");
  CHECK(store->find("s")->step_crash_count == 1);
  // The claim was cleared: the republished step's claim records no second crash.
  REQUIRE(store->claim_all({store::ClaimRequest{"s", 0}}, "host-new:1:0", lease).front());
  CHECK(store->attempts("s").size() == 1);
}

TEST_CASE("attempts are pruned by age in bounded batches, and with the programs prune deletes",
          "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  for (const char* run_id : {"old", "new"}) {
    store->insert({run_id, {"a", "b", "c"}, {}, {}});
    for (int step = 0; step < 3; ++step) {
      REQUIRE(store->commit_all({store::StepCommit{run_id, step, claim_token(*store, run_id, step),
                                                   step == 2, ending(store::attempt_outcome::finished, "x")}},
                                soon)
                  .front());
    }
  }
  {
    // "old"'s attempts ended 40 days ago.
    soci::session session(database->pool());
    const long long shift = -std::chrono::duration_cast<std::chrono::milliseconds>(40 * 24h).count();
    session << "UPDATE " + database->dialect().quote(store::attempts_table(database->table())) +
                   " SET ended_at = " + database->dialect().now_plus("shift") + " WHERE run_id = 'old'",
        soci::use(shift);
  }
  CHECK(store->prune_attempts(30 * 24h, 2) == 2);  // a bounded batch
  CHECK(store->prune_attempts(30 * 24h, 2) == 1);
  CHECK(store->prune_attempts(30 * 24h, 2) == 0);
  CHECK(store->attempts("old").empty());
  CHECK(store->attempts("new").size() == 3);
  CHECK(store->find("old"));  // the program stays: only its history aged out

  // `prune` deletes the programs and their attempts together.
  CHECK(store->delete_ended(0ms, 10) == 2);
  CHECK(count_attempts(*database) == 0);
}

TEST_CASE("a program taken over from program-executor-js has no history before the takeover",
          "[store][history]") {
  test::ScratchTable table;
  auto database = table.open();
  test::run_sql_file(*database, test::fixture_sql(*database, "js_table.sql"));
  database->ensure_schema();
  auto store = database->program_store();
  const std::string run_id = "1716898123456123456";  // running at step 0 of 2, from the JS table
  // program-executor-js runs step 0 (no claim, no history), as its workers do.
  {
    soci::session session(database->pool());
    session << "UPDATE " + database->dialect().quote(database->table()) +
                   " SET step = step + 1, step_retry_count = 0 WHERE run_id = :run_id",
        soci::use(run_id);
  }
  CHECK(store->attempts(run_id).empty());
  const std::int64_t token = claim_token(*store, run_id, 1);
  CHECK(store->commit_all({store::StepCommit{run_id, 1, token, true,
                                             ending(store::attempt_outcome::finished, "export.upload")}},
                          soon) == std::vector<bool>{true});
  const auto attempts = store->attempts(run_id);
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].step == 1);
  CHECK(attempts[0].outcome == "finished");
}
