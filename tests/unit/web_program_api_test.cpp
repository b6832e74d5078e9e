// The HTTP API's work apart from HTTP (web::ProgramApi), against a real SQLite
// table in a temporary directory and a broker that cannot be reached
// (127.0.0.1:1): every refusal of docs/api.md, and that a refused request
// leaves the table as it was.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/amqp/connection_settings.hpp"
#include "program_executor/amqp/queue_topology.hpp"
#include "program_executor/executor/attempt_timeline.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/web/api_problem.hpp"
#include "program_executor/web/program_api.hpp"
#include "program_executor/web/publisher_pool.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;
using Query = std::map<std::string, std::string>;

namespace {

// Nothing listens on port 1: creating the pool connects to nothing,
// borrowing a publisher from it fails.
constexpr const char* unreachable_broker = "amqp://guest:guest@127.0.0.1:1/";

config::Config test_config(const test::TemporaryDirectory& dir) {
  config::Config config;
  config.amqp.url = unreachable_broker;
  config.amqp.queue = "pe-web-unit";
  config.database.backend = config::DatabaseBackend::sqlite3;
  config.database.connection = "db=" + (dir.path() / "programs.db").string();
  config.database.table = "programs";
  config.plugins.directory = "/usr/lib/program-executor/plugins";
  return config;
}

std::unique_ptr<store::Database> open_database(const config::Config& config) {
  auto database = std::make_unique<store::Database>(config.database, 2);
  database->ensure_schema();
  return database;
}

// A ProgramApi with everything it needs, the injected functions recording
// their calls.
struct Api {
  test::TemporaryDirectory dir;
  config::Config config = test_config(dir);
  std::unique_ptr<store::Database> database = open_database(config);
  std::unique_ptr<store::ProgramStore> store = database->program_store();
  web::PublisherPool publishers{amqp::BrokerNodes::from(config.amqp, 0),
                                amqp::QueueTopology::from(config.amqp), "pe-web-unit"};
  std::vector<std::pair<std::string, std::string>> known_jobs{
      {"extract", "/usr/lib/program-executor/plugins/libetl.so"},
      {"load", "/usr/lib/program-executor/plugins/libetl.so"},
      {"demo.count", "/usr/lib/program-executor/plugins/libdemo.so"}};
  std::vector<std::pair<std::string, long long>> steps{{"2026-12-06T09:01:00Z", 840},
                                                       {"2026-12-06T09:02:00Z", 0},
                                                       {"2026-12-06T09:03:00Z", 17}};
  std::vector<int> steps_asked;  ///< the `minutes` of each call of steps_per_minute
  web::ProgramApi api{config, *store, publishers, [this] { return known_jobs; },
                      [this](int minutes) {
                        steps_asked.push_back(minutes);
                        return steps;
                      }};

  std::vector<store::ProgramRow> rows() {
    store::ProgramFilter all;
    all.limit = 1000;
    return store->list(all);
  }

  store::ProgramRow row(const std::string& run_id) {
    auto found = store->find(run_id);
    REQUIRE(found);
    return *found;
  }

  void running(const std::string& run_id, std::vector<std::string> jobs = {"extract", "load"}) {
    store->insert({run_id, std::move(jobs), {{"day", "2026-12-06"}}, {{"load", {{"batch", 500}}}}},
                  1min);
  }

  // Runs every step of a new program to the end.
  void finished(const std::string& run_id, std::vector<std::string> jobs = {"extract", "load"}) {
    running(run_id, jobs);
    const int last = static_cast<int>(jobs.size()) - 1;
    for (int step = 0; step <= last; ++step) {
      const auto claim = store->claim(run_id, step, "unit:1:0", 30s);
      REQUIRE(claim);
      if (step < last) {
        REQUIRE(store->advance(run_id, step, claim->token, 1min));
      } else {
        REQUIRE(store->finish(run_id, step, claim->token));
      }
    }
  }

  // A new program whose step `at` failed for good.
  void errored(const std::string& run_id, int at = 0, const std::string& why = "disk full") {
    running(run_id);
    for (int step = 0; step <= at; ++step) {
      const auto claim = store->claim(run_id, step, "unit:1:0", 30s);
      REQUIRE(claim);
      if (step < at) {
        REQUIRE(store->advance(run_id, step, claim->token, 1min));
      } else {
        REQUIRE(store->fail(run_id, step, claim->token, why));
      }
    }
  }

  void cancelled(const std::string& run_id) {
    running(run_id);
    REQUIRE(store->cancel(run_id, "cancelled"));
  }
};

// What a worker hands the store when it ends an attempt of `job`.
store::AttemptEnding ending(std::string_view outcome, const std::string& job, int attempt,
                            long long ms, const std::string& error = {}) {
  return store::AttemptEnding{job, attempt, "unit:1:0", std::string(outcome), ms, error,
                              error.empty() ? std::string() : "program_executor::sdk::RetryableError"};
}

// The ApiProblem `call` throws (the test fails if it throws none).
template <typename Call>
web::ApiProblem refusal(Call&& call) {
  try {
    (void)call();
  } catch (const web::ApiProblem& problem) {
    return problem;
  }
  FAIL("the call was not refused (no ApiProblem)");
  throw std::logic_error("unreachable");
}

void check_problem(const web::ApiProblem& problem, int status, const std::string& slug) {
  CHECK(problem.status() == status);
  CHECK(problem.slug() == slug);
  const json body = problem.body();
  CHECK(body["type"] == "urn:program-executor:problem:" + slug);
  CHECK(body["status"] == status);
  CHECK(body["title"].is_string());
  CHECK(body["detail"] == problem.detail());
}

std::vector<std::string> run_ids(const json& programs) {
  std::vector<std::string> ids;
  for (const auto& program : programs) ids.push_back(program["runId"].get<std::string>());
  return ids;
}

}  // namespace

TEST_CASE("create refuses a body that is not JSON with 400 invalid-json and writes nothing",
          "[web][api][create]") {
  Api api;
  for (const char* body : {"", "{", "{not json", R"({"jobs": ["extract"]} trailing)",
                           "jobs=extract", R"({"jobs": ["extract",]})"}) {
    INFO("body: " << body);
    const auto problem = refusal([&] { return api.api.create(body); });
    check_problem(problem, 400, "invalid-json");
    CHECK_THAT(problem.detail(), Catch::Contains("not valid JSON"));
  }
  CHECK(api.rows().empty());
}

TEST_CASE("create refuses every malformed request with 400 invalid-request and writes nothing",
          "[web][api][create]") {
  Api api;
  const std::string long_name(256, 'j');
  json too_many = {{"jobs", json::array()}};
  for (int i = 0; i < 10001; ++i) too_many["jobs"].push_back("extract");

  const std::pair<std::string, std::string> cases[] = {
      // not an object
      {"[\"extract\"]", "must be a JSON object"},
      {"null", "must be a JSON object"},
      {"\"extract\"", "must be a JSON object"},
      {"42", "must be a JSON object"},
      // jobs missing
      {"{}", "'jobs' is required"},
      {R"({"programData": {"day": "2026-12-06"}})", "'jobs' is required"},
      // jobs not an array
      {R"({"jobs": "extract"})", "'jobs' must be an array"},
      {R"({"jobs": {"extract": true}})", "'jobs' must be an array"},
      {R"({"jobs": null})", "'jobs' must be an array"},
      // empty
      {R"({"jobs": []})", "at least one job name"},
      // too many
      {too_many.dump(), "at most 10000"},
      // not a string
      {R"({"jobs": ["extract", 42]})", "'jobs'[1] must be a string"},
      {R"({"jobs": [null]})", "'jobs'[0] must be a string"},
      {R"({"jobs": [["extract"]]})", "'jobs'[0] must be a string"},
      // not a job name
      {R"({"jobs": ["extract", "has space"]})", "'jobs'[1] 'has space' is not a job name"},
      {R"({"jobs": [""]})", "'jobs'[0] '' is not a job name"},
      {R"({"jobs": ["../etc/passwd"]})", "is not a job name"},
      {R"({"jobs": ["caf\u00e9"]})", "is not a job name"},
      {json{{"jobs", json::array({long_name})}}.dump(), "is not a job name"},
      // unknown members, the allowed ones listed
      {R"({"jobs": ["extract"], "job_data": {}})",
       "unknown member 'job_data' (expected jobs, programData, jobData)"},
      {R"({"jobs": ["extract"], "runId": "mine"})", "unknown member 'runId'"},
      // programData / jobData not objects
      {R"({"jobs": ["extract"], "programData": []})", "'programData' must be an object"},
      {R"({"jobs": ["extract"], "programData": "day=1"})", "'programData' must be an object"},
      {R"({"jobs": ["extract"], "programData": null})", "'programData' must be an object"},
      {R"({"jobs": ["extract"], "jobData": 5})", "'jobData' must be an object"},
      {R"({"jobs": ["extract"], "jobData": [{"load": {}}]})", "'jobData' must be an object"},
  };
  for (const auto& [body, detail] : cases) {
    INFO("body: " << body.substr(0, 200));
    const auto problem = refusal([&] { return api.api.create(body); });
    check_problem(problem, 400, "invalid-request");
    CHECK_THAT(problem.detail(), Catch::Contains(detail));
  }
  CHECK(api.rows().empty());
}

TEST_CASE("create refuses jobs no plugin has with 422 listing each unknown job once",
          "[web][api][create]") {
  Api api;
  REQUIRE_FALSE(api.config.web.allow_unknown_jobs);
  const auto problem = refusal([&] {
    return api.api.create(R"({"jobs": ["extract", "reindex", "load", "vacuum", "reindex"]})");
  });
  check_problem(problem, 422, "unknown-jobs");
  CHECK(problem.body()["unknownJobs"] == json::array({"reindex", "vacuum"}));
  CHECK_THAT(problem.detail(), Catch::Contains("reindex, vacuum") &&
                                   Catch::Contains("/usr/lib/program-executor/plugins") &&
                                   Catch::Contains("web.allow_unknown_jobs"));
  CHECK(api.rows().empty());
}

TEST_CASE("create answers 503 and writes nothing when the broker cannot be reached",
          "[web][api][create]") {
  Api api;
  SECTION("known jobs") {
    const auto problem = refusal([&] {
      return api.api.create(R"({"jobs": ["extract", "load"], "programData": {"day": "2026-12-06"},
                                 "jobData": {"load": {"batch": 500}}})");
    });
    check_problem(problem, 503, "unavailable");
    CHECK_THAT(problem.detail(), Catch::Contains("cannot reach the broker") &&
                                     Catch::Contains("nothing was created"));
  }
  SECTION("unknown jobs with web.allow_unknown_jobs: true") {
    api.config.web.allow_unknown_jobs = true;  // the API holds the configuration by reference
    const auto problem = refusal([&] { return api.api.create(R"({"jobs": ["reindex"]})"); });
    check_problem(problem, 503, "unavailable");
  }
  CHECK(api.rows().empty());
  // A second attempt does not find a half-made publisher in the pool.
  const auto again = refusal([&] { return api.api.create(R"({"jobs": ["extract"]})"); });
  check_problem(again, 503, "unavailable");
  CHECK(api.rows().empty());
}

TEST_CASE("list refuses a bad state, limit, cursor or an unknown parameter with 400",
          "[web][api][list]") {
  Api api;
  api.running("r1");
  const Query bad[] = {
      {{"state", "paused"}},  {{"state", "RUNNING"}}, {{"state", "running,errored"}},
      {{"limit", "0"}},       {{"limit", "501"}},     {{"limit", "x"}},
      {{"limit", ""}},        {{"limit", "-1"}},      {{"limit", "3.5"}},
      {{"limit", " 3"}},      {{"limit", "3 "}},      {{"limit", "99999999999999999999"}},
      {{"cursor", "x"}},      {{"cursor", "0"}},      {{"cursor", "-5"}},
      {{"cursor", "12abc"}},  {{"cursor", "1.5"}},    {{"offset", "10"}},
      {{"page", "2"}},        {{"State", "running"}}, {{"state", "running"}, {"sort", "id"}},
  };
  for (const Query& query : bad) {
    INFO("query: " << json(query).dump());
    const auto problem = refusal([&] { return api.api.list(query); });
    check_problem(problem, 400, "invalid-request");
  }
  CHECK_THAT(refusal([&] { return api.api.list({{"limit", "501"}}); }).detail(),
             Catch::Contains("'limit' must be a whole number from 1 to 500, not '501'"));
  CHECK_THAT(
      refusal([&] { return api.api.list({{"page", "2"}}); }).detail(),
      Catch::Contains("unknown query parameter 'page' (expected state, job, limit, cursor)"));
  CHECK_THAT(refusal([&] { return api.api.list({{"cursor", "x"}}); }).detail(),
             Catch::Contains("'cursor' must be the nextCursor of a previous page"));

  // The bounds themselves, and empty state, job and cursor (as a form sends them), are fine.
  for (const Query& query : {Query{{"limit", "1"}}, Query{{"limit", "500"}},
                             Query{{"state", ""}, {"job", ""}, {"cursor", ""}}}) {
    INFO("query: " << json(query).dump());
    CHECK(api.api.list(query).status == 200);
  }
}

TEST_CASE("list pages newest first by keyset: 7 programs by 3 are 3, 3 and 1, then no cursor",
          "[web][api][list]") {
  Api api;
  for (int i = 0; i < 7; ++i) api.running("p" + std::to_string(i));

  std::vector<std::string> seen;
  std::vector<std::size_t> sizes;
  Query query{{"limit", "3"}};
  json next;
  for (int page = 0; page < 4; ++page) {
    const web::ApiResponse response = api.api.list(query);
    REQUIRE(response.status == 200);
    const json& programs = response.body["programs"];
    sizes.push_back(programs.size());
    for (const auto& program : programs) {
      // The list leaves out the data.
      CHECK_FALSE(program.contains("jobData"));
      CHECK_FALSE(program.contains("programData"));
      CHECK(program["state"] == "running");
      CHECK(program["currentJob"] == "extract");
      seen.push_back(program["runId"].get<std::string>());
    }
    next = response.body["nextCursor"];
    if (next.is_null()) break;
    REQUIRE(next.is_string());
    if (page == 0) api.running("p7");  // created meanwhile: does not shift the next pages
    query["cursor"] = next.get<std::string>();
  }
  CHECK(sizes == std::vector<std::size_t>{3, 3, 1});
  CHECK(next.is_null());
  CHECK(seen == std::vector<std::string>{"p6", "p5", "p4", "p3", "p2", "p1", "p0"});
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());

  // Default limit (50): everything on one page, the newest first.
  const web::ApiResponse all = api.api.list({});
  CHECK(run_ids(all.body["programs"]).front() == "p7");
  CHECK(all.body["programs"].size() == 8);
  CHECK(all.body["nextCursor"].is_null());
}

TEST_CASE("a last page that is full has no cursor to an empty page", "[web][api][list]") {
  Api api;
  for (int i = 0; i < 6; ++i) api.running("p" + std::to_string(i));
  const web::ApiResponse first = api.api.list({{"limit", "3"}});
  REQUIRE(first.body["nextCursor"].is_string());
  const web::ApiResponse second =
      api.api.list({{"limit", "3"}, {"cursor", first.body["nextCursor"].get<std::string>()}});
  CHECK(run_ids(second.body["programs"]) == std::vector<std::string>{"p2", "p1", "p0"});
  CHECK(second.body["nextCursor"].is_null());
}

TEST_CASE("the job filter matches whole job names exactly: no wildcards, case counts",
          "[web][api][list]") {
  Api api;
  api.running("dash", {"a-b"});
  api.running("upper", {"Extract"});
  api.running("under", {"a_b"});
  api.running("longer", {"a_bc"});
  const auto ids = [&](const Query& query) { return run_ids(api.api.list(query).body["programs"]); };
  using Ids = std::vector<std::string>;
  CHECK(ids({{"job", "a_b"}}) == Ids{"under"});     // '_' is no LIKE wildcard here
  CHECK(ids({{"job", "extract"}}).empty());           // nor is case ignored
  CHECK(ids({{"job", "Extract"}}) == Ids{"upper"});
  CHECK(ids({{"job", "a%"}}).empty());
}

TEST_CASE("a body nested deeper than 64 levels is refused with 400 and writes nothing",
          "[web][api][create]") {
  Api api;
  std::string deep = "{\"jobs\":[\"extract\"],\"programData\":{\"x\":";
  for (int i = 0; i < 30000; ++i) deep += "[";
  for (int i = 0; i < 30000; ++i) deep += "]";
  deep += "}}";
  const web::ApiProblem problem = refusal([&] { return api.api.create(deep); });
  CHECK(problem.status() == 400);
  CHECK(problem.detail() == "the body is nested deeper than 64 levels");
  CHECK(api.api.list({}).body["programs"].empty());
}

TEST_CASE("list filters by state and by job", "[web][api][list]") {
  Api api;
  api.running("run-1", {"extract"});
  api.finished("done");
  api.errored("failed");
  api.cancelled("stopped");
  api.running("run-2", {"extract", "load"});

  const auto ids = [&](const Query& query) {
    const web::ApiResponse response = api.api.list(query);
    REQUIRE(response.status == 200);
    return run_ids(response.body["programs"]);
  };
  using Ids = std::vector<std::string>;
  CHECK(ids({}) == Ids{"run-2", "stopped", "failed", "done", "run-1"});
  CHECK(ids({{"state", "running"}}) == Ids{"run-2", "run-1"});
  CHECK(ids({{"state", "finished"}}) == Ids{"done"});
  CHECK(ids({{"state", "errored"}}) == Ids{"failed"});  // not the cancelled one
  CHECK(ids({{"state", "cancelled"}}) == Ids{"stopped"});
  CHECK(ids({{"job", "load"}}) == Ids{"run-2", "stopped", "failed", "done"});
  CHECK(ids({{"job", "load"}, {"state", "running"}}) == Ids{"run-2"});
  CHECK(ids({{"job", "reindex"}}).empty());

  const web::ApiResponse errored = api.api.list({{"state", "errored"}});
  CHECK(errored.body["programs"][0]["state"] == "errored");
  CHECK(errored.body["programs"][0]["error"] == "disk full");
}

TEST_CASE("get answers the program with its data, or 404", "[web][api][get]") {
  Api api;
  api.running("r1");
  const web::ApiResponse response = api.api.get("r1");
  CHECK(response.status == 200);
  CHECK(response.body["runId"] == "r1");
  CHECK(response.body["state"] == "running");
  CHECK(response.body["programData"] == json{{"day", "2026-12-06"}});
  CHECK(response.body["jobData"] == json{{"load", {{"batch", 500}}}});

  const auto problem = refusal([&] { return api.api.get("no-such-run"); });
  check_problem(problem, 404, "not-found");
  CHECK_THAT(problem.detail(), Catch::Contains("no-such-run"));
}

TEST_CASE("attempts answers the history oldest first and the reason, as explain --json does",
          "[web][api][attempts]") {
  Api api;
  api.running("r1");
  // Step 0 fails once and is retried, then both steps commit.
  auto claim = api.store->claim("r1", 0, "unit:1:0", 30s);
  REQUIRE(claim);
  const auto retry = ending(store::attempt_outcome::retry, "extract", 1, 40, "connection reset");
  REQUIRE(api.store->record_retry("r1", 0, claim->token, "connection reset", 1min, &retry));
  claim = api.store->claim("r1", 0, "unit:1:0", 30s);
  REQUIRE(claim);
  REQUIRE(api.store->commit_all(
              {{"r1", 0, claim->token, false, ending(store::attempt_outcome::finished, "extract", 2, 12)}},
              1min) == std::vector<bool>{true});
  claim = api.store->claim("r1", 1, "unit:1:0", 30s);
  REQUIRE(claim);
  REQUIRE(api.store->commit_all(
              {{"r1", 1, claim->token, true, ending(store::attempt_outcome::finished, "load", 1, 7)}},
              1min) == std::vector<bool>{true});

  const web::ApiResponse response = api.api.attempts("r1");
  CHECK(response.status == 200);
  CHECK(response.headers.empty());
  const json& body = response.body;
  std::set<std::string> keys;
  for (const auto& [key, value] : body.items()) keys.insert(key);
  CHECK(keys == std::set<std::string>{"runId", "state", "reason", "attempts"});
  CHECK(body["runId"] == "r1");
  CHECK(body["state"] == "finished");
  REQUIRE(body["attempts"].size() == 3);
  const json& first = body["attempts"][0];
  keys.clear();
  for (const auto& [key, value] : first.items()) keys.insert(key);
  CHECK(keys == std::set<std::string>{"step", "job", "attempt", "outcome", "worker", "startedAt",
                                      "endedAt", "durationMs", "error", "exceptionType"});
  CHECK(first["step"] == 0);
  CHECK(first["job"] == "extract");
  CHECK(first["attempt"] == 1);
  CHECK(first["outcome"] == "retry");
  CHECK(first["worker"] == "unit:1:0");
  CHECK(first["durationMs"] == 40);
  CHECK(first["error"] == "connection reset");
  CHECK(first["startedAt"].is_string());
  CHECK(first["endedAt"].is_string());
  CHECK(body["attempts"][1]["step"] == 0);
  CHECK(body["attempts"][1]["attempt"] == 2);
  CHECK(body["attempts"][1]["outcome"] == "finished");
  CHECK(body["attempts"][1]["error"].is_null());
  CHECK(body["attempts"][2]["step"] == 1);
  CHECK(body["attempts"][2]["job"] == "load");
  CHECK(body["attempts"][2]["outcome"] == "finished");
  CHECK_THAT(body["reason"].get<std::string>(), Catch::StartsWith("finished: "));
  // The command's --json and the API's answer are one function of the same reads.
  CHECK(body == executor::explain_json(api.row("r1"), api.store->attempts("r1")));
}

TEST_CASE("attempts of a program that has not run yet is an empty history, of an unknown one 404",
          "[web][api][attempts]") {
  Api api;
  api.running("r1");
  const web::ApiResponse response = api.api.attempts("r1");
  CHECK(response.status == 200);
  CHECK(response.body["state"] == "running");
  CHECK(response.body["attempts"] == json::array());
  CHECK_THAT(response.body["reason"].get<std::string>(), Catch::StartsWith("running: "));

  const auto problem = refusal([&] { return api.api.attempts("no-such-run"); });
  check_problem(problem, 404, "not-found");
  CHECK_THAT(problem.detail(), Catch::Contains("no-such-run"));
}

TEST_CASE("attempts of an errored program ends with the errored attempt and says why",
          "[web][api][attempts]") {
  Api api;
  api.running("r1");
  const auto claim = api.store->claim("r1", 0, "unit:1:0", 30s);
  REQUIRE(claim);
  const auto failed = ending(store::attempt_outcome::errored, "extract", 1, 3, "disk full");
  REQUIRE(api.store->fail("r1", 0, claim->token, "disk full", &failed));
  const json body = api.api.attempts("r1").body;
  CHECK(body["state"] == "errored");
  REQUIRE(body["attempts"].size() == 1);
  CHECK(body["attempts"][0]["outcome"] == "errored");
  CHECK(body["attempts"][0]["error"] == "disk full");
  CHECK_THAT(body["reason"].get<std::string>(), Catch::StartsWith("errored at step 1 of 2 (extract)"));
  CHECK_THAT(body["reason"].get<std::string>(), Catch::Contains("disk full"));
}

TEST_CASE("cancel ends a running program, answers 200 again for a cancelled one, 409 for an "
          "ended one and 404 for none",
          "[web][api][cancel]") {
  Api api;
  api.running("r1");
  const web::ApiResponse first = api.api.cancel("r1");
  CHECK(first.status == 200);
  CHECK(first.body["state"] == "cancelled");
  CHECK(first.body["error"] == "cancelled");
  CHECK(first.body["cancelledAt"].is_string());
  CHECK(first.body["erroredAt"].is_string());
  CHECK(first.body["jobData"] == json{{"load", {{"batch", 500}}}});
  CHECK(api.row("r1").state() == "cancelled");

  const store::ProgramRow before = api.row("r1");
  const web::ApiResponse again = api.api.cancel("r1");
  CHECK(again.status == 200);
  CHECK(again.body["state"] == "cancelled");
  CHECK(again.body["cancelledAt"] == first.body["cancelledAt"]);
  CHECK(api.row("r1").updated_at == before.updated_at);  // changed nothing

  api.finished("done");
  const auto finished = refusal([&] { return api.api.cancel("done"); });
  check_problem(finished, 409, "conflict");
  CHECK_THAT(finished.detail(), Catch::Contains("already finished"));
  CHECK(api.row("done").state() == "finished");

  api.errored("failed");
  const auto errored = refusal([&] { return api.api.cancel("failed"); });
  check_problem(errored, 409, "conflict");
  CHECK_THAT(errored.detail(), Catch::Contains("already errored"));
  CHECK(api.row("failed").state() == "errored");
  CHECK(api.row("failed").error_message == "disk full");

  check_problem(refusal([&] { return api.api.cancel("no-such-run"); }), 404, "not-found");
  CHECK(api.rows().size() == 3);
}

TEST_CASE("resume refuses a running or finished program with 409 and an unknown one with 404",
          "[web][api][resume]") {
  Api api;
  api.running("r1");
  api.finished("done");
  const auto running = refusal([&] { return api.api.resume("r1", ""); });
  check_problem(running, 409, "conflict");
  CHECK_THAT(running.detail(), Catch::Contains("is running"));
  check_problem(refusal([&] { return api.api.resume("r1", R"({"fromStep": 1})"); }), 409,
                "conflict");
  check_problem(refusal([&] { return api.api.resume("done", ""); }), 409, "conflict");
  check_problem(refusal([&] { return api.api.resume("no-such-run", ""); }), 404, "not-found");
  CHECK(api.row("r1").state() == "running");
  CHECK(api.row("done").state() == "finished");
}

TEST_CASE("resume refuses a bad fromStep with 400 and leaves the program cancelled",
          "[web][api][resume]") {
  Api api;
  api.cancelled("stopped");  // jobs extract, load: fromStep 1 or 2
  const store::ProgramRow before = api.row("stopped");

  const std::pair<std::string, std::string> cases[] = {
      {R"({"fromStep": 0})", "from 1"},
      {R"({"fromStep": -1})", "from 1"},
      {R"({"fromStep": "x"})", "from 1"},
      {R"({"fromStep": "2"})", "from 1"},
      {R"({"fromStep": 1.5})", "from 1"},
      {R"({"fromStep": true})", "from 1"},
      {R"({"fromStep": null})", "from 1"},
      {R"({"fromStep": 18446744073709551615})", "from 1"},
      {R"({"fromStep": 3})", "the program has 2 steps"},
      {R"({"fromStep": 99999999999})", "'fromStep' 99999999999: beyond any program's steps"},
      {R"({"from_step": 1})", "unknown member 'from_step' (expected fromStep)"},
      {"[1]", "must be a JSON object"},
      {"1", "must be a JSON object"},
  };
  for (const auto& [body, detail] : cases) {
    INFO("body: " << body);
    const auto problem = refusal([&] { return api.api.resume("stopped", body); });
    check_problem(problem, 400, "invalid-request");
    CHECK_THAT(problem.detail(), Catch::Contains(detail));
  }
  check_problem(refusal([&] { return api.api.resume("stopped", "{fromStep: 1}"); }), 400,
                "invalid-json");

  const store::ProgramRow after = api.row("stopped");
  CHECK(after.state() == "cancelled");
  CHECK(after.step == before.step);
  CHECK(after.updated_at == before.updated_at);
}

TEST_CASE("resume answers 503 when the broker cannot be reached and leaves the program as it was",
          "[web][api][resume]") {
  Api api;
  api.cancelled("stopped");
  api.errored("failed", 1, "load failed: timeout");
  const store::ProgramRow stopped = api.row("stopped");
  const store::ProgramRow failed = api.row("failed");

  for (const char* body : {"", "{}", R"({"fromStep": 1})", R"({"fromStep": 2})"}) {
    INFO("body: " << body);
    const auto problem = refusal([&] { return api.api.resume("stopped", body); });
    check_problem(problem, 503, "unavailable");
    CHECK_THAT(problem.detail(), Catch::Contains("nothing was resumed"));
  }
  check_problem(refusal([&] { return api.api.resume("failed", ""); }), 503, "unavailable");

  const store::ProgramRow still_stopped = api.row("stopped");
  CHECK(still_stopped.state() == "cancelled");
  CHECK(still_stopped.error_message == "cancelled");
  CHECK(still_stopped.cancelled_at == stopped.cancelled_at);
  CHECK(still_stopped.step == stopped.step);
  CHECK(still_stopped.updated_at == stopped.updated_at);

  const store::ProgramRow still_failed = api.row("failed");
  CHECK(still_failed.state() == "errored");
  CHECK(still_failed.step == 1);
  CHECK(still_failed.error_message == "load failed: timeout");
  CHECK(still_failed.updated_at == failed.updated_at);
}

TEST_CASE("stats counts programs per state, takes the steps per minute from the recorder and "
          "lists the newest errors without the cancelled ones",
          "[web][api][stats]") {
  Api api;
  api.running("run-1");
  api.running("run-2");
  api.running("run-3");
  api.finished("done-1");
  api.finished("done-2");
  api.errored("failed-1", 0, "first failure");
  api.errored("failed-2", 1, "second failure");
  api.cancelled("stopped");

  const web::ApiResponse response = api.api.stats();
  CHECK(response.status == 200);
  const json& body = response.body;
  CHECK(body["counts"] == json{{"running", 3}, {"finished", 2}, {"errored", 2}, {"cancelled", 1}});
  CHECK(api.steps_asked == std::vector<int>{60});
  CHECK(body["stepsPerMinute"] == json::parse(R"([
    {"minute": "2026-12-06T09:01:00Z", "steps": 840},
    {"minute": "2026-12-06T09:02:00Z", "steps": 0},
    {"minute": "2026-12-06T09:03:00Z", "steps": 17}])"));
  CHECK(run_ids(body["recentErrors"]) == std::vector<std::string>{"failed-2", "failed-1"});
  CHECK(body["recentErrors"][0]["error"] == "second failure");
  CHECK(body["recentErrors"][0]["currentJob"] == "load");
  CHECK_FALSE(body["recentErrors"][0].contains("jobData"));

  // Within stats_ttl the same answer comes back without asking again.
  api.running("run-4");
  const web::ApiResponse cached = api.api.stats();
  CHECK(cached.body == body);
  CHECK(api.steps_asked.size() == 1);
}

TEST_CASE("stats holds at most the 10 newest errors", "[web][api][stats]") {
  Api api;
  for (int i = 0; i < 12; ++i) api.errored("failed-" + std::to_string(i));
  const json body = api.api.stats().body;
  CHECK(body["counts"]["errored"] == 12);
  const auto ids = run_ids(body["recentErrors"]);
  REQUIRE(ids.size() == 10);
  CHECK(ids.front() == "failed-11");
  CHECK(ids.back() == "failed-2");
}

TEST_CASE("jobs lists what the plugin directory provides, and health answers ok",
          "[web][api][jobs]") {
  Api api;
  const web::ApiResponse jobs = api.api.jobs();
  CHECK(jobs.status == 200);
  CHECK(jobs.body == json::parse(R"({"jobs": [
    {"name": "extract", "plugin": "/usr/lib/program-executor/plugins/libetl.so"},
    {"name": "load", "plugin": "/usr/lib/program-executor/plugins/libetl.so"},
    {"name": "demo.count", "plugin": "/usr/lib/program-executor/plugins/libdemo.so"}]})"));

  api.known_jobs.clear();  // a plugin directory emptied and reloaded
  CHECK(api.api.jobs().body == json{{"jobs", json::array()}});

  const web::ApiResponse health = api.api.health();
  CHECK(health.status == 200);
  CHECK(health.body == json{{"status", "ok"}});
}

TEST_CASE("program_json has the documented fields, and no current job once finished",
          "[web][api][json]") {
  store::ProgramRow row;
  row.id = 42;
  row.run_id = "6f1c";
  row.jobs = {"extract", "load"};
  row.step = 1;
  row.created_at = "2026-12-06T10:00:00.000Z";
  row.updated_at = "2026-12-06T10:00:01.250Z";
  row.lease_owner = "host:1234:0";
  row.program_data = {{"day", "2026-12-06"}};
  row.job_data = {{"load", {{"batch", 500}}}};

  std::set<std::string> keys;
  const json running = web::program_json(row, true);
  for (const auto& [key, value] : running.items()) keys.insert(key);
  CHECK(keys == std::set<std::string>{"runId", "state", "jobs", "step", "currentJob",
                                      "stepRetryCount", "error", "createdAt", "updatedAt",
                                      "finishedAt", "erroredAt", "cancelledAt", "leaseOwner",
                                      "jobData", "programData"});
  CHECK(running["runId"] == "6f1c");
  CHECK(running["state"] == "running");
  CHECK(running["jobs"] == json::array({"extract", "load"}));
  CHECK(running["step"] == 1);
  CHECK(running["currentJob"] == "load");
  CHECK(running["stepRetryCount"] == 0);
  CHECK(running["error"].is_null());
  CHECK(running["createdAt"] == "2026-12-06T10:00:00.000Z");
  CHECK(running["updatedAt"] == "2026-12-06T10:00:01.250Z");
  CHECK(running["finishedAt"].is_null());
  CHECK(running["erroredAt"].is_null());
  CHECK(running["cancelledAt"].is_null());
  CHECK(running["leaseOwner"] == "host:1234:0");
  CHECK(running["programData"] == json{{"day", "2026-12-06"}});
  CHECK(running["jobData"] == json{{"load", {{"batch", 500}}}});

  // The list leaves the data out; nothing else differs.
  json without_data = running;
  without_data.erase("jobData");
  without_data.erase("programData");
  CHECK(web::program_json(row, false) == without_data);

  // A retry's error is current while the step retries.
  row.step_retry_count = 2;
  row.error_message = "connection reset";
  CHECK(web::program_json(row, false)["error"] == "connection reset");

  // Finished: the step stays on the last job, but no job is current, and a
  // retry error overcome on the way is not the program's error.
  row.finished_at = "2026-12-06T10:00:02.000Z";
  row.lease_owner.reset();
  row.step_retry_count = 0;
  const json finished = web::program_json(row, false);
  CHECK(finished["state"] == "finished");
  CHECK(finished["step"] == 1);
  CHECK(finished["currentJob"].is_null());
  CHECK(finished["error"].is_null());
  CHECK(finished["finishedAt"] == "2026-12-06T10:00:02.000Z");
  CHECK(finished["leaseOwner"].is_null());

  // Errored or cancelled: the job it stopped at is still current.
  row.finished_at.reset();
  row.step = 0;
  row.errored_at = "2026-12-06T10:00:03.000Z";
  row.error_message = "disk full";
  const json errored = web::program_json(row, false);
  CHECK(errored["state"] == "errored");
  CHECK(errored["currentJob"] == "extract");
  CHECK(errored["error"] == "disk full");
  row.cancelled_at = row.errored_at;
  row.error_message = "cancelled";
  CHECK(web::program_json(row, false)["state"] == "cancelled");
  CHECK(web::program_json(row, false)["cancelledAt"] == "2026-12-06T10:00:03.000Z");

  // A step outside the job list (a row written by hand) has no current job.
  row.step = 2;
  CHECK(web::program_json(row, false)["currentJob"].is_null());
  row.step = -1;
  CHECK(web::program_json(row, false)["currentJob"].is_null());
}
