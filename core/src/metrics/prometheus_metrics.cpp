#include "program_executor/metrics/prometheus_metrics.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <map>
#include <mutex>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "program_executor/sdk/abi.hpp"

namespace program_executor::metrics {

namespace {

constexpr std::size_t outcome_count = 6;  // the values of JobOutcome
static_assert(static_cast<std::size_t>(JobOutcome::skipped) + 1 == outcome_count);

std::size_t index_of(JobOutcome outcome) noexcept { return static_cast<std::size_t>(outcome); }

prometheus::Counter& plain_counter(prometheus::Registry& registry, const std::string& name,
                                   const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

// civetweb also accepts bare ports (every interface), host names, lists and
// "s"/"r" suffixes; only one literal address with a port is allowed here, so
// the config says exactly which interface is exposed. Debian builds civetweb
// without IPv6 (mg_check_feature(8) == 0): "[::1]:9464" could never bind.
void check_listen_address(const std::string& address) {
  const auto fail = [&](const std::string& why) {
    throw MetricsError("metrics.listen: \"" + address + "\": " + why +
                       " (expected IPV4:PORT, e.g. 127.0.0.1:9464)");
  };
  if (!address.empty() && address.front() == '[') fail("IPv6 is not supported");
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) fail("no host");
  const std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535) {
    fail("bad port");
  }
  in_addr parsed{};
  if (inet_pton(AF_INET, host.c_str(), &parsed) != 1) fail("not an IPv4 address");
}

}  // namespace

std::map<std::string, std::string> build_labels() {
  return {{"version", PE_VERSION}, {"abi", std::to_string(PROGRAM_EXECUTOR_ABI_VERSION)}};
}

const std::vector<double>& job_duration_buckets() {
  // Jobs range from milliseconds (bookkeeping) to many minutes (exports).
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                              2.5,   5,    10,    30,   60,  300,  900, 3600};
  return buckets;
}

struct PrometheusMetrics::State {
  // Per job label: one counter per outcome (created on first use) and the histogram.
  struct JobSeries {
    std::array<prometheus::Counter*, outcome_count> executions{};
    prometheus::Histogram* duration = nullptr;
  };

  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Counter& programs_created = plain_counter(
      *registry, "program_executor_programs_created_total",
      "Programs created by this process (by jobs through their context).");
  prometheus::Counter& programs_finished =
      plain_counter(*registry, "program_executor_programs_finished_total",
                    "Programs whose last step succeeded.");
  prometheus::Counter& programs_errored = plain_counter(
      *registry, "program_executor_programs_errored_total",
      "Programs that failed for good (an ignorable or other error, or retries exhausted).");
  prometheus::Counter& programs_cancelled =
      plain_counter(*registry, "program_executor_programs_cancelled_total",
                    "Cancels that reached a step: a running step whose commit a cancel "
                    "stopped, or a next step dropped because its program had been cancelled "
                    "or had failed.");
  // Always 1; the labels say which build runs (join on it in queries).
  prometheus::Gauge& build_info = prometheus::BuildGauge()
                                      .Name("program_executor_build_info")
                                      .Help("The running build: version and plugin ABI version.")
                                      .Register(*registry)
                                      .Add(build_labels());
  prometheus::Family<prometheus::Counter>& job_executions =
      prometheus::BuildCounter()
          .Name("program_executor_job_executions_total")
          .Help("Job executions by job name and outcome (success, retry, yield, ignorable, "
                "failed, skipped).")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& job_durations =
      prometheus::BuildHistogram()
          .Name("program_executor_job_duration_seconds")
          .Help("Wall time of job executions, by job name (skipped unknown jobs excluded).")
          .Register(*registry);
  prometheus::Counter& step_retries =
      plain_counter(*registry, "program_executor_step_retries_total",
                    "Steps sent to a retry queue (job retry, yield or infrastructure error).");
  prometheus::Gauge& steps_in_flight = prometheus::BuildGauge()
                                           .Name("program_executor_steps_in_flight")
                                           .Help("Steps being processed right now.")
                                           .Register(*registry)
                                           .Add({});
  prometheus::Counter& messages_parked =
      plain_counter(*registry, "program_executor_messages_parked_total",
                    "Messages that can never run, moved to the parking queue with a reason.");
  prometheus::Counter& messages_duplicate =
      plain_counter(*registry, "program_executor_messages_duplicate_total",
                    "Stale or duplicated step messages acknowledged without running.");
  prometheus::Counter& programs_recovered =
      plain_counter(*registry, "program_executor_programs_recovered_total",
                    "Programs that had stopped moving whose step the recovery sweeper "
                    "republished.");
  prometheus::Counter& broker_reconnects =
      plain_counter(*registry, "program_executor_broker_reconnects_total",
                    "Broker connections re-established after a loss.");
  prometheus::Counter& database_reconnects =
      plain_counter(*registry, "program_executor_database_reconnects_total",
                    "Database sessions re-established after a loss.");

  // 1 per running worker thread. Its labels name the worker as the claims
  // it takes do (lease_owner "host:pid:worker" in list and status), so a
  // program held by a worker can be joined to the host that serves it.
  prometheus::Family<prometheus::Gauge>& worker_info =
      prometheus::BuildGauge()
          .Name("program_executor_worker_info")
          .Help("1 per running worker thread; labels host, pid, worker (its index) and owner "
                "(host:pid:worker, the lease_owner of the steps it claims).")
          .Register(*registry);

  std::mutex jobs_mutex;
  std::map<std::string, JobSeries, std::less<>> jobs;
  std::mutex workers_mutex;
  std::map<int, prometheus::Gauge*> workers;  ///< by worker index

  // Declared last: destroyed first, so no scrape runs while the registry goes away.
  std::unique_ptr<prometheus::Exposer> exposer;

  // The entry of `job`, or of "other" once max_job_labels names are known;
  // its key is the label value. jobs_mutex held.
  std::pair<const std::string, JobSeries>& series(std::string_view job) {
    auto it = jobs.find(job);
    if (it == jobs.end()) {
      if (jobs.size() >= max_job_labels) job = "other";
      it = jobs.try_emplace(std::string(job)).first;
    }
    return *it;
  }
};

PrometheusMetrics::PrometheusMetrics(const std::string& listen_address)
    : state_(std::make_unique<State>()) {
  state_->build_info.Set(1);
  check_listen_address(listen_address);
  try {
    state_->exposer = std::make_unique<prometheus::Exposer>(listen_address, 2);
  } catch (const std::exception& e) {
    throw MetricsError("metrics.listen: cannot listen on " + listen_address + ": " + e.what());
  }
  state_->exposer->RegisterCollectable(state_->registry);
}

PrometheusMetrics::~PrometheusMetrics() = default;

std::vector<int> PrometheusMetrics::listening_ports() const {
  return state_->exposer->GetListeningPorts();
}

std::string PrometheusMetrics::exposition() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, state_->registry->Collect());
  return out.str();
}

void PrometheusMetrics::program_created() { state_->programs_created.Increment(); }
void PrometheusMetrics::program_finished() { state_->programs_finished.Increment(); }
void PrometheusMetrics::program_errored() { state_->programs_errored.Increment(); }
void PrometheusMetrics::program_cancelled() { state_->programs_cancelled.Increment(); }

void PrometheusMetrics::job_executed(std::string_view job, JobOutcome outcome, double seconds) {
  prometheus::Counter* counter = nullptr;
  prometheus::Histogram* duration = nullptr;
  {
    // Family::Add hashes the labels under the family's lock on every call; the
    // pointers it returns stay valid as long as the family, so keep them.
    std::lock_guard lock(state_->jobs_mutex);
    auto& [label, series] = state_->series(job);
    auto& slot = series.executions[index_of(outcome)];
    if (slot == nullptr) {
      slot = &state_->job_executions.Add({{"job", label}, {"outcome", std::string(to_string(outcome))}});
    }
    counter = slot;
    // A skipped job did not run: its zero would only skew the quantiles.
    if (outcome != JobOutcome::skipped) {
      if (series.duration == nullptr) {
        series.duration = &state_->job_durations.Add({{"job", label}}, job_duration_buckets());
      }
      duration = series.duration;
    }
  }
  counter->Increment();
  if (duration != nullptr) duration->Observe(seconds < 0 ? 0 : seconds);
}

void PrometheusMetrics::step_retried() { state_->step_retries.Increment(); }
void PrometheusMetrics::step_started() { state_->steps_in_flight.Increment(); }
void PrometheusMetrics::step_ended() { state_->steps_in_flight.Decrement(); }
void PrometheusMetrics::message_parked() { state_->messages_parked.Increment(); }
void PrometheusMetrics::message_duplicate() { state_->messages_duplicate.Increment(); }
void PrometheusMetrics::program_recovered() { state_->programs_recovered.Increment(); }
void PrometheusMetrics::broker_reconnected() { state_->broker_reconnects.Increment(); }
void PrometheusMetrics::database_reconnected() { state_->database_reconnects.Increment(); }

void PrometheusMetrics::worker_up(std::string_view host, long long pid, int index) {
  const std::string pid_text = std::to_string(pid);
  const std::string worker = std::to_string(index);
  std::lock_guard lock(state_->workers_mutex);
  if (state_->workers.count(index) != 0) return;
  prometheus::Gauge& gauge = state_->worker_info.Add({{"host", std::string(host)},
                                                      {"pid", pid_text},
                                                      {"worker", worker},
                                                      {"owner", std::string(host) + ":" + pid_text + ":" + worker}});
  gauge.Set(1);
  state_->workers[index] = &gauge;
}

void PrometheusMetrics::worker_down(int index) {
  std::lock_guard lock(state_->workers_mutex);
  const auto it = state_->workers.find(index);
  if (it == state_->workers.end()) return;
  state_->worker_info.Remove(it->second);
  state_->workers.erase(it);
}

std::unique_ptr<Metrics> make_prometheus_metrics(const std::string& listen_address) {
  return std::make_unique<PrometheusMetrics>(listen_address);
}

}  // namespace program_executor::metrics
