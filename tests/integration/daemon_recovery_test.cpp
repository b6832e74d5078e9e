// The real daemon when things go wrong around a step: a job that kills its
// process (crash isolation, docs/guarantees.md "Crashes"), and a backlog that
// must drain without any program waiting for the recovery sweeper.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_server_database.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/amqp/queue_topology.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/store/database.hpp"
#include "support/deployment.hpp"
#include "support/job_gate.hpp"
#include "support/plugin_paths.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A queue, a table, a plugin directory and a config of one test's own.
class RecoveryDeployment : public test::Deployment {
 public:
  RecoveryDeployment(std::string amqp_url, const std::string& recovery_yaml, int workers = 2)
      : test::Deployment([&] {
          test::DeploymentOptions settings;
          settings.amqp_url = std::move(amqp_url);
          settings.queue_prefix = "pe-rec";
          settings.heartbeat_seconds = 5;
          settings.database = test::suite_database;
          settings.migrate = true;
          settings.own_plugin_directory = true;
          settings.workers = workers;
          settings.shutdown_grace_seconds = 10;
          settings.log_level = "debug";
          settings.extra_yaml = "recovery:\n" + recovery_yaml;
          return settings;
        }()) {
    // The demo plugin, the crash fixture and the gate fixture, side by side
    // as an operator would install them.
    install_plugin(test::demo_plugin(), "demo.so");
    install_plugin(test::fixture("crash/crash.so"), "crash.so");
    install_plugin(fs::path(test::demo_and_gate_plugin_dir()) / "gate.so", "gate.so");
  }

  std::unique_ptr<test::DaemonProcess> start_daemon() {
    return test::Deployment::start_daemon({}, 60s);
  }
};

// The daemon's JSON log events named `name`, for `run_id` if given.
std::vector<json> events(const test::DaemonProcess& daemon, const std::string& name,
                         const std::string& run_id = "") {
  std::vector<json> found;
  std::istringstream lines(daemon.log());
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() != '{') continue;
    json event = json::parse(line, nullptr, false);
    if (event.is_discarded() || event.value("event", "") != name) continue;
    if (!run_id.empty() && event.value("run_id", "") != run_id) continue;
    found.push_back(std::move(event));
  }
  return found;
}

bool wait_for_event(const test::DaemonProcess& daemon, const std::string& name,
                    const std::string& run_id, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!events(daemon, name, run_id).empty()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

TEST_CASE("a job that kills its process stops its own program only, and the daemon survives it",
          "[daemon][crash]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  // Claims run out 3 s after their worker died; the sweeper looks every second.
  RecoveryDeployment deployment(*url,
                                "  lease_seconds: 3\n  stale_after_seconds: 1\n"
                                "  sweep_interval_seconds: 1\n  max_crashes: 3\n");
  auto first = deployment.start_daemon();
  // An innocent program is in the middle of a step when the poison's first
  // run takes the whole process down with it: the step waits at a gate that
  // stays closed until that process is gone, however loaded the machine is.
  const test::JobGate gate;
  json innocent_data = gate.job_data();
  innocent_data["demo.sleep"] = {{"ms", 100}};
  const std::string innocent =
      test::create_program(deployment.config(), "fixture.gate,demo.sleep", innocent_data);
  REQUIRE(wait_for_event(*first, "job.started", innocent, 60s));
  const std::string poison = test::create_program(deployment.config(), "fixture.abort");
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (first->running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  REQUIRE_FALSE(first->running());
  CHECK(events(*first, "job.finished", innocent).empty());  // it died with the process
  gate.open();

  // What systemd does next: start it again.
  auto second = deployment.start_daemon();
  const json poisoned = test::wait_until_ended(deployment.config(), poison, 120s);
  CHECK(poisoned["state"] == "errored");
  CHECK_THAT(poisoned["error_message"].get<std::string>(),
             Catch::Contains("fixture.abort") && Catch::Contains("crash 3 of 3 running alone"));
  const json survived = test::wait_until_ended(deployment.config(), innocent, 120s);
  CHECK(survived["state"] == "finished");
  CHECK(survived["errored_at"].is_null());
  // The poison's crashes were its isolated processes': the daemon lives on.
  CHECK(second->running());
  CHECK(events(*second, "job.crashed", poison).size() == 2);
  // The innocent step that shared the dead process ran alone once, then the
  // program went on in the worker as before.
  const auto started = events(*second, "job.started", innocent);
  REQUIRE_FALSE(started.empty());
  CHECK(started.front()["step"] == 0);
  CHECK(started.front()["process"] == "isolated");
  const bool back_in_worker = std::any_of(started.begin(), started.end(), [](const json& e) {
    return e["step"] == 1 && e["process"] == "worker";
  });
  CHECK(back_in_worker);
  CHECK(second->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("a backlog of steps around the fast/slow line drains without waiting for the sweeper",
          "[daemon][stall]") {
  // Issue 17: a claimed step could be skipped by both passes of a batch and
  // go back to the broker with its claim held; its only message was then
  // dropped as "busy" and the program waited for the recovery sweeper. With
  // stale_after at 10 minutes here, such a program would never finish in time.
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  RecoveryDeployment deployment(*url, "  lease_seconds: 4\n  stale_after_seconds: 600\n");
  // The backlog is queued before the daemon starts: its batches are full.
  store::Database database(deployment.database(), 1);
  database.ensure_schema();
  const auto store = database.program_store();
  {
    amqp::ReconnectingPublisher publisher(amqp::parse_url(*url, {}, 0), "test backlog");
    amqp::Connection declaring(amqp::parse_url(*url, {}, 0), "test declare");
    config::AmqpSettings amqp;
    amqp.queue = deployment.queue();
    declaring.declare(amqp::QueueTopology::from(amqp));
    executor::ProgramCreator creator(*store, publisher, deployment.queue(), true);
    for (int i = 0; i < 160; ++i) {
      // Every eighth program's job takes 30 ms, the others none: the job's
      // moving average keeps crossing the 5 ms line while batches run.
      sdk::ProgramRequest request;
      request.jobs = std::vector<std::string>(5, "demo.sleep");
      request.job_data = {{"demo.sleep", {{"ms", i % 8 == 0 ? 30 : 0}}}};
      creator.create(request);
    }
  }
  auto daemon = deployment.start_daemon();
  const auto deadline = std::chrono::steady_clock::now() + 240s;
  while (!store->list({"running", {}, 1, 0, {}}).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  CHECK(store->list({"running", {}, 200, 0, {}}).empty());
  CHECK(store->list({"finished", {}, 200, 0, {}}).size() == 160);
  CHECK(events(*daemon, "step.busy").size() == 0u);
  CHECK(events(*daemon, "program.recovered").size() == 0u);
  CHECK(events(*daemon, "step.infrastructure_error").empty());
  CHECK(daemon->stop(SIGTERM, 30s) == 0);
}
