// When a step that failed with a retryable error runs again, and when it stops trying.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "program_executor/config/config.hpp"

namespace program_executor::executor {

struct RetryPolicy {
  using Backoff = config::Backoff;
  Backoff backoff = Backoff::fixed;
  std::chrono::milliseconds delay{1000};
  std::chrono::milliseconds max_delay{300000};
  int jitter_percent = 0;
  int max_attempts = 0;  ///< 0: no limit

  static RetryPolicy from(const config::RetryPolicySettings& settings);

  /// Whether a step that has now failed `attempts` times (this failure
  /// included) must stop retrying.
  bool exhausted(int attempts) const noexcept { return max_attempts > 0 && attempts >= max_attempts; }

  /// The delay before retry number `retry` (1 = the first), before jitter:
  /// `delay`, or for exponential backoff delay * 2^(retry-1), at most max_delay.
  std::chrono::milliseconds nominal_delay(int retry) const;

  /// The delay of the retry queue the step goes to: the nominal delay spread
  /// by the jitter (`jitter_draw` in [0,1)), then placed on the retry queue
  /// ladder by stochastic rounding (`rounding_draw` in [0,1)), so the mean
  /// delay stays the nominal one while only a bounded set of queues exists.
  std::chrono::milliseconds queue_delay(int retry, double jitter_draw, double rounding_draw) const;
};

/// The retry queue delays: round(1000 ms * 2^(k/4)), about 19 % apart, from
/// 100 ms to one day. 1000 ms (k = 0) is program-executor-js's retry queue.
/// Returns the rungs just below (or at) and just above `delay`.
std::pair<std::chrono::milliseconds, std::chrono::milliseconds> ladder_rungs(
    std::chrono::milliseconds delay);

/// The default policy and the overrides per job name.
class RetryPolicies {
 public:
  RetryPolicies() = default;
  static RetryPolicies from(const config::RetrySettings& settings);

  const RetryPolicy& for_job(std::string_view job) const;

 private:
  RetryPolicy defaults_;
  std::map<std::string, RetryPolicy, std::less<>> jobs_;
};

}  // namespace program_executor::executor
