// Counts the steps this daemon executes, for the steps-per-minute table the
// web API's /stats reads (store/throughput_store.hpp).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "program_executor/metrics/metrics.hpp"

namespace program_executor::store {
class ThroughputStore;
}  // namespace program_executor::store

namespace program_executor::executor {

/// A Metrics that forwards every call to an inner Metrics (the Prometheus
/// exporter, or one counting nothing) and also counts job_executed calls,
/// whatever their outcome: one per step a worker executed. Counting costs an
/// atomic increment on the step path; the count reaches the database only in
/// flush(), which the daemon calls from its sweeper thread.
class ThroughputRecorder final : public metrics::Metrics {
 public:
  /// Forwards to `inner`, which must outlive the recorder.
  explicit ThroughputRecorder(metrics::Metrics& inner);
  /// Forwards to `inner`, which the recorder owns.
  explicit ThroughputRecorder(std::unique_ptr<metrics::Metrics> inner);

  void program_created() override;
  void program_finished() override;
  void program_errored() override;
  void program_cancelled() override;
  void job_executed(std::string_view job, metrics::JobOutcome outcome, double seconds) override;
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

  /// Steps counted since the last successful flush.
  long long pending() const noexcept { return pending_.load(std::memory_order_relaxed); }

  /// Adds the steps counted since the last flush to `owner`'s row of the
  /// current minute. Never throws: on a failure the steps are kept for the
  /// next flush and a warning is logged (throughput.flush_failed). True if
  /// they were recorded (or there were none).
  bool flush(store::ThroughputStore& store, const std::string& owner) noexcept;
  /// The same with `record(steps)` in place of the store (called only when
  /// there are steps; an exception it throws counts as a failure).
  bool flush(const std::function<void(long long)>& record) noexcept;

 private:
  std::unique_ptr<metrics::Metrics> owned_;
  metrics::Metrics& inner_;
  std::atomic<long long> pending_{0};
};

}  // namespace program_executor::executor
