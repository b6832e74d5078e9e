// The attempt history written by the real daemon (PE_TEST_DATABASE: each
// backend): a retry then the commit, a yield, an error, history.enabled
// false, and a daemon SIGKILLed in the middle of a step; `explain --json`
// checked field by field, `status` counting the attempts and `list
// --errored-since`.
#include <signal.h>

#include <filesystem>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_server_database.hpp"
#include "support/job_gate.hpp"
#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/program_cli.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::regex iso_utc(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
// host:pid:worker, as worker_identity names a claim's holder.
const std::regex worker_identity(R"(.+:\d+:\d+)");

// A queue, a table, the demo and gate plugins and a config of one test's own.
class HistoryDeployment : public test::Deployment {
 public:
  HistoryDeployment(std::string amqp_url, const std::string& extra_yaml)
      : test::Deployment([&] {
          test::DeploymentOptions settings;
          settings.amqp_url = std::move(amqp_url);
          settings.queue_prefix = "pe-hist";
          settings.heartbeat_seconds = 5;
          settings.database = test::suite_database;
          settings.migrate = true;
          settings.plugin_dir = test::demo_and_gate_plugin_dir();
          settings.workers = 2;
          settings.shutdown_grace_seconds = 10;
          settings.log_level = "debug";
          settings.extra_yaml = extra_yaml;
          return settings;
        }()) {}

  std::unique_ptr<test::DaemonProcess> start_daemon() { return Deployment::start_daemon({}, 60s); }

  json explain(const std::string& run_id) const {
    const test::CommandResult result = test::cli(config(), "explain", {run_id, "--json"});
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
    return json::parse(result.out);
  }
};

std::vector<std::string> outcomes(const json& explained) {
  std::vector<std::string> list;
  for (const json& attempt : explained["attempts"]) list.push_back(attempt["outcome"]);
  return list;
}

// Every committed step has exactly one `finished` attempt.
void one_finished_per_step(const json& explained, int steps) {
  for (int step = 0; step < steps; ++step) {
    int finished = 0;
    for (const json& attempt : explained["attempts"]) {
      finished += attempt["step"] == step && attempt["outcome"] == "finished";
    }
    INFO("step " << step);
    CHECK(finished == 1);
  }
}

}  // namespace

TEST_CASE("a step that retries then commits: explain --json, field by field", "[daemon][history]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  HistoryDeployment deployment(*url, "");
  auto daemon = deployment.start_daemon();
  const std::string run_id =
      test::create_program(deployment.config(), "demo.flaky,demo.noop", {{"demo.flaky", {{"failures", 2}}}});
  REQUIRE(test::wait_until_ended(deployment.config(), run_id, 60s)["state"] == "finished");

  const json explained = deployment.explain(run_id);
  CHECK(explained.size() == 4);
  CHECK(explained["runId"] == run_id);
  CHECK(explained["state"] == "finished");
  CHECK(explained["reason"] == "finished: all 2 steps committed after 4 attempts (2 retries, 0 yields, 0 crashes)");
  REQUIRE(outcomes(explained) == std::vector<std::string>{"retry", "retry", "finished", "finished"});
  const json& attempts = explained["attempts"];
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    const json& attempt = attempts[i];
    INFO(attempt.dump());
    CHECK(attempt.size() == 10);
    CHECK(attempt["step"] == (i < 3 ? 0 : 1));
    CHECK(attempt["job"] == (i < 3 ? "demo.flaky" : "demo.noop"));
    CHECK(attempt["attempt"] == (i < 3 ? static_cast<int>(i) + 1 : 1));
    CHECK(std::regex_match(attempt["worker"].get<std::string>(), worker_identity));
    CHECK(std::regex_match(attempt["startedAt"].get<std::string>(), iso_utc));
    CHECK(std::regex_match(attempt["endedAt"].get<std::string>(), iso_utc));
    CHECK(attempt["startedAt"].get<std::string>() <= attempt["endedAt"].get<std::string>());
    CHECK(attempt["durationMs"].is_number_integer());
    CHECK(attempt["durationMs"] >= 0);
    if (i > 0) CHECK(attempts[i - 1]["endedAt"].get<std::string>() <= attempt["startedAt"].get<std::string>());
  }
  CHECK(attempts[0]["error"] == "flaky failure 1 of 2");
  CHECK(attempts[1]["error"] == "flaky failure 2 of 2");
  CHECK(attempts[0]["exceptionType"] == "program_executor::sdk::RetryableError");
  CHECK(attempts[2]["error"].is_null());
  CHECK(attempts[2]["exceptionType"].is_null());
  CHECK(attempts[3]["error"].is_null());
  one_finished_per_step(explained, 2);

  // The text form ends with the same reason; status counts the attempts.
  const test::CommandResult text = test::cli(deployment.config(), "explain", {run_id});
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("waited") && Catch::Contains("(retry delay)") &&
                           Catch::EndsWith("why: " + explained["reason"].get<std::string>() + "\n"));
  CHECK(test::program_status(deployment.config(), run_id)["attempts"] == 4);
  const test::CommandResult missing = test::cli(deployment.config(), "explain", {"no-such-run"});
  CHECK(missing.exit_code == 1);
  CHECK(daemon->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a job that yields: yield attempts, then one finished", "[daemon][history]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  HistoryDeployment deployment(*url, "");
  auto daemon = deployment.start_daemon();
  const std::string run_id = test::create_program(
      deployment.config(), "demo.paginate",
      {{"demo.paginate", {{"pages", 4}, {"page_ms", 60}, {"max_execution_ms", 100}}}});
  REQUIRE(test::wait_until_ended(deployment.config(), run_id, 60s)["state"] == "finished");
  const json explained = deployment.explain(run_id);
  const std::vector<std::string> seen = outcomes(explained);
  REQUIRE(seen.size() >= 2);
  CHECK(seen.back() == "finished");
  for (std::size_t i = 0; i + 1 < seen.size(); ++i) CHECK(seen[i] == "yield");
  for (const json& attempt : explained["attempts"]) CHECK(attempt["attempt"] == 1);  // yields are not retries
  one_finished_per_step(explained, 1);
  CHECK(daemon->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a job that fails: an errored attempt, the reason, and list --errored-since", "[daemon][history]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  HistoryDeployment deployment(*url, "");
  auto daemon = deployment.start_daemon();
  const std::string run_id = test::create_program(deployment.config(), "demo.noop,demo.fail",
                                                  {{"demo.fail", {{"message", "card declined"}}}});
  REQUIRE(test::wait_until_ended(deployment.config(), run_id, 60s)["state"] == "errored");
  const json explained = deployment.explain(run_id);
  REQUIRE(outcomes(explained) == std::vector<std::string>{"finished", "errored"});
  CHECK(explained["attempts"][1]["step"] == 1);
  CHECK(explained["attempts"][1]["error"] == "card declined");
  CHECK(explained["attempts"][1]["exceptionType"] == "std::runtime_error");
  CHECK_THAT(explained["reason"].get<std::string>(),
             Catch::StartsWith("errored at step 2 of 2 (demo.fail) after 1 attempt: card declined"));

  const std::string other = test::create_program(deployment.config(), "demo.noop");
  REQUIRE(test::wait_until_ended(deployment.config(), other, 60s)["state"] == "finished");
  const test::CommandResult listed = test::cli(deployment.config(), "list", {"--errored-since", "1h", "--json"});
  INFO(listed.err);
  REQUIRE(listed.exit_code == 0);
  const json rows = json::parse(listed.out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["run_id"] == run_id);
  const test::CommandResult later =
      test::cli(deployment.config(), "list", {"--errored-since", "2100-01-01"});
  CHECK(later.exit_code == 1);  // a moment in the future is refused, as prune refuses it
  CHECK_THAT(later.err, Catch::Contains("lies in the future"));
  CHECK(daemon->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("history.enabled false: the daemon writes no attempt", "[daemon][history]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  HistoryDeployment deployment(*url, "history:\n  enabled: false\n");
  auto daemon = deployment.start_daemon();
  const std::string run_id =
      test::create_program(deployment.config(), "demo.flaky,demo.noop", {{"demo.flaky", {{"failures", 1}}}});
  REQUIRE(test::wait_until_ended(deployment.config(), run_id, 60s)["state"] == "finished");
  const json explained = deployment.explain(run_id);
  CHECK(explained["attempts"].empty());
  CHECK(explained["reason"] == "finished: all 2 steps committed (no attempt history)");
  CHECK(test::program_status(deployment.config(), run_id)["attempts"] == 0);
  CHECK(daemon->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a daemon killed mid-step leaves a crashed attempt, then the step runs again",
          "[daemon][history][crash]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  // Claims run out 3 s after their worker died; the sweeper looks every second.
  HistoryDeployment deployment(*url,
                               "recovery:\n  lease_seconds: 3\n  stale_after_seconds: 1\n"
                               "  sweep_interval_seconds: 1\n");
  test::JobGate gate;
  auto first = deployment.start_daemon();
  const std::string run_id =
      test::create_program(deployment.config(), "fixture.gate,demo.noop", gate.job_data());
  REQUIRE(first->wait_for_log("\"job.started\"", 60s));
  const std::string dead_pid = ":" + std::to_string(first->pid()) + ":";
  CHECK(first->stop(SIGKILL, 30s) == 128 + SIGKILL);
  gate.open();  // the step's next run ends at once

  auto second = deployment.start_daemon();
  REQUIRE(test::wait_until_ended(deployment.config(), run_id, 120s)["state"] == "finished");
  const json explained = deployment.explain(run_id);
  INFO(explained.dump(2));
  REQUIRE(outcomes(explained) == std::vector<std::string>{"crashed", "finished", "finished"});
  const json& crashed = explained["attempts"][0];
  CHECK(crashed["step"] == 0);
  CHECK(crashed["job"] == "fixture.gate");
  CHECK(crashed["attempt"] == 1);
  CHECK_THAT(crashed["worker"].get<std::string>(), Catch::Contains(dead_pid));  // the killed daemon
  CHECK(crashed["error"].is_null());
  CHECK(crashed["durationMs"] >= 1000);  // from its claim to the takeover, after the lease ran out
  const json& retried = explained["attempts"][1];
  CHECK(retried["step"] == 0);
  CHECK_THAT(retried["worker"].get<std::string>(), Catch::Contains(":" + std::to_string(second->pid()) + ":"));
  CHECK(crashed["endedAt"].get<std::string>() <= retried["startedAt"].get<std::string>());
  CHECK_THAT(explained["reason"].get<std::string>(), Catch::Contains("(0 retries, 0 yields, 1 crash)"));
  one_finished_per_step(explained, 2);
  CHECK(second->stop(SIGTERM, 30s) == 0);
}
