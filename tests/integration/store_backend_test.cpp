// The ProgramStore's semantics on the configured database (PE_TEST_DATABASE:
// sqlite3 by default, or postgresql, mysql, odbc; see store_test_backend.hpp).
// .ci/test runs this suite once per backend.
#include <atomic>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <sstream>
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

constexpr auto lease = std::chrono::milliseconds(30000);
constexpr auto soon = std::chrono::milliseconds(60000);

// Seconds between an ISO 8601 UTC timestamp ("...T...Z") and the system clock.
double seconds_from_now(const std::string& iso) {
  std::tm tm{};
  std::istringstream in(iso);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  REQUIRE_FALSE(in.fail());
  const auto then = std::chrono::system_clock::from_time_t(timegm(&tm));
  return std::chrono::duration<double>(then - std::chrono::system_clock::now()).count();
}

const char* const iso_utc = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)";

std::int64_t claim_token(store::ProgramStore& store, const std::string& run_id, int step,
                         const std::string& owner = "test") {
  auto claim = store.claim(run_id, step, owner, lease);
  REQUIRE(claim);
  return claim->token;
}

}  // namespace

TEST_CASE("every state change, claim and fence works on the configured backend, in UTC", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"r1", {"a", "b"}, {{"p", 1}}, {{"a", {{"n", 1}}}}});
  CHECK_THROWS_WITH(store->insert({"r1", {"a"}, json::object(), json::object()}),
                    Catch::Contains("r1"));

  auto row = store->find("r1");
  REQUIRE(row);
  CHECK(row->run_id == "r1");
  CHECK(row->jobs == std::vector<std::string>{"a", "b"});
  CHECK(row->step == 0);
  CHECK(row->program_data == json{{"p", 1}});
  CHECK(row->job_data == json{{"a", {{"n", 1}}}});
  CHECK_THAT(row->created_at, Catch::Matches(iso_utc));
  CHECK_THAT(row->updated_at, Catch::Matches(iso_utc));
  CHECK(std::abs(seconds_from_now(row->created_at)) < 120);  // UTC, not the server's zone
  REQUIRE(row->lease_until);
  CHECK(seconds_from_now(*row->lease_until) > 30);  // expected within a minute of the insert
  CHECK_FALSE(row->ended());
  CHECK_FALSE(store->find("nope"));

  const auto token = claim_token(*store, "r1", 0);
  CHECK_FALSE(store->claim("r1", 0, "someone else", lease));  // held
  CHECK_FALSE(store->claim("r1", 1, "test", lease));          // wrong step
  row = store->find("r1");
  CHECK(row->lease_owner == "test");
  CHECK(row->lease_token == token);

  CHECK(store->record_retry("r1", 0, token, "later", soon));
  CHECK_FALSE(store->record_retry("r1", 1, token, "wrong step", soon));
  row = store->find("r1");
  CHECK(row->step_retry_count == 1);
  CHECK(row->error_message == "later");
  CHECK_FALSE(row->lease_owner);  // a retry releases the claim

  const auto second = claim_token(*store, "r1", 0);
  CHECK(second == token + 1);
  CHECK_FALSE(store->advance("r1", 0, token, soon));  // a stale claim cannot commit
  CHECK(store->renew("r1", 0, second, lease));
  CHECK(store->advance("r1", 0, second, soon));
  CHECK_FALSE(store->advance("r1", 0, second, soon));  // a second advance from one step does nothing
  row = store->find("r1");
  CHECK(row->step == 1);
  CHECK(row->step_retry_count == 0);
  CHECK(row->step_crash_count == 0);

  const auto third = claim_token(*store, "r1", 1);
  CHECK(store->finish("r1", 1, third));
  CHECK_FALSE(store->finish("r1", 1, third));
  CHECK_FALSE(store->cancel("r1", "cancelled"));  // finished programs stay finished
  row = store->find("r1");
  REQUIRE(row->finished_at);
  CHECK_THAT(*row->finished_at, Catch::Matches(iso_utc));
  CHECK(std::abs(seconds_from_now(*row->finished_at)) < 120);
  CHECK_FALSE(row->lease_until);

  store->insert({"r2", {"a"}, json::object(), json::object()});
  const auto r2 = claim_token(*store, "r2", 0);
  CHECK(store->fail("r2", 0, r2, std::string(400, 'x')));
  row = store->find("r2");
  CHECK(row->errored_at);
  CHECK(row->error_message->size() == 255);
  CHECK_FALSE(store->advance("r2", 0, r2, soon));  // an errored program never moves again

  store->insert({"r3", {"a", "b"}, json::object(), json::object()});
  const auto r3 = claim_token(*store, "r3", 0);
  CHECK(store->cancel("r3", "cancelled by hand"));
  row = store->find("r3");
  CHECK(row->error_message == "cancelled by hand");
  CHECK(row->state() == "cancelled");
  CHECK(row->cancelled_at);
  CHECK_FALSE(row->lease_owner);  // an ended row keeps no claim
  CHECK_FALSE(row->lease_until);
  CHECK_FALSE(store->claim("r3", 0, "test", lease));
  // The job still running when the cancel came can change nothing more.
  CHECK_THROWS_AS(store->update_job_data("r3", "a", r3, [](const json&) { return json{{"x", 1}}; }),
                  store::ProgramEnded);
  CHECK_FALSE(store->find("r3")->job_data.contains("a"));
}

TEST_CASE("state comes from the timestamps, never from the message, and messages keep 255 characters",
          "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"failed", {"a"}, json::object(), json::object()});
  CHECK(store->fail("failed", 0, claim_token(*store, "failed", 0), "cancelled"));
  store->insert({"cancelled", {"a"}, json::object(), json::object()});
  CHECK(store->cancel("cancelled", "cancelled"));
  CHECK(store->find("failed")->state() == "errored");
  CHECK(store->find("cancelled")->state() == "cancelled");
  const auto errored = store->list({"errored", {}, 10, 0, {}});
  REQUIRE(errored.size() == 1);
  CHECK(errored[0].run_id == "failed");
  const auto cancelled = store->list({"cancelled", {}, 10, 0, {}});
  REQUIRE(cancelled.size() == 1);
  CHECK(cancelled[0].run_id == "cancelled");
  // 300 characters of two and three bytes: 255 of them are kept, on every backend.
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += i % 2 ? "€" : "é";
  store->insert({"long", {"a"}, json::object(), json::object()});
  CHECK(store->fail("long", 0, claim_token(*store, "long", 0), long_text));
  const std::string kept = *store->find("long")->error_message;
  CHECK(kept == long_text.substr(0, 128 * 2 + 127 * 3));
}

TEST_CASE("a claim the row refused is dropped, and a crash running alone is counted apart", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"p", {"a", "b"}, json::object(), json::object()});
  const auto token = claim_token(*store, "p", 0);
  CHECK(store->record_isolated_crash("p", 0, token, "killed by signal 6", soon));
  auto row = store->find("p");
  CHECK(row->step_crash_count == 1);
  CHECK(row->step_isolated_crash_count == 1);
  CHECK(row->error_message == "killed by signal 6");
  CHECK_FALSE(row->lease_owner);
  const auto again = store->claim("p", 0, "test", lease);  // released: claimed at once
  REQUIRE(again);
  CHECK(again->crashes == 1);
  CHECK(again->isolated_crashes == 1);
  // A worker without claims (program-executor-js's) moves the row on under
  // our claim: the claim is dropped, not left to block the next step.
  {
    soci::session session(database->pool());
    session << "UPDATE " + database->dialect().quote(table.name()) + " SET step = 1 WHERE run_id = 'p'";
  }
  CHECK_FALSE(store->advance("p", 0, again->token, soon));
  store->drop_claim("p", again->token);
  row = store->find("p");
  CHECK_FALSE(row->lease_owner);
  CHECK(row->lease_until);  // still expected to move
  CHECK(store->claim("p", 1, "test", lease));
  // Moving on clears both counters.
  store->insert({"q", {"a", "b"}, json::object(), json::object()});
  const auto q = claim_token(*store, "q", 0);
  CHECK(store->record_isolated_crash("q", 0, q, "crash", soon));
  const auto q2 = claim_token(*store, "q", 0);
  CHECK(store->advance("q", 0, q2, soon));
  CHECK(store->find("q")->step_isolated_crash_count == 0);
  CHECK(store->find("q")->step_crash_count == 0);
}

TEST_CASE("unclaimed steps wait longer before recovery, and old programs are left alone", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"released", {"a"}, json::object(), json::object()}, 1ms);  // expected at once
  store->insert({"crashed", {"a"}, json::object(), json::object()}, 10min);
  REQUIRE(store->claim("crashed", 0, "dead", 1ms));  // its worker died at once
  std::this_thread::sleep_for(1500ms);
  store::RecoveryWindow patient(1ms);
  patient.unclaimed_after = 10min;  // e.g. program-executor-js workers share the table
  auto overdue = store->overdue(patient, 10);
  REQUIRE(overdue.size() == 1);
  CHECK(overdue[0].run_id == "crashed");  // an expired claim is not waited for
  CHECK_FALSE(store->begin_recovery("released", 0, 0, patient, soon));
  overdue = store->overdue(store::RecoveryWindow(1ms), 10);
  CHECK(overdue.size() == 2);
  // Programs that last moved before max_age are neither recovered nor lost
  // from sight: they are counted.
  store::RecoveryWindow recent(1ms);
  recent.max_age = 1ms;
  CHECK(store->overdue(recent, 10).empty());
  CHECK(store->count_abandoned(recent) == 2);
  CHECK(store->count_abandoned(store::RecoveryWindow(1ms)) == 0);  // no limit
}

TEST_CASE("timestamps read back as UTC whatever the session's time zone", "[store]") {
  test::ScratchTable table;
  auto database = table.open(1);  // one session: the one we move to another zone
  database->ensure_schema();
  auto store = database->program_store();
  const std::string dialect(database->dialect().name());
  {
    soci::session session(database->pool());
    if (dialect == "postgresql") session << "SET TIME ZONE 'Asia/Tokyo'";
    if (dialect == "mysql") session << "SET time_zone = '+09:00'";
  }
  store->insert({"tz", {"a"}, json::object(), json::object()});
  const auto token = claim_token(*store, "tz", 0);
  REQUIRE(store->finish("tz", 0, token));
  const auto row = store->find("tz");
  CHECK(std::abs(seconds_from_now(row->created_at)) < 120);
  CHECK(std::abs(seconds_from_now(*row->finished_at)) < 120);
  if (dialect == "postgresql") {
    // A value written with an offset (as the original's driver does) reads back in UTC.
    {
      soci::session session(database->pool());
      session << "UPDATE " + database->dialect().quote(table.name()) +
                     " SET errored_at = '2024-01-02 03:04:05.678+09' WHERE run_id = 'tz'";
    }
    CHECK(store->find("tz")->errored_at == "2024-01-01T18:04:05.678Z");
  }
}

TEST_CASE("JSON columns keep unicode, nesting and large job data", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  const json program_data = {{"name", "Zoë 日本 🚀"}, {"nested", {{"list", {1, 2.5, "x", nullptr}}}},
                             {"quote", "it's \"quoted\" \\ and ; -- not SQL"}};
  store->insert({"json", {"ünïcode.job", "b"}, program_data, json::object()});
  auto row = store->find("json");
  CHECK(row->program_data == program_data);
  CHECK(row->jobs == std::vector<std::string>{"ünïcode.job", "b"});
  const auto token = claim_token(*store, "json", 0);
  // Larger than psqlODBC's and MySQL's default buffer sizes.
  const std::string big(300 * 1024, 'z');
  store->update_job_data("json", "ünïcode.job", token, [&](const json&) {
    return json{{"blob", big}, {"emoji", "🚀"}};
  });
  row = store->find("json");
  CHECK(row->job_data["ünïcode.job"]["blob"].get<std::string>().size() == big.size());
  CHECK(row->job_data["ünïcode.job"]["emoji"] == "🚀");
}

TEST_CASE("job data updates are read-modify-write of one job's entry, under the claim", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"r", {"a", "b"}, json::object(), {{"b", {{"keep", 1}}}}});
  const auto token = claim_token(*store, "r", 0);
  auto result = store->update_job_data("r", "a", token, [](const json& current) {
    CHECK(current == json::object());
    return json{{"x", 1}};
  });
  CHECK(result == json{{"x", 1}});
  CHECK(store->find("r")->job_data == json{{"a", {{"x", 1}}}, {"b", {{"keep", 1}}}});
  CHECK_THROWS_WITH(store->update_job_data("r", "a", token + 7, [](const json& j) { return j; }),
                    Catch::Contains("claim"));
  CHECK_THROWS_WITH(store->update_job_data("missing", "a", 1, [](const json& j) { return j; }),
                    Catch::Contains("no program with run id missing"));
}

TEST_CASE("concurrent claims: exactly one wins, concurrent job data updates lose nothing",
          "[store]") {
  test::ScratchTable table;
  auto first = table.open(4);
  auto second = table.open(4);  // stands for a second daemon process
  first->ensure_schema();
  auto store_a = first->program_store();
  auto store_b = second->program_store();
  constexpr int programs = 12;
  for (int p = 0; p < programs; ++p) {
    store_a->insert({"p" + std::to_string(p), {"j", "k"}, json::object(), json::object()});
  }
  std::atomic<int> claims{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      store::ProgramStore& store = t % 2 ? *store_a : *store_b;
      try {
        for (int p = 0; p < programs; ++p) {
          if (store.claim("p" + std::to_string(p), 0, "worker-" + std::to_string(t), lease)) ++claims;
        }
      } catch (const std::exception& e) {
        ++errors;
        FAIL_CHECK(e.what());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  threads.clear();
  CHECK(errors == 0);
  CHECK(claims == programs);

  // Everyone who knows the token updates one program's job data at once.
  const auto token = store_a->find("p0")->lease_token;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      store::ProgramStore& store = t % 2 ? *store_a : *store_b;
      try {
        for (int i = 0; i < 10; ++i) {
          store.update_job_data("p0", "j", token, [](const json& current) {
            return json{{"touches", current.value("touches", 0) + 1}};
          });
        }
      } catch (const std::exception& e) {
        ++errors;
        FAIL_CHECK(e.what());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(errors == 0);
  CHECK(store_a->find("p0")->job_data["j"]["touches"] == 60);
}

TEST_CASE("overdue programs are found, and of two sweepers one begins the recovery", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"late", {"a", "b"}, {{"k", "v"}}, json::object()}, 1ms);
  store->insert({"fine", {"a"}, json::object(), json::object()}, 10min);
  store->insert({"claimed", {"a"}, json::object(), json::object()}, 1ms);
  const auto held = claim_token(*store, "claimed", 0);  // a live claim: not overdue
  (void)held;
  std::this_thread::sleep_for(50ms);
  const auto overdue = store->overdue(store::RecoveryWindow(10s), 10);
  REQUIRE(overdue.size() == 1);
  CHECK(overdue[0].run_id == "late");
  CHECK(overdue[0].step == 0);
  CHECK(overdue[0].jobs == std::vector<std::string>{"a", "b"});
  CHECK(overdue[0].program_data == json{{"k", "v"}});
  CHECK(store->begin_recovery("late", 0, overdue[0].token, store::RecoveryWindow(10s), 1min));
  CHECK_FALSE(store->begin_recovery("late", 0, overdue[0].token, store::RecoveryWindow(10s), 1min));
  CHECK(store->overdue(store::RecoveryWindow(10s), 10).empty());
}

TEST_CASE("an expired claim that was never released counts as a crash", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"c", {"a"}, json::object(), json::object()});
  REQUIRE(store->claim("c", 0, "dies", 1ms));
  std::this_thread::sleep_for(50ms);
  const auto claim = store->claim("c", 0, "successor", lease);
  REQUIRE(claim);
  CHECK(claim->crashes == 1);
  CHECK(store->find("c")->step_crash_count == 1);
}

TEST_CASE("a batch of steps is claimed in one transaction and committed in another", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"b1", {"a", "b"}, json::object(), json::object()});
  store->insert({"b2", {"a"}, json::object(), json::object()});
  store->insert({"b3", {"a", "b"}, json::object(), json::object()});

  const auto rows = store->find_all({"b2", "missing", "b1", "b2"});
  REQUIRE(rows.size() == 4);
  REQUIRE(rows[0]);
  CHECK(rows[0]->run_id == "b2");
  CHECK(rows[0]->jobs == std::vector<std::string>{"a"});
  CHECK_FALSE(rows[1]);
  REQUIRE(rows[2]);
  CHECK(rows[2]->jobs == std::vector<std::string>{"a", "b"});
  CHECK(rows[2]->step == 0);
  CHECK_FALSE(rows[2]->ended());
  CHECK(rows[3]->id == rows[0]->id);

  // b1 twice: the second request finds the step claimed by the first; b3 at
  // a step it is not at.
  const auto claims = store->claim_all({{"b1", 0}, {"b2", 0}, {"b1", 0}, {"b3", 1}}, "w", lease);
  REQUIRE(claims.size() == 4);
  REQUIRE(claims[0]);
  REQUIRE(claims[1]);
  CHECK_FALSE(claims[2]);
  CHECK_FALSE(claims[3]);
  CHECK(store->find("b1")->lease_owner == "w");
  CHECK(claims[0]->token == store->find("b1")->lease_token);
  CHECK(claims[1]->token == store->find("b2")->lease_token);

  // b1 advances, b2 (its last step) finishes, and a wrong token is fenced off.
  const auto committed = store->commit_all({{"b1", 0, claims[0]->token, false},
                                            {"b2", 0, claims[1]->token, true},
                                            {"b3", 0, 12345, false}},
                                           soon);
  CHECK(committed == std::vector<bool>{true, true, false});
  const auto b1 = store->find("b1");
  CHECK(b1->step == 1);
  CHECK_FALSE(b1->lease_owner);
  CHECK(b1->lease_until);
  CHECK(store->find("b2")->finished_at);
  CHECK(store->find("b3")->step == 0);
  CHECK(store->claim_all({}, "w", lease).empty());
  CHECK(store->commit_all({}, soon).empty());
}

TEST_CASE("a step is claimed on its message's word, with its row, where the database can", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"u1", {"a", "b", "c"}, json{{"p", 1}}, json{{"a", {{"n", 1}}}}});
  store->insert({"u2", {"a"}, json::object(), json::object()});
  store->insert({"u3", {"a", "b"}, json::object(), json::object()});
  store->insert({"u4", {"a"}, json::object(), json::object()});
  store->insert({"u5", {"a"}, json::object(), json::object()});
  CHECK(store->advance("u1", 0, claim_token(*store, "u1", 0), soon));  // u1 at step 1
  CHECK(store->finish("u4", 0, claim_token(*store, "u4", 0)));         // u4 finished
  const std::int64_t held = claim_token(*store, "u5", 0, "other");     // u5 held by another worker
  const std::int64_t u1_token = store->find("u1")->lease_token;

  // u1 with 2 jobs left: step 1 (its step); u2 twice (a copy); u3 with 1 job
  // left: step 1 (it is at 0); a run id that does not exist; u4 ended; u5 held.
  const auto claimed = store->claim_unread(
      {{"u1", 2}, {"u2", 1}, {"u2", 1}, {"u3", 1}, {"missing", 1}, {"u4", 1}, {"u5", 1}}, "w", lease);
  REQUIRE(claimed.size() == 7);
  // By the dialect, not the backend: PostgreSQL behind ODBC claims this way too.
  const std::string dialect(database->dialect().name());
  if (dialect == "mysql") {
    // No UPDATE ... RETURNING here: nothing is claimed this way, and the
    // caller reads the rows and claims with claim_all.
    for (const auto& c : claimed) CHECK_FALSE(c);
    CHECK_FALSE(store->find("u1")->lease_owner);
    return;
  }
  REQUIRE(claimed[0]);
  const store::ProgramRow& u1 = claimed[0]->row;
  CHECK(u1.run_id == "u1");
  CHECK(u1.id == store->find("u1")->id);
  CHECK(u1.jobs == std::vector<std::string>{"a", "b", "c"});
  CHECK(u1.step == 1);
  CHECK(u1.lease_owner == "w");
  CHECK(claimed[0]->claim.token == u1_token + 1);
  CHECK(u1.lease_token == claimed[0]->claim.token);
  CHECK(claimed[0]->claim.crashes == 0);
  CHECK(u1.job_data == json::object());  // not read: jobs read it through the store
  CHECK_THAT(u1.created_at, Catch::Matchers::Matches(iso_utc));
  REQUIRE(claimed[1]);
  CHECK(claimed[1]->row.step == 0);
  CHECK_FALSE(claimed[2]);
  for (std::size_t i = 3; i < claimed.size(); ++i) CHECK_FALSE(claimed[i]);

  // What the claim wrote is what find() sees; the others are untouched.
  const auto row = store->find("u1");
  CHECK(row->lease_owner == "w");
  CHECK(row->lease_token == claimed[0]->claim.token);
  CHECK(row->job_data == json{{"a", {{"n", 1}}}});
  CHECK_FALSE(store->find("u3")->lease_owner);
  CHECK(store->find("u5")->lease_owner == "other");
  CHECK(store->find("u5")->lease_token == held);
  // The claim fences like any other: its token commits, the old one does not.
  CHECK_FALSE(store->advance("u1", 1, u1_token, soon));
  CHECK(store->advance("u1", 1, claimed[0]->claim.token, soon));
  CHECK(store->claim_unread({}, "w", lease).empty());
}

TEST_CASE("a reserved word in mixed case works as a table name (quoted per dialect)", "[store]") {
  test::ScratchTable table("Order");
  auto database = table.open(1);
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"q", {"a"}, json::object(), json::object()});
  CHECK(store->find("q")->jobs == std::vector<std::string>{"a"});
  CHECK(database->schema_status().current());
}

TEST_CASE("bad settings are refused before anything is touched", "[store]") {
  test::TemporaryDirectory dir;
  auto settings = test::test_database_settings(dir, "x; DROP TABLE y");
  CHECK_THROWS_WITH(store::Database(settings, 1), Catch::Contains("invalid table name"));
  settings.table = std::string(49, 't');
  CHECK_THROWS_WITH(store::Database(settings, 1), Catch::Contains("at most 48 characters"));
}

TEST_CASE("list filters by state and job, newest first, resume restarts an ended program",
          "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"l1", {"export.fetch", "b"}, json::object(), json::object()});
  store->insert({"l2", {"a"}, json::object(), {{"a", {{"kept", true}}}}});
  store->insert({"l3", {"a", "export.fetch"}, json::object(), json::object()});
  const auto token = store->claim("l2", 0, "w", lease)->token;
  REQUIRE(store->fail("l2", 0, token, "boom"));
  REQUIRE(store->cancel("l3", "cancelled"));

  const auto ids = [](const std::vector<store::ProgramRow>& rows) {
    std::vector<std::string> run_ids;
    for (const auto& row : rows) run_ids.push_back(row.run_id);
    return run_ids;
  };
  const auto filter = [](std::optional<std::string> state, std::optional<std::string> job,
                          int limit = 20, int offset = 0) {
    store::ProgramFilter f;
    f.state = std::move(state);
    f.job = std::move(job);
    f.limit = limit;
    f.offset = offset;
    return f;
  };
  CHECK(ids(store->list(filter({}, {}))) == std::vector<std::string>{"l3", "l2", "l1"});
  CHECK(ids(store->list(filter("running", {}))) == std::vector<std::string>{"l1"});
  CHECK(ids(store->list(filter("errored", {}))) == std::vector<std::string>{"l2"});
  CHECK(ids(store->list(filter("cancelled", {}))) == std::vector<std::string>{"l3"});
  CHECK(ids(store->list(filter({}, "export.fetch"))) == std::vector<std::string>{"l3", "l1"});
  CHECK(ids(store->list(filter({}, {}, 1, 1))) == std::vector<std::string>{"l2"});
  // The job filter matches a whole job name, byte for byte (the jobs index on
  // PostgreSQL, the JSON string in the text elsewhere): no prefix, no case
  // folding, no LIKE wildcards.
  store->insert({"l4", {"ab", "A", "x_y"}, json::object(), json::object()});
  CHECK(ids(store->list(filter({}, "a"))) == std::vector<std::string>{"l3", "l2"});
  CHECK(ids(store->list(filter({}, "A"))) == std::vector<std::string>{"l4"});
  CHECK(ids(store->list(filter({}, "export"))).empty());
  CHECK(ids(store->list(filter({}, "x%"))).empty());
  CHECK(ids(store->list(filter({}, "x.y"))).empty());
  CHECK(ids(store->list(filter("running", "ab"))) == std::vector<std::string>{"l4"});
  CHECK(ids(store->list(filter("errored", "export.fetch"))).empty());
  // Migration 5's listing index is in place (and on PostgreSQL the jobs index).
  {
    store::SessionLease lease(*database);
    const store::Dialect& dialect = database->dialect();
    CHECK(dialect.index_exists(lease.session(), table.name(), table.name() + "_unfinished_index"));
    if (dialect.name() == std::string_view("postgresql")) {
      CHECK(dialect.index_exists(lease.session(), table.name(), table.name() + "_jobs_index"));
    }
  }

  CHECK_FALSE(store->resume("l1", 0, soon));  // running: nothing to resume
  CHECK(store->resume("l2", 0, soon));
  const auto row = store->find("l2");
  CHECK_FALSE(row->errored_at);
  CHECK_FALSE(row->error_message);
  CHECK(row->job_data == json{{"a", {{"kept", true}}}});
  CHECK(store->claim("l2", 0, "w", lease));
}

TEST_CASE("list --worker finds the programs a host, a process or one worker holds", "[store]") {
  test::ScratchTable table;
  auto database = table.open();
  database->ensure_schema();
  auto store = database->program_store();
  for (const char* run_id : {"w1", "w2", "w3", "w4", "w5", "w6"}) {
    store->insert({run_id, {"a"}, json::object(), json::object()});
  }
  REQUIRE(store->claim("w1", 0, "node-1:100:0", lease));
  REQUIRE(store->claim("w2", 0, "node-1:100:1", lease));
  REQUIRE(store->claim("w3", 0, "node-1:200:0", lease));
  REQUIRE(store->claim("w4", 0, "node-10:100:0", lease));  // "node-1" is not its prefix
  REQUIRE(store->claim("w5", 0, "nodeX1:100:0", lease));   // "_" and "%" are no wildcards
  // w6: not claimed.
  const auto held_by = [&](const std::string& worker) {
    store::ProgramFilter filter;
    filter.worker = worker;
    std::vector<std::string> run_ids;
    for (const auto& row : store->list(filter)) run_ids.push_back(row.run_id);
    return run_ids;
  };
  CHECK(held_by("node-1") == std::vector<std::string>{"w3", "w2", "w1"});
  CHECK(held_by("node-1:100") == std::vector<std::string>{"w2", "w1"});
  CHECK(held_by("node-1:100:1") == std::vector<std::string>{"w2"});
  CHECK(held_by("node-10") == std::vector<std::string>{"w4"});
  CHECK(held_by("node_1").empty());
  CHECK(held_by("node%").empty());
  CHECK(held_by("node-1:10").empty());
  CHECK(held_by("node-2").empty());
  // With the other filters.
  store::ProgramFilter running_a;
  running_a.worker = "node-1:100";
  running_a.state = "running";
  running_a.job = "a";
  CHECK(store->list(running_a).size() == 2);
  // Released by its commit: no longer held.
  const auto token = store->claim("w6", 0, "node-1:300:0", lease)->token;
  CHECK(held_by("node-1:300") == std::vector<std::string>{"w6"});
  REQUIRE(store->fail("w6", 0, token, "boom"));
  CHECK(held_by("node-1:300").empty());
}
