#include "program_executor/executor/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace program_executor::executor {
namespace {

using std::chrono::milliseconds;

// Rung k of the ladder, k in [min_rung, max_rung].
constexpr int min_rung = -13;  // 105 ms
constexpr int max_rung = 66;   // 94 million ms > one day
milliseconds rung(int k) {
  return milliseconds(static_cast<long long>(std::llround(1000.0 * std::exp2(k / 4.0))));
}

}  // namespace

RetryPolicy RetryPolicy::from(const config::RetryPolicySettings& settings) {
  RetryPolicy policy;
  policy.backoff = settings.backoff;
  policy.delay = milliseconds(settings.delay_ms);
  policy.max_delay = milliseconds(std::max(settings.max_delay_ms, settings.delay_ms));
  policy.jitter_percent = settings.jitter_percent;
  policy.max_attempts = settings.max_attempts;
  return policy;
}

milliseconds RetryPolicy::nominal_delay(int retry) const {
  if (backoff == Backoff::fixed || retry <= 1) return delay;
  // Doubling, computed in floating point so a large retry count cannot overflow.
  const double grown = static_cast<double>(delay.count()) * std::exp2(std::min(retry - 1, 60));
  return milliseconds(static_cast<long long>(std::min(grown, static_cast<double>(max_delay.count()))));
}

std::pair<milliseconds, milliseconds> ladder_rungs(milliseconds delay) {
  if (delay <= rung(min_rung)) return {rung(min_rung), rung(min_rung)};
  if (delay >= rung(max_rung)) return {rung(max_rung), rung(max_rung)};
  int k = static_cast<int>(std::floor(4.0 * std::log2(static_cast<double>(delay.count()) / 1000.0)));
  // Floating point may land one rung off; settle on rung(k) <= delay < rung(k+1).
  while (k > min_rung && rung(k) > delay) --k;
  while (k < max_rung && rung(k + 1) <= delay) ++k;
  if (rung(k) == delay) return {delay, delay};
  return {rung(k), rung(k + 1)};
}

milliseconds RetryPolicy::queue_delay(int retry, double jitter_draw, double rounding_draw) const {
  double wanted = static_cast<double>(nominal_delay(retry).count());
  // jitter_percent 20 spreads the delay over [0.9, 1.1) of its nominal value.
  wanted *= 1.0 + (jitter_draw - 0.5) * jitter_percent / 100.0;
  const auto [low, high] = ladder_rungs(milliseconds(static_cast<long long>(std::llround(wanted))));
  if (low == high) return low;
  // Up with the probability that keeps the expected delay at `wanted`.
  const double up = (wanted - static_cast<double>(low.count())) /
                    static_cast<double>((high - low).count());
  return rounding_draw < up ? high : low;
}

RetryPolicies RetryPolicies::from(const config::RetrySettings& settings) {
  RetryPolicies policies;
  policies.defaults_ = RetryPolicy::from(settings.defaults);
  for (const auto& [job, policy] : settings.jobs) policies.jobs_.emplace(job, RetryPolicy::from(policy));
  return policies;
}

const RetryPolicy& RetryPolicies::for_job(std::string_view job) const {
  const auto it = jobs_.find(job);
  return it == jobs_.end() ? defaults_ : it->second;
}

}  // namespace program_executor::executor
