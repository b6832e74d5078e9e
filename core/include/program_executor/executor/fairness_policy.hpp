// The fairness rule: how long a worker keeps the steps it has taken before it
// lets idle workers have them. Batching pays off for short steps, whose cost
// is mostly the claim, the commit and the confirm; a step that takes longer
// runs alone, so it neither holds other claimed steps nor delays their
// commits, and deliveries queued behind a long batch go back to the broker.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

namespace program_executor::executor {

/// One rule, applied in three places: the job runner sizes its batches by it
/// (batch_limit), the step processor plans a batch's slow jobs by it
/// (slow_job), and the worker hands back and throttles its deliveries by it
/// (holds_up_queue, throttled_prefetch).
struct FairnessPolicy {
  /// A step slower than this runs alone: a job whose recent runs took longer
  /// on average, and every step after a batch that took longer per step.
  std::chrono::duration<double, std::milli> slow_step{5.0};
  /// A batch running longer than this holds up the deliveries queued behind
  /// it: they go back to the broker, and the consumer takes one at a time
  /// (throttled_prefetch) until the batch ends.
  std::chrono::milliseconds long_batch{100};
  /// The consumer's prefetch while a long batch runs.
  static constexpr int throttled_prefetch = 1;

  /// Whether a job whose recent runs took `recent_ms` (moving average) is
  /// slow; a job not run yet (nullopt) is, until it shows otherwise.
  bool slow_job(std::optional<double> recent_ms) const;
  /// How many steps the next batch may take (up to `max_batch`), after a
  /// batch that took `per_step` per step: one after a slow batch.
  std::size_t batch_limit(std::chrono::steady_clock::duration per_step,
                          std::size_t max_batch) const;
  /// Whether a batch that has run for `running_for` holds up the deliveries
  /// queued behind it.
  bool holds_up_queue(std::chrono::steady_clock::duration running_for) const;
};

}  // namespace program_executor::executor
