// The Prometheus exporter of Metrics: counters, a gauge and a histogram in a
// prometheus-cpp registry, served as text on http://<listen>/metrics.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "program_executor/metrics/metrics.hpp"

namespace program_executor::metrics {

/// The exporter cannot start: a malformed address or a port it cannot bind.
class MetricsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Distinct values of the `job` label before further job names are counted as
/// job="other", so messages naming random jobs cannot grow the scrape unboundedly.
inline constexpr std::size_t max_job_labels = 256;

/// Labels of program_executor_build_info: this build's version and plugin ABI version.
std::map<std::string, std::string> build_labels();

/// Upper bounds (seconds) of the job duration histogram's buckets.
const std::vector<double>& job_duration_buckets();

/// Counts everything in a prometheus-cpp registry and serves it over HTTP
/// while alive (a civetweb server with its own threads).
class PrometheusMetrics final : public Metrics {
 public:
  /// Listens on `listen_address`, "IPV4:PORT" ("127.0.0.1:9464", "0.0.0.0:9464";
  /// port 0 picks a free port; Debian's civetweb has no IPv6). Throws MetricsError.
  explicit PrometheusMetrics(const std::string& listen_address);
  ~PrometheusMetrics() override;
  PrometheusMetrics(const PrometheusMetrics&) = delete;
  PrometheusMetrics& operator=(const PrometheusMetrics&) = delete;

  /// The ports actually bound (the chosen one when asked for port 0).
  std::vector<int> listening_ports() const;
  /// The current text exposition, as a scrape of /metrics returns it.
  std::string exposition() const;

  void program_created() override;
  void program_finished() override;
  void program_errored() override;
  void program_cancelled() override;
  void job_executed(std::string_view job, JobOutcome outcome, double seconds) override;
  void step_retried() override;
  void step_started() override;
  void step_ended() override;
  void message_parked() override;
  void message_duplicate() override;
  void program_recovered() override;
  void broker_reconnected() override;
  void database_reconnected() override;
  void worker_up(std::string_view host, long long pid, int index) override;
  void worker_down(int index) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The exporter listening on `listen_address` (see PrometheusMetrics).
std::unique_ptr<Metrics> make_prometheus_metrics(const std::string& listen_address);

}  // namespace program_executor::metrics
