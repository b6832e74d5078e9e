// The Prometheus endpoint of the real daemon: demo programs run through it
// against the real RabbitMQ and SQLite, then /metrics is scraped over HTTP.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/store/database.hpp"
#include "support/deployment.hpp"
#include "support/http_scrape.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;
using test::http_body;
using test::http_get;
using test::metrics_sample;

namespace {

// A socket bound to 127.0.0.1 on a port the kernel picked; listening if asked.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    if (listen) REQUIRE(::listen(fd_, 1) == 0);
    socklen_t size = sizeof address;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port_ = ntohs(address.sin_port);
  }
  ~LoopbackSocket() { ::close(fd_); }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;
  int port() const noexcept { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// A port free right now (bound, then released for the daemon to take).
int free_loopback_port() { return LoopbackSocket(false).port(); }

std::string executions(const std::string& job, const std::string& outcome) {
  return "program_executor_job_executions_total{job=\"" + job + "\",outcome=\"" + outcome + "\"}";
}

// A queue, a database file and a config file of their own for one test, with
// the metrics endpoint on `metrics_listen`.
class Deployment : public test::Deployment {
 public:
  /// `extra` is written at the end of the config (more top-level sections).
  Deployment(std::string amqp_url, const std::string& metrics_listen, const std::string& extra = "")
      : test::Deployment([&] {
          test::DeploymentOptions settings;
          settings.amqp_url = std::move(amqp_url);
          settings.queue_prefix = "pe-metrics";
          settings.workers = 2;
          settings.shutdown_grace_seconds = 10;
          settings.log_level = "debug";
          settings.metrics_listen = metrics_listen;
          settings.extra_yaml = extra;
          return settings;
        }()) {}
};

// Scrapes until `done` holds for the exposition (counters are updated after
// the row, so a program can read as ended a moment before it is counted).
std::string scrape_until(int port, const std::function<bool(const std::string&)>& done,
                         std::chrono::seconds timeout = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string text = http_body(http_get(port, "/metrics"));
  while (!done(text) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    text = http_body(http_get(port, "/metrics"));
  }
  return text;
}

}  // namespace

TEST_CASE("the daemon counts programs, jobs, retries and parked messages on /metrics",
          "[daemon][metrics]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  const int port = free_loopback_port();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  Deployment deployment(*url, listen);
  // Cancelled before any daemon runs: its first step is dropped when it arrives.
  const std::string cancelled = deployment.create("demo.log");
  REQUIRE(deployment.cli({"cancel", cancelled}).exit_code == 0);
  auto daemon = deployment.start_daemon();
  CHECK(daemon->count_in_log("http://" + listen + "/metrics") == 1);  // metrics.listening

  // Up, and once the cancelled program's step is dropped (the daemon takes it
  // at once), nothing finished and nothing in flight.
  std::string text = scrape_until(port, [](const std::string& t) {
    return metrics_sample(t, "program_executor_programs_cancelled_total") == 1 &&
           metrics_sample(t, "program_executor_steps_in_flight") == 0;
  });
  CHECK(metrics_sample(text, "program_executor_programs_finished_total") == 0);
  CHECK(metrics_sample(text, "program_executor_steps_in_flight") == 0);
  // Each worker thread is one worker_info series, named as the claims it
  // takes (lease_owner host:pid:worker).
  char host_buffer[256] = {};
  ::gethostname(host_buffer, sizeof host_buffer - 1);
  const std::string host = host_buffer;
  const std::string pid = std::to_string(daemon->pid());
  CHECK(metrics_sample(text, "program_executor_worker_info{host=\"" + host + "\",owner=\"" + host + ":" + pid +
                                 ":0\",pid=\"" + pid + "\",worker=\"0\"}") == 1);

  const json spawn = {{"jobs", {"demo.log"}}};
  const std::string spawner = deployment.create("demo.spawn,demo.log", {{"demo.spawn", spawn}});
  const std::string flaky =
      deployment.create("demo.flaky,demo.log", {{"demo.flaky", {{"failures", 1}}}});
  const std::string failing = deployment.create("demo.fail");
  const std::string ignorable = deployment.create("demo.ignorable");
  const std::string skipping = deployment.create("no.such.job");
  const std::string sleeper = deployment.create("demo.sleep", {{"demo.sleep", {{"ms", 600}}}});
  CHECK(deployment.wait_until_ended(spawner)["state"] == "finished");
  const std::string child =
      deployment.status(spawner)["job_data"]["demo.spawn"]["spawned_run_id"].get<std::string>();
  CHECK(deployment.wait_until_ended(child)["state"] == "finished");
  CHECK(deployment.wait_until_ended(flaky)["state"] == "finished");
  CHECK(deployment.wait_until_ended(failing)["state"] == "errored");
  CHECK(deployment.wait_until_ended(ignorable)["state"] == "errored");
  CHECK(deployment.wait_until_ended(skipping)["state"] == "finished");
  CHECK(deployment.wait_until_ended(sleeper)["state"] == "finished");

  // A body that can never run is parked.
  amqp::Connection producer(amqp::parse_url(*url, {}, 0), "test producer");
  producer.publish(deployment.queue(), "not json", {});

  text = scrape_until(port, [](const std::string& t) {
    return metrics_sample(t, "program_executor_programs_cancelled_total") == 1 &&
           metrics_sample(t, "program_executor_messages_parked_total") == 1 &&
           metrics_sample(t, "program_executor_steps_in_flight") == 0;
  });
  INFO(text);
  // spawner, its child, flaky, the skipping program and the sleeper finish.
  CHECK(metrics_sample(text, "program_executor_programs_finished_total") == 5);
  CHECK(metrics_sample(text, "program_executor_programs_errored_total") == 2);
  CHECK(metrics_sample(text, "program_executor_programs_cancelled_total") == 1);
  // Only programs created inside the daemon (by demo.spawn); `create` is another process.
  CHECK(metrics_sample(text, "program_executor_programs_created_total") == 1);
  CHECK(metrics_sample(text, "program_executor_messages_parked_total") == 1);
  CHECK(metrics_sample(text, "program_executor_step_retries_total") == 1);
  CHECK(metrics_sample(text, "program_executor_steps_in_flight") == 0);
  CHECK(metrics_sample(text, "program_executor_messages_duplicate_total") == 0);
  CHECK(metrics_sample(text, "program_executor_broker_reconnects_total") == 0);
  CHECK(metrics_sample(text, "program_executor_programs_recovered_total") == 0);
  CHECK(metrics_sample(text, executions("demo.spawn", "success")) == 1);
  CHECK(metrics_sample(text, executions("demo.log", "success")) == 3);  // spawner, child, flaky
  CHECK(metrics_sample(text, executions("demo.flaky", "retry")) == 1);
  CHECK(metrics_sample(text, executions("demo.flaky", "success")) == 1);
  CHECK(metrics_sample(text, executions("demo.fail", "failed")) == 1);
  CHECK(metrics_sample(text, executions("demo.ignorable", "ignorable")) == 1);
  CHECK(metrics_sample(text, executions("no.such.job", "skipped")) == 1);
  CHECK(metrics_sample(text, executions("demo.sleep", "success")) == 1);
  CHECK(metrics_sample(text, R"(program_executor_job_duration_seconds_count{job="demo.flaky"})") == 2);
  // demo.sleep slept 0.6 s: its one observation is above the 0.5 s bucket.
  CHECK(metrics_sample(text, R"(program_executor_job_duration_seconds_bucket{job="demo.sleep",le="0.5"})") == 0);
  CHECK(metrics_sample(text, R"(program_executor_job_duration_seconds_bucket{job="demo.sleep",le="+Inf"})") == 1);
  CHECK(metrics_sample(text, R"(program_executor_job_duration_seconds_sum{job="demo.sleep"})") >= 0.6);

  CHECK(daemon->stop(SIGTERM, 20s) == 0);
  CHECK(http_body(http_get(port, "/metrics")).empty());  // the endpoint goes with the daemon
}

TEST_CASE("an empty metrics.listen serves nothing and a taken port stops the start",
          "[daemon][metrics]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  {
    Deployment deployment(*url, "");
    auto daemon = deployment.start_daemon();
    CHECK(daemon->count_in_log("\"metrics.disabled\"") == 1);
    CHECK(daemon->count_in_log("\"metrics.listening\"") == 0);
    CHECK(daemon->stop(SIGTERM, 20s) == 0);
  }
  LoopbackSocket taken(true);
  const std::string listen = "127.0.0.1:" + std::to_string(taken.port());
  Deployment deployment(*url, listen);
  const auto result = test::run_command({PE_DAEMON_PATH, "run", "-c", deployment.config().string()});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.out + result.err, Catch::Contains("metrics.listen: cannot listen on " + listen));
}

TEST_CASE("a cancel that hits a running step is counted, and build info names the version",
          "[daemon][metrics]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  const int port = free_loopback_port();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  Deployment deployment(*url, listen);
  auto daemon = deployment.start_daemon();
  // Long enough that a cancel from a loaded machine still finds it running.
  const std::string run_id =
      deployment.create("demo.sleep,demo.log", {{"demo.sleep", {{"ms", 10000}}}});
  // Cancelled while its first step runs: nothing is left to drop later.
  REQUIRE(daemon->wait_for_log("\"job.started\"", 30s));
  const test::CommandResult cancel = deployment.cli({"cancel", run_id});
  INFO(cancel.err);
  REQUIRE(cancel.exit_code == 0);
  const std::string text = scrape_until(port, [](const std::string& t) {
    return metrics_sample(t, "program_executor_programs_cancelled_total") == 1 &&
           metrics_sample(t, "program_executor_steps_in_flight") == 0;
  }, 30s);
  INFO(text);
  CHECK(metrics_sample(text, "program_executor_programs_cancelled_total") == 1);
  CHECK(metrics_sample(text, "program_executor_programs_finished_total") == 0);
  CHECK(deployment.status(run_id)["state"] == "cancelled");
  CHECK(daemon->count_in_log("\"job\":\"demo.log\"") == 0);  // the next step never ran

  const test::CommandResult version = test::run_command({PE_DAEMON_PATH, "version", "--json"});
  const json build = json::parse(version.out);
  CHECK(metrics_sample(text, "program_executor_build_info{abi=\"" + std::to_string(build["plugin_abi"].get<int>()) +
                         "\",version=\"" + build["version"].get<std::string>() + "\"}") == 1);
  CHECK(daemon->stop(SIGTERM, 20s) == 0);
}

TEST_CASE("a program the recovery sweeper republishes is counted", "[daemon][metrics]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  const int port = free_loopback_port();
  Deployment deployment(*url, "127.0.0.1:" + std::to_string(port),
                        "recovery:\n  stale_after_seconds: 1\n  sweep_interval_seconds: 1\n");
  auto daemon = deployment.start_daemon();
  {
    // A program whose first message never went out (its creator died
    // between the insert and the publish): only the sweeper moves it.
    store::Database database(deployment.database(), 1);
    database.program_store()->insert({"orphan", {"demo.log"}, json::object(), json::object()},
                                     std::chrono::milliseconds(1));
  }
  CHECK(deployment.wait_until_ended("orphan")["state"] == "finished");
  CHECK(daemon->count_in_log("\"program.recovered\"") == 1);
  const std::string text = scrape_until(port, [](const std::string& t) {
    return metrics_sample(t, "program_executor_programs_recovered_total") == 1;
  });
  CHECK(metrics_sample(text, "program_executor_programs_recovered_total") == 1);
  CHECK(daemon->stop(SIGTERM, 20s) == 0);
}
