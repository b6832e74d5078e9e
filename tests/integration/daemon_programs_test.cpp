// The real daemon process against the real RabbitMQ and a real database
// (PE_TEST_DATABASE; a SQLite file by default), driven through the real
// command line, with the demo plugin (and fixture.gate, a job that runs until
// the test opens its gate: tests/support/job_gate.hpp).
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_server_database.hpp"
#include "program_executor/amqp/connection.hpp"
#include "support/deployment.hpp"
#include "support/job_gate.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The database is PE_TEST_DATABASE (sqlite3, postgresql, mysql, odbc; default
// sqlite3, a file of the test's own) reached with PE_TEST_DATABASE_CONNECTION;
// tests share a server database through tables of their own, so they run in
// parallel. A configured database that cannot be reached fails the test.
struct DeploymentOptions : test::DeploymentOptions {
  DeploymentOptions() {
    database = test::suite_database;
    heartbeat_seconds = 5;
    workers = 2;
    shutdown_grace_seconds = 10;
    plugin_dir = test::demo_and_gate_plugin_dir();
    log_level = "debug";
  }
};

// A queue, a table and a config file of their own for one test.
class Deployment : public test::Deployment {
 public:
  explicit Deployment(std::string amqp_url, DeploymentOptions options = {})
      : test::Deployment(on_broker(std::move(amqp_url), std::move(options))) {}

 private:
  static test::DeploymentOptions on_broker(std::string amqp_url, DeploymentOptions options) {
    options.amqp_url = std::move(amqp_url);
    return options;
  }
};

// The log events of one daemon, parsed from its JSON lines, in log order.
std::vector<json> all_events(const test::DaemonProcess& daemon) {
  std::vector<json> found;
  std::istringstream lines(daemon.log());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() != '{') continue;
    json event = json::parse(line, nullptr, false);
    if (!event.is_discarded() && event.is_object()) found.push_back(event);
  }
  return found;
}

// The events named `name`.
std::vector<json> events(const test::DaemonProcess& daemon, const std::string& name) {
  std::vector<json> found;
  for (json& event : all_events(daemon)) {
    if (event.value("event", "") == name) found.push_back(std::move(event));
  }
  return found;
}

// The events of run `run_id` logged after its first `name` event (empty
// until that event is logged).
std::vector<json> run_events_after(const test::DaemonProcess& daemon, const std::string& run_id,
                                   const std::string& name) {
  std::vector<json> found;
  bool seen = false;
  for (json& event : all_events(daemon)) {
    if (event.value("run_id", "") != run_id) continue;
    if (seen) found.push_back(std::move(event));
    seen = seen || event.value("event", "") == name;
  }
  return found;
}

}  // namespace

TEST_CASE("a multi-job program runs every job in order and finishes at the last step",
          "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  const std::string run_id = deployment.create("demo.log,demo.sleep,demo.log",
                                               {{"demo.sleep", {{"ms", 50}}}}, {{"customer", 42}});
  const json row = deployment.wait_until_ended(run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["step"] == 2);
  CHECK(row["step_retry_count"] == 0);
  CHECK(row["errored_at"].is_null());
  CHECK(row["program_data"] == json{{"customer", 42}});
  CHECK(daemon->wait_for_log("\"program.finished\"", 30s));
  std::vector<int> steps;
  for (const auto& e : events(*daemon, "job.finished")) {
    if (e["run_id"] == run_id) steps.push_back(e["step"].get<int>());
  }
  CHECK(steps == std::vector<int>{0, 1, 2});
  CHECK(daemon->stop(SIGTERM, 20s) == 0);
}

TEST_CASE("a retryable job is retried and the program finishes with its retry count reset",
          "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  const std::string run_id =
      deployment.create("demo.flaky,demo.log", {{"demo.flaky", {{"failures", 2}}}});
  const json row = deployment.wait_until_ended(run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["step"] == 1);
  CHECK(row["step_retry_count"] == 0);
  CHECK_THAT(row["error_message"].get<std::string>(), Catch::Contains("flaky"));
  int retries = 0;
  for (const auto& e : events(*daemon, "job.retry")) retries += e["run_id"] == run_id;
  CHECK(retries == 2);
}

TEST_CASE("failing and ignorable jobs error the program with their message", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  const std::string failing = deployment.create(
      "demo.log,demo.fail,demo.log", {{"demo.fail", {{"message", "the disk is on fire"}}}});
  const std::string ignorable = deployment.create(
      "demo.ignorable,demo.log", {{"demo.ignorable", {{"message", "nothing to export"}}}});
  json row = deployment.wait_until_ended(failing);
  CHECK(row["state"] == "errored");
  CHECK(row["step"] == 1);
  CHECK(row["error_message"] == "the disk is on fire");
  CHECK(row["finished_at"].is_null());
  row = deployment.wait_until_ended(ignorable);
  CHECK(row["state"] == "errored");
  CHECK(row["step"] == 0);
  CHECK(row["error_message"] == "nothing to export");
}

TEST_CASE("cancel stops a program: its next step is dropped", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  const test::JobGate gate;  // the first step runs until the program is cancelled
  const std::string run_id = deployment.create("fixture.gate,demo.log", gate.job_data());
  REQUIRE(daemon->wait_for_log("\"job.started\"", 30s));
  auto cancel = deployment.cli({"cancel", run_id});
  CHECK(cancel.exit_code == 0);
  CHECK_THAT(cancel.out, Catch::Contains("cancelled " + run_id));
  gate.open();
  // The running step ends; the daemon then says what became of it (its
  // commit finds the program cancelled) and publishes nothing after it.
  REQUIRE(daemon->wait_for_log("\"job.finished\"", 30s));
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (run_events_after(*daemon, run_id, "job.finished").empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  INFO(daemon->log());
  REQUIRE_FALSE(run_events_after(*daemon, run_id, "job.finished").empty());
  const json row = deployment.status(run_id);
  CHECK(row["state"] == "cancelled");
  CHECK(row["error_message"] == "cancelled");
  CHECK(row["step"] == 0);
  for (const auto& e : events(*daemon, "job.started")) {
    if (e["run_id"] == run_id) CHECK(e["job"] == "fixture.gate");
  }
  // Cancelling again is a no-op that says so: scripts may retry.
  auto again = deployment.cli({"cancel", run_id});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("already cancelled"));
}

TEST_CASE("an unknown job is skipped and the program goes on", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  const std::string run_id = deployment.create("no.such.job,demo.log");
  const json row = deployment.wait_until_ended(run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["step"] == 1);
  CHECK(daemon->count_in_log("\"job.skipped\"") == 1);
}

TEST_CASE("a program created by a job runs too", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  const json spawn = {{"jobs", {"demo.log", "demo.sleep"}},
                      {"program_data", {{"child", true}}},
                      {"job_data", {{"demo.sleep", {{"ms", 10}}}}}};
  const std::string parent = deployment.create("demo.spawn", {{"demo.spawn", spawn}});
  json row = deployment.wait_until_ended(parent);
  REQUIRE(row["state"] == "finished");
  const std::string child = row["job_data"]["demo.spawn"]["spawned_run_id"];
  row = deployment.wait_until_ended(child);
  CHECK(row["state"] == "finished");
  CHECK(row["jobs"] == json{"demo.log", "demo.sleep"});
  CHECK(row["program_data"] == json{{"child", true}});
}

TEST_CASE("a paginating job yields past its time limit and resumes where it stopped",
          "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  const std::string run_id = deployment.create(
      "demo.paginate", {{"demo.paginate", {{"pages", 6}, {"page_ms", 60}, {"max_execution_ms", 100}}}});
  const json row = deployment.wait_until_ended(run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["step_retry_count"] == 0);  // yields are not retries
  CHECK(row["error_message"].is_null());
  CHECK(row["job_data"]["demo.paginate"]["page"] == 6);
  int yields = 0;
  for (const auto& e : events(*daemon, "job.yield")) yields += e["run_id"] == run_id;
  CHECK(yields >= 1);
}

TEST_CASE("two daemons on one queue run every step exactly once", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto first = deployment.start_daemon();
  auto second = deployment.start_daemon();
  std::vector<std::string> run_ids;
  for (int i = 0; i < 20; ++i) {
    run_ids.push_back(deployment.create("demo.count,demo.count,demo.count,demo.count"));
  }
  for (const auto& run_id : run_ids) {
    const json row = deployment.wait_until_ended(run_id);
    CHECK(row["state"] == "finished");
    CHECK(row["job_data"]["demo.count"]["runs"] == 4);  // one execution per step
  }
  std::map<std::pair<std::string, int>, int> executions;
  std::set<int> daemons_used;
  for (const auto* daemon : {first.get(), second.get()}) {
    for (const auto& e : events(*daemon, "job.started")) {
      ++executions[{e["run_id"].get<std::string>(), e["step"].get<int>()}];
      daemons_used.insert(daemon == first.get() ? 1 : 2);
    }
  }
  CHECK(executions.size() == 80);
  for (const auto& [key, count] : executions) {
    INFO(key.first << " step " << key.second);
    CHECK(count == 1);
  }
  CHECK(daemons_used.size() == 2);  // the work was shared
}

TEST_CASE("programs queued behind a long job go to the idle worker", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);  // two workers, prefetch 64 by default
  auto daemon = deployment.start_daemon();
  // The long job runs until the quick programs have ended, however loaded
  // the machine is: were they stuck behind it, they would never end.
  const test::JobGate gate;
  const std::string long_one = deployment.create("fixture.gate", gate.job_data());
  REQUIRE(daemon->wait_for_log("\"job.started\"", 30s));
  // Delivered round-robin: about half of these reach the busy worker first,
  // which hands them back once its job has run for 100 ms.
  std::vector<std::string> quick;
  for (int i = 0; i < 6; ++i) quick.push_back(deployment.create("demo.log,demo.log"));
  for (const auto& run_id : quick) CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
  CHECK(deployment.status(long_one)["state"] == "running");
  gate.open();
  CHECK(deployment.wait_until_ended(long_one)["state"] == "finished");
}

TEST_CASE("SIGTERM lets the running job finish, then the daemon exits 0", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  DeploymentOptions options;
  options.shutdown_grace_seconds = 120;  // the test, not the grace period, ends the job
  Deployment deployment(*url, options);
  auto daemon = deployment.start_daemon();
  const test::JobGate gate;
  const std::string run_id = deployment.create("fixture.gate", gate.job_data());
  REQUIRE(daemon->wait_for_log("\"job.started\"", 30s));
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for_log("\"daemon.stopping\"", 30s));
  CHECK(daemon->running());  // waiting for the job
  CHECK(deployment.status(run_id)["state"] == "running");
  gate.open();
  CHECK(daemon->wait_for_exit(60s) == 0);
  CHECK(deployment.status(run_id)["state"] == "finished");
  CHECK(daemon->count_in_log("\"daemon.stopped\"") == 1);
  CHECK(daemon->count_in_log("\"daemon.grace_exceeded\"") == 0);
}

TEST_CASE("a job still running at the end of the grace period is redelivered", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  DeploymentOptions options;
  options.shutdown_grace_seconds = 1;
  Deployment deployment(*url, options);
  auto daemon = deployment.start_daemon();
  const test::JobGate gate;  // closed until the first daemon is gone
  const std::string run_id = deployment.create("fixture.gate", gate.job_data());
  REQUIRE(daemon->wait_for_log("\"job.started\"", 30s));
  CHECK(daemon->stop(SIGTERM, 60s) == 0);
  CHECK(daemon->count_in_log("\"daemon.grace_exceeded\"") == 1);
  CHECK(deployment.status(run_id)["state"] == "running");
  gate.open();
  auto successor = deployment.start_daemon();  // picks up the unacknowledged step
  CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
}

TEST_CASE("heartbeats keep the broker connection alive during a long job", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  DeploymentOptions options;
  options.heartbeat_seconds = 1;
  options.workers = 1;
  Deployment deployment(*url, options);
  auto daemon = deployment.start_daemon();
  const std::string run_id = deployment.create("demo.sleep", {{"demo.sleep", {{"ms", 5000}}}});

  // While it sleeps, `list` names the worker holding its step, as status does,
  // and --worker finds it by host and process.
  char host_buffer[256] = {};
  ::gethostname(host_buffer, sizeof host_buffer - 1);
  const std::string process = std::string(host_buffer) + ":" + std::to_string(daemon->pid());
  const auto deadline = std::chrono::steady_clock::now() + 4s;
  while (deployment.status(run_id)["lease_owner"] != process + ":0" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  const auto held = deployment.cli({"list", "--worker", process});
  CHECK(held.exit_code == 0);
  CHECK_THAT(held.out, Catch::Contains(run_id) && Catch::Contains("  " + process + ":0\n"));
  CHECK_THAT(deployment.cli({"list", "--worker", process + ":1"}).out, Catch::Equals("no programs\n"));

  CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
  CHECK(daemon->count_in_log("amqp.connection_lost") == 0);
  CHECK(daemon->count_in_log("step.ack_lost") == 0);
}

TEST_CASE("malformed messages are parked with their reason and the daemon keeps running",
          "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  auto daemon = deployment.start_daemon();
  amqp::Connection producer(amqp::parse_url(*url, {}, 0), "test producer");
  for (const std::string body : {"not json", R"({"jobs":["demo.log"],"runId":"missing-row"})"}) {
    producer.publish(deployment.queue(), body, {});
  }
  REQUIRE(daemon->wait_for_log("\"message.parked\"", 30s, 2));
  producer.consume(deployment.queue() + "-parked");
  std::set<std::string> parked;
  for (int i = 0; i < 2; ++i) {
    auto delivery = producer.next_delivery(30s);
    REQUIRE(delivery);
    parked.insert(delivery->body);
    producer.ack(delivery->delivery_tag);
  }
  CHECK(parked == std::set<std::string>{"not json", R"({"jobs":["demo.log"],"runId":"missing-row"})"});
  const std::string run_id = deployment.create("demo.log");  // still working
  CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
}

TEST_CASE("the command line reports unknown run ids and bad input clearly", "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  Deployment deployment(*url);
  REQUIRE(deployment.cli({"migrate"}).exit_code == 0);  // status creates no database
  auto status = deployment.cli({"status", "no-such-run"});
  CHECK(status.exit_code == 1);
  CHECK_THAT(status.err, Catch::Contains("no program with run id no-such-run"));
  auto cancel = deployment.cli({"cancel", "no-such-run"});
  CHECK(cancel.exit_code == 1);
  CHECK_THAT(cancel.err, Catch::Contains("no program with run id no-such-run"));
  auto create = deployment.cli({"create", "--jobs", "demo.log", "--program-data", "[1]"});
  CHECK(create.exit_code == 2);  // a usage error
  CHECK_THAT(create.err, Catch::Contains("--program-data must be a JSON object"));
}

TEST_CASE("the daemon refuses to start on a bad config or a bad plugin, saying where",
          "[daemon]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  test::TemporaryDirectory dir;
  const auto config = dir.path() / "bad.yaml";
  std::ofstream(config) << "amqp:\n  queue: q\n  prefetch: lots\n";
  auto result = test::run_command({PE_DAEMON_PATH, "run", "-c", config.string()});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains(config.string() + ":3:13: amqp.prefetch"));

  DeploymentOptions options;
  options.plugin_dir = test::fixture("not_elf").string();
  Deployment deployment(*url, options);
  result = test::run_command({PE_DAEMON_PATH, "run", "-c", deployment.config().string()});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains("not_elf.so"));
}
