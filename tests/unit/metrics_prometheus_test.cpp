// The Prometheus exporter: what each Metrics call does to the text exposition,
// scraped over HTTP from a real listener on a loopback port.

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "program_executor/metrics/prometheus_metrics.hpp"
#include "support/http_scrape.hpp"

namespace metrics = program_executor::metrics;
using program_executor::test::http_get;
using program_executor::test::metrics_sample;

namespace {

int port_of(const metrics::PrometheusMetrics& exporter) {
  const auto ports = exporter.listening_ports();
  REQUIRE(ports.size() == 1);
  REQUIRE(ports[0] > 0);
  return ports[0];
}

// The message of the MetricsError that starting an exporter on `address`
// throws; "" if it starts. Any other exception fails the test.
std::string start_error(const std::string& address) {
  try {
    metrics::PrometheusMetrics exporter(address);
  } catch (const metrics::MetricsError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("counts appear in the exposition scraped over HTTP", "[metrics]") {
  metrics::PrometheusMetrics exporter("127.0.0.1:0");
  const int port = port_of(exporter);

  std::string scrape = http_get(port, "/metrics");
  REQUIRE(scrape.rfind("HTTP/1.1 200", 0) == 0);
  // Every metric is exposed from the start, at zero, so rate() and alerts work
  // before the first event (job series appear with their first job).
  for (const char* name :
       {"program_executor_programs_created_total", "program_executor_programs_finished_total",
        "program_executor_programs_errored_total", "program_executor_programs_cancelled_total",
        "program_executor_step_retries_total", "program_executor_steps_in_flight",
        "program_executor_messages_parked_total", "program_executor_messages_duplicate_total",
        "program_executor_programs_recovered_total",
        "program_executor_broker_reconnects_total",
        "program_executor_database_reconnects_total"}) {
    INFO(name);
    CHECK(metrics_sample(scrape, name) == 0);
  }
  CHECK(scrape.find("program_executor_job_executions_total") == std::string::npos);

  exporter.program_created();
  exporter.program_created();
  exporter.program_finished();
  exporter.program_errored();
  exporter.program_cancelled();
  exporter.step_retried();
  exporter.message_parked();
  exporter.message_duplicate();
  exporter.message_duplicate();
  exporter.program_recovered();
  exporter.broker_reconnected();
  exporter.database_reconnected();
  exporter.step_started();
  exporter.step_started();
  exporter.step_ended();
  exporter.job_executed("export.fetch", metrics::JobOutcome::success, 0.2);
  exporter.job_executed("export.fetch", metrics::JobOutcome::success, 3.0);
  exporter.job_executed("export.fetch", metrics::JobOutcome::retry, 0.001);
  exporter.job_executed("no.such.job", metrics::JobOutcome::skipped, 0.0);

  scrape = http_get(port, "/metrics");
  CHECK(scrape.find("# TYPE program_executor_job_executions_total counter") != std::string::npos);
  CHECK(scrape.find("# TYPE program_executor_job_duration_seconds histogram") != std::string::npos);
  CHECK(metrics_sample(scrape, "program_executor_programs_created_total") == 2);
  CHECK(metrics_sample(scrape, "program_executor_programs_finished_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_programs_errored_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_programs_cancelled_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_step_retries_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_messages_parked_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_messages_duplicate_total") == 2);
  CHECK(metrics_sample(scrape, "program_executor_programs_recovered_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_broker_reconnects_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_database_reconnects_total") == 1);
  CHECK(metrics_sample(scrape, "program_executor_steps_in_flight") == 1);
  CHECK(metrics_sample(scrape,
               R"(program_executor_job_executions_total{job="export.fetch",outcome="success"})") ==
        2);
  CHECK(metrics_sample(scrape,
               R"(program_executor_job_executions_total{job="export.fetch",outcome="retry"})") ==
        1);
  CHECK(metrics_sample(scrape,
               R"(program_executor_job_executions_total{job="no.such.job",outcome="skipped"})") ==
        1);
  CHECK(metrics_sample(scrape, R"(program_executor_job_duration_seconds_count{job="export.fetch"})") == 3);
  CHECK(metrics_sample(scrape, R"(program_executor_job_duration_seconds_sum{job="export.fetch"})") ==
        Approx(3.201));
  // Buckets are cumulative: 0.001 <= 0.005; 0.2 <= 0.25; 3.0 <= 5.
  CHECK(metrics_sample(scrape, R"(program_executor_job_duration_seconds_bucket{job="export.fetch",le="0.005"})") == 1);
  CHECK(metrics_sample(scrape, R"(program_executor_job_duration_seconds_bucket{job="export.fetch",le="0.25"})") == 2);
  CHECK(metrics_sample(scrape, R"(program_executor_job_duration_seconds_bucket{job="export.fetch",le="2.5"})") == 2);
  CHECK(metrics_sample(scrape, R"(program_executor_job_duration_seconds_bucket{job="export.fetch",le="5"})") == 3);
  CHECK(metrics_sample(scrape, R"(program_executor_job_duration_seconds_bucket{job="export.fetch",le="+Inf"})") == 3);
  // A skipped job did not run: no duration for it.
  CHECK(scrape.find(R"(program_executor_job_duration_seconds_count{job="no.such.job"})") ==
        std::string::npos);
  // What a scrape returns is what exposition() renders.
  CHECK(scrape.find(exporter.exposition()) != std::string::npos);
}

TEST_CASE("a running worker is one worker_info series named as its claims are, gone once it stops",
          "[metrics]") {
  metrics::PrometheusMetrics exporter("127.0.0.1:0");
  exporter.worker_up("worker-host-1", 4242, 0);
  exporter.worker_up("worker-host-1", 4242, 1);
  exporter.worker_up("worker-host-1", 4242, 1);  // once per worker
  std::string scrape = exporter.exposition();
  CHECK(scrape.find("# TYPE program_executor_worker_info gauge") != std::string::npos);
  CHECK(metrics_sample(scrape, R"(program_executor_worker_info{host="worker-host-1",owner="worker-host-1:4242:0",pid="4242",worker="0"})") == 1);
  CHECK(metrics_sample(scrape, R"(program_executor_worker_info{host="worker-host-1",owner="worker-host-1:4242:1",pid="4242",worker="1"})") == 1);
  std::size_t series = 0;
  for (std::size_t at = scrape.find("\nprogram_executor_worker_info{"); at != std::string::npos;
       at = scrape.find("\nprogram_executor_worker_info{", at + 1)) {
    ++series;
  }
  CHECK(series == 2);

  exporter.worker_down(0);
  exporter.worker_down(7);  // never up: nothing to remove
  scrape = exporter.exposition();
  CHECK(scrape.find(R"(worker="0")") == std::string::npos);
  CHECK(metrics_sample(scrape, R"(program_executor_worker_info{host="worker-host-1",owner="worker-host-1:4242:1",pid="4242",worker="1"})") == 1);
}

TEST_CASE("concurrent updates from many threads are all counted", "[metrics]") {
  metrics::PrometheusMetrics exporter("127.0.0.1:0");
  constexpr int threads = 8;
  constexpr int per_thread = 1000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&exporter, t] {
      const std::string job = "job." + std::to_string(t % 2);
      for (int i = 0; i < per_thread; ++i) {
        exporter.step_started();
        exporter.job_executed(job, metrics::JobOutcome::success, 0.01);
        exporter.step_retried();
        exporter.step_ended();
      }
    });
  }
  for (auto& worker : workers) worker.join();
  const std::string text = http_get(port_of(exporter), "/metrics");
  CHECK(metrics_sample(text, "program_executor_step_retries_total") == threads * per_thread);
  CHECK(metrics_sample(text, "program_executor_steps_in_flight") == 0);
  for (const char* job : {"job.0", "job.1"}) {
    INFO(job);
    CHECK(metrics_sample(text, std::string(R"(program_executor_job_executions_total{job=")") + job +
                           R"(",outcome="success"})") == threads / 2 * per_thread);
  }
}

TEST_CASE("job names past the label limit are counted as job other", "[metrics]") {
  metrics::PrometheusMetrics exporter("127.0.0.1:0");
  for (std::size_t i = 0; i < metrics::max_job_labels + 10; ++i) {
    exporter.job_executed("random." + std::to_string(i), metrics::JobOutcome::skipped, 0);
  }
  exporter.job_executed("random.0", metrics::JobOutcome::skipped, 0);  // known: keeps its label
  const std::string text = exporter.exposition();
  CHECK(metrics_sample(text, R"(program_executor_job_executions_total{job="other",outcome="skipped"})") ==
        10);
  CHECK(metrics_sample(text, R"(program_executor_job_executions_total{job="random.0",outcome="skipped"})") ==
        2);
  CHECK(text.find(R"(job="random.)" + std::to_string(metrics::max_job_labels) + "\"") ==
        std::string::npos);
}

TEST_CASE("the factory serves /metrics and nothing else", "[metrics]") {
  auto exporter = metrics::make_prometheus_metrics("127.0.0.1:0");
  auto& prometheus = dynamic_cast<metrics::PrometheusMetrics&>(*exporter);
  exporter->program_finished();
  const int port = port_of(prometheus);
  CHECK(metrics_sample(http_get(port, "/metrics"), "program_executor_programs_finished_total") == 1);
  const std::string root = http_get(port, "/");
  CHECK(root.substr(0, root.find('\r')).find(" 404 ") != std::string::npos);
  CHECK(root.find("program_executor_") == std::string::npos);
}

TEST_CASE("bad or busy listen addresses fail with the key and the address", "[metrics]") {
  for (const char* address :
       {"9464", "localhost:9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:94x",
        "1.2.3:9464", "::1:9464", "[::1]:9464", "[nope]:9464", "127.0.0.1:9464,0.0.0.0:9465", ""}) {
    INFO(address);
    CHECK_THAT(start_error(address), Catch::Contains(std::string("metrics.listen: \"") + address));
  }
  metrics::PrometheusMetrics first("127.0.0.1:0");
  const std::string taken = "127.0.0.1:" + std::to_string(port_of(first));
  CHECK_THAT(start_error(taken), Catch::Contains("metrics.listen: cannot listen on " + taken));
}

TEST_CASE("build info is one series at 1 naming the version and plugin ABI", "[metrics]") {
  metrics::PrometheusMetrics exporter("127.0.0.1:0");
  const auto labels = metrics::build_labels();
  REQUIRE(labels.count("version") == 1);
  REQUIRE(labels.count("abi") == 1);
  CHECK(std::regex_match(labels.at("version"), std::regex(R"(\d+\.\d+\.\d+)")));
  CHECK(std::regex_match(labels.at("abi"), std::regex(R"(\d+)")));
  const std::string series = "program_executor_build_info{abi=\"" + labels.at("abi") +
                             "\",version=\"" + labels.at("version") + "\"}";
  CHECK(metrics_sample(exporter.exposition(), series) == 1);
  // Counting other things leaves it alone.
  exporter.program_cancelled();
  CHECK(metrics_sample(exporter.exposition(), series) == 1);
  CHECK(metrics_sample(exporter.exposition(), "program_executor_programs_cancelled_total") == 1);
}
