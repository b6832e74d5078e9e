// What the daemon counts, behind an interface so core code does not depend on
// the exporter (Prometheus, in prometheus_metrics.hpp) and tests can count too.
#pragma once

#include <string_view>

namespace program_executor::metrics {

/// How one job execution ended, as a metric label.
enum class JobOutcome { success, retry, yield, ignorable, failed, skipped };

/// Label value of an outcome: "success", "retry", ...
constexpr std::string_view to_string(JobOutcome outcome) noexcept {
  switch (outcome) {
    case JobOutcome::success: return "success";
    case JobOutcome::retry: return "retry";
    case JobOutcome::yield: return "yield";
    case JobOutcome::ignorable: return "ignorable";
    case JobOutcome::failed: return "failed";
    case JobOutcome::skipped: return "skipped";
  }
  return "unknown";
}

/// Every method is thread-safe and cheap. The base class counts nothing.
class Metrics {
 public:
  virtual ~Metrics() = default;
  virtual void program_created() {}
  virtual void program_finished() {}
  /// Failed permanently (an ignorable or other error, or the retry limit).
  virtual void program_errored() {}
  virtual void program_cancelled() {}
  /// One execution of a job (or a skipped unknown job), with its wall time.
  virtual void job_executed(std::string_view /*job*/, JobOutcome /*outcome*/, double /*seconds*/) {}
  /// A step was sent to the retry queue (job retry, yield or infrastructure error).
  virtual void step_retried() {}
  /// Steps being processed right now (a gauge): +1 at start, -1 at the end.
  virtual void step_started() {}
  virtual void step_ended() {}
  virtual void message_parked() {}
  virtual void message_duplicate() {}
  /// The recovery sweeper republished the step of a program that had stopped moving.
  virtual void program_recovered() {}
  virtual void broker_reconnected() {}
  virtual void database_reconnected() {}
  /// Worker thread `index` of process `pid` on `host` runs: its claims carry
  /// the owner "host:pid:index" (list, status). Until worker_down(index).
  virtual void worker_up(std::string_view /*host*/, long long /*pid*/, int /*index*/) {}
  virtual void worker_down(int /*index*/) {}
};

/// A Metrics that counts nothing (metrics disabled, and most tests).
inline Metrics& no_metrics() {
  static Metrics none;
  return none;
}

}  // namespace program_executor::metrics
