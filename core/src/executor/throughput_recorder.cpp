#include "program_executor/executor/throughput_recorder.hpp"

#include <exception>

#include "program_executor/log/logger.hpp"
#include "program_executor/store/throughput_store.hpp"

namespace program_executor::executor {

ThroughputRecorder::ThroughputRecorder(metrics::Metrics& inner) : inner_(inner) {}

ThroughputRecorder::ThroughputRecorder(std::unique_ptr<metrics::Metrics> inner)
    : owned_(inner ? std::move(inner) : std::make_unique<metrics::Metrics>()), inner_(*owned_) {}

void ThroughputRecorder::program_created() { inner_.program_created(); }
void ThroughputRecorder::program_finished() { inner_.program_finished(); }
void ThroughputRecorder::program_errored() { inner_.program_errored(); }
void ThroughputRecorder::program_cancelled() { inner_.program_cancelled(); }

void ThroughputRecorder::job_executed(std::string_view job, metrics::JobOutcome outcome,
                                      double seconds) {
  pending_.fetch_add(1, std::memory_order_relaxed);
  inner_.job_executed(job, outcome, seconds);
}

void ThroughputRecorder::step_retried() { inner_.step_retried(); }
void ThroughputRecorder::step_started() { inner_.step_started(); }
void ThroughputRecorder::step_ended() { inner_.step_ended(); }
void ThroughputRecorder::message_parked() { inner_.message_parked(); }
void ThroughputRecorder::message_duplicate() { inner_.message_duplicate(); }
void ThroughputRecorder::program_recovered() { inner_.program_recovered(); }
void ThroughputRecorder::broker_reconnected() { inner_.broker_reconnected(); }
void ThroughputRecorder::database_reconnected() { inner_.database_reconnected(); }
void ThroughputRecorder::worker_up(std::string_view host, long long pid, int index) {
  inner_.worker_up(host, pid, index);
}
void ThroughputRecorder::worker_down(int index) { inner_.worker_down(index); }

bool ThroughputRecorder::flush(store::ThroughputStore& store, const std::string& owner) noexcept {
  return flush([&](long long steps) { store.add(owner, steps); });
}

bool ThroughputRecorder::flush(const std::function<void(long long)>& record) noexcept {
  // Taken out first: steps counted while the statement runs wait for the next flush.
  const long long steps = pending_.exchange(0, std::memory_order_relaxed);
  if (steps == 0) return true;
  try {
    record(steps);
    return true;
  } catch (const std::exception& e) {
    pending_.fetch_add(steps, std::memory_order_relaxed);
    try {
      log::event(log::Level::warn, "throughput.flush_failed",
                 "the steps per minute were not recorded; they are added at the next attempt",
                 {{"steps", steps}, {"error", e.what()}});
    } catch (...) {
      // Logging must not take the sweeper down either.
    }
  } catch (...) {
    pending_.fetch_add(steps, std::memory_order_relaxed);
  }
  return false;
}

}  // namespace program_executor::executor
