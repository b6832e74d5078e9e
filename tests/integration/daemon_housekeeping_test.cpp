// The operator's housekeeping against the real daemon, broker and database
// (PE_TEST_DATABASE; a SQLite file by default), through the real command line:
// `jobs` against what the running daemon loaded, `resume --rerun-finished`,
// `parked list|requeue|drop`, `prune`, and `status` of a program that was
// retried and then finished (issue 19, items 4, 7 and 8).
#include <signal.h>

#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_server_database.hpp"
#include "program_executor/amqp/connection.hpp"
#include "support/deployment.hpp"
#include "support/plugin_paths.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path demo_plugin = test::demo_plugin();
const fs::path fixture_plugin = test::fixture("good/good.so");

// A queue, a table, a plugin directory and a state directory of their own.
class Housekeeping : public test::Deployment {
 public:
  explicit Housekeeping(std::string amqp_url)
      : test::Deployment([&] {
          test::DeploymentOptions settings;
          settings.amqp_url = std::move(amqp_url);
          settings.queue_prefix = "pe-house";
          settings.database = test::suite_database;
          settings.own_plugin_directory = true;
          settings.workers = 1;
          settings.log_level = "debug";
          return settings;
        }()) {
    fs::create_directories(state());
  }

  // The daemon as the unit runs it: with STATE_DIRECTORY set.
  std::unique_ptr<test::DaemonProcess> start_daemon() {
    return test::Deployment::start_daemon({{"STATE_DIRECTORY", state().string()}});
  }

  test::CommandResult cli(const std::string& command, std::vector<std::string> args = {}) {
    return test::cli(config(), command, std::move(args));
  }
  json cli_json(const std::string& command, std::vector<std::string> args = {}) {
    args.push_back("--json");
    const test::CommandResult result = cli(command, args);
    INFO(command << ": " << result.err);
    REQUIRE(result.exit_code == 0);
    return json::parse(result.out);
  }
  // `program-executor parked <action> -c <config> <args...>`.
  test::CommandResult parked(const std::string& action, std::vector<std::string> args = {}) {
    args.insert(args.begin(), {PE_DAEMON_PATH, "parked", action, "-c", config().string()});
    return test::run_command(args);
  }
  json parked_json(const std::string& action, std::vector<std::string> args = {}) {
    args.push_back("--json");
    const test::CommandResult result = parked(action, args);
    INFO("parked " << action << ": " << result.err);
    REQUIRE(result.exit_code == 0);
    return json::parse(result.out);
  }

  // `jobs --json`, by job name.
  std::map<std::string, json> jobs() {
    std::map<std::string, json> by_name;
    for (const json& row : cli_json("jobs", {"--state-directory", state().string()})) {
      by_name[row["job"].get<std::string>()] = row;
    }
    return by_name;
  }

  // Polls `jobs` until `job` is in `state` (a record is written after the
  // daemon logs its start or reload, so it may lag the log by a moment).
  bool wait_for_job_state(const std::string& job, const std::string& state) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto rows = jobs();
      if (rows.count(job) && rows.at(job)["state"] == state) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Polls `parked list --json` until it holds `count` messages.
  json wait_for_parked(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    json listing;
    while (std::chrono::steady_clock::now() < deadline) {
      listing = parked_json("list");
      if (listing["messages"].size() == count) return listing;
      std::this_thread::sleep_for(100ms);
    }
    FAIL("parked queue never held " << count << " messages: " << listing.dump());
    return listing;
  }

  fs::path state() const { return path("state"); }
};

}  // namespace

TEST_CASE(
    "jobs shows a plugin installed but not reloaded, and --rerun-finished runs its skipped step",
    "[daemon][housekeeping]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Housekeeping deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  auto daemon = deployment.start_daemon();
  REQUIRE(deployment.wait_for_job_state("demo.log", "loaded"));
  const test::CommandResult text =
      deployment.cli("jobs", {"--state-directory", deployment.state().string()});
  CHECK_THAT(text.out, Catch::Contains("daemon pid " + std::to_string(daemon->pid())));

  // Installed, not reloaded: on disk, missing in the running daemon.
  deployment.install_plugin(fixture_plugin, "fixture.so");
  auto rows = deployment.jobs();
  REQUIRE(rows.count("fixture.count"));
  CHECK(rows["fixture.count"]["state"] == "not loaded");
  CHECK(rows["fixture.count"]["missing_in"] == json::array({daemon->pid()}));
  CHECK(rows["demo.log"]["state"] == "loaded");
  CHECK_THAT(deployment.cli("jobs", {"--state-directory", deployment.state().string()}).out,
             Catch::Contains("systemctl reload"));

  // Its step is skipped meanwhile, and the program finishes without it.
  const std::string run_id = test::create_program(deployment.config(), "fixture.count,demo.log");
  json row = test::wait_until_ended(deployment.config(), run_id);
  REQUIRE(row["state"] == "finished");
  CHECK_FALSE(row["job_data"].contains("fixture.count"));
  CHECK(daemon->count_in_log("\"job.skipped\"") == 1);

  ::kill(daemon->pid(), SIGHUP);
  REQUIRE(daemon->wait_for_log("\"daemon.reloaded\"", 10s));
  REQUIRE(deployment.wait_for_job_state("fixture.count", "loaded"));

  // A finished program resumes only when asked to, at a step named.
  test::CommandResult refused = deployment.cli("resume", {run_id, "--from-step", "1"});
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("finished"));
  refused = deployment.cli("resume", {run_id, "--rerun-finished"});
  CHECK(refused.exit_code == 2);  // a usage error: nothing was done
  CHECK_THAT(refused.err, Catch::Contains("--from-step"));
  const json resumed =
      deployment.cli_json("resume", {run_id, "--rerun-finished", "--from-step", "1"});
  CHECK(resumed["state"] == "running");
  CHECK(resumed["step"] == 0);
  row = test::wait_until_ended(deployment.config(), run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["job_data"]["fixture.count"]["count"] == 1);  // the skipped step ran this time

  // A running or unknown program is not "finished".
  CHECK(
      deployment.cli("resume", {"no-such-run", "--rerun-finished", "--from-step", "1"}).exit_code ==
      1);

  // A clean stop removes the record: no daemon has anything loaded now.
  REQUIRE(daemon->stop(SIGTERM, 20s) == 0);
  CHECK_FALSE(fs::exists(deployment.state() / "loaded-jobs.json"));
  CHECK(deployment.jobs()["demo.log"]["state"] == "no daemon");
}

TEST_CASE("parked messages are listed with their reason, requeued to run, and dropped",
          "[daemon][housekeeping]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Housekeeping deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");

  // A program whose first step was parked (as a worker parks one it cannot
  // run yet): its message moved from the main queue to the parked one.
  const std::string run_id = test::create_program(deployment.config(), "demo.count");
  {
    amqp::Connection connection(amqp::parse_url(deployment.amqp_url(), {}, 0), "test");
    const std::optional<amqp::Delivery> step = connection.get(deployment.queue());
    REQUIRE(step);
    amqp::PublishProperties properties = step->properties;
    properties.headers.emplace_back("x-parked-reason", "held back by the test");
    properties.headers.emplace_back("x-parked-from", deployment.queue());
    connection.publish(deployment.queue() + "-parked", step->body, properties);
    connection.ack(step->delivery_tag);
  }
  auto daemon = deployment.start_daemon();
  // A message no worker can ever run, parked by the daemon itself.
  {
    amqp::Connection connection(amqp::parse_url(deployment.amqp_url(), {}, 0), "test");
    connection.publish(deployment.queue(), "not json at all", {});
  }
  json listing = deployment.wait_for_parked(2);
  CHECK(listing["queue"] == deployment.queue() + "-parked");
  CHECK(listing["not_shown"] == 0);
  json held, garbage;
  for (const json& message : listing["messages"]) {
    (message["run_id"].is_null() ? garbage : held) = message;
  }
  CHECK(held["run_id"] == run_id);
  CHECK(held["reason"] == "held back by the test");
  CHECK(held["from"] == deployment.queue());
  CHECK(garbage["body"] == "not json at all");
  CHECK_THAT(garbage["reason"].get<std::string>(), Catch::Contains("JSON"));
  CHECK(garbage["from"] == deployment.queue());
  // Listing takes nothing away; --limit shows fewer and says how many more.
  listing = deployment.parked_json("list", {"--limit", "1"});
  CHECK(listing["messages"].size() == 1);
  CHECK(listing["not_shown"] == 1);
  const test::CommandResult text = deployment.parked("list");
  CHECK_THAT(text.out, Catch::Contains("reason  held back by the test"));

  // requeue and drop need to be told which messages.
  CHECK(deployment.parked("drop").exit_code == 1);
  CHECK(deployment.parked("requeue", {"--all", "--run-id", run_id}).exit_code == 1);

  // Requeued: the step runs, the garbage stays parked.
  json requeued = deployment.parked_json("requeue", {"--run-id", run_id});
  CHECK(requeued["requeued"] == 1);
  const json row = test::wait_until_ended(deployment.config(), run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["job_data"]["demo.count"]["runs"] == 1);
  listing = deployment.wait_for_parked(1);
  CHECK(listing["messages"][0]["body"] == "not json at all");

  const json dropped = deployment.parked_json("drop", {"--all"});
  CHECK(dropped["dropped"] == 1);
  CHECK(deployment.wait_for_parked(0)["messages"].empty());
  CHECK_THAT(deployment.parked("list").out, Catch::Contains("no parked messages"));
  CHECK(daemon->stop(SIGTERM, 20s) == 0);
}

TEST_CASE("prune deletes ended programs only, and status shows an overcome retry as past",
          "[daemon][housekeeping]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Housekeeping deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  auto daemon = deployment.start_daemon();
  const std::string done = test::create_program(deployment.config(), "demo.log");
  const std::string flaky =
      test::create_program(deployment.config(), "demo.flaky", {{"demo.flaky", {{"failures", 1}}}});
  const std::string failing = test::create_program(deployment.config(), "demo.fail");
  CHECK(test::wait_until_ended(deployment.config(), done)["state"] == "finished");
  CHECK(test::wait_until_ended(deployment.config(), flaky)["state"] == "finished");
  CHECK(test::wait_until_ended(deployment.config(), failing)["state"] == "errored");
  REQUIRE(daemon->stop(SIGTERM, 20s) == 0);
  // Still running when the prune comes: no daemon consumes its first step.
  const std::string still_running = test::create_program(deployment.config(), "demo.log");

  // The flaky program's retry error is history once it finished.
  const json status = deployment.cli_json("status", {flaky});
  CHECK_THAT(status["error_message"].get<std::string>(), Catch::Contains("flaky failure 1"));
  CHECK(status["error"].is_null());
  const std::string text = deployment.cli("status", {flaky}).out;
  CHECK_THAT(text, Catch::Contains("past retry    flaky failure 1"));
  CHECK_THAT(text, !Catch::Contains("error         flaky"));

  // A moment in the future, or nonsense, deletes nothing.
  const test::CommandResult future = deployment.cli("prune", {"--finished-before", "2099-01-01"});
  CHECK(future.exit_code == 1);
  CHECK_THAT(future.err, Catch::Contains("lies in the future"));
  CHECK(deployment.cli("prune", {"--finished-before", "soon"}).exit_code == 1);
  // Nothing ended 30 days ago.
  CHECK(deployment.cli_json("prune", {"--finished-before", "30d"})["deleted"] == 0);

  // Everything that ended until now, one row per batch: three ended, one runs.
  const json pruned =
      deployment.cli_json("prune", {"--finished-before", "0s", "--batch-size", "1"});
  CHECK(pruned["deleted"] == 3);
  CHECK(pruned["batches"] == 4);  // three full batches and the empty one that ends it
  const json left = deployment.cli_json("list");
  REQUIRE(left.size() == 1);
  CHECK(left[0]["run_id"] == still_running);
  CHECK(left[0]["state"] == "running");
}
