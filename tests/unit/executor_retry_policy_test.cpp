// Retry delays, limits and the retry queue ladder.
#include <map>

#include <catch2/catch.hpp>

#include "program_executor/executor/retry_policy.hpp"

using namespace program_executor;
using executor::RetryPolicy;
using std::chrono::milliseconds;

TEST_CASE("the default policy retries every second forever, as program-executor-js") {
  const RetryPolicy policy = RetryPolicy::from(config::RetryPolicySettings{});
  CHECK(policy.nominal_delay(1) == milliseconds(1000));
  CHECK(policy.nominal_delay(50) == milliseconds(1000));
  CHECK(policy.queue_delay(7, 0.3, 0.9) == milliseconds(1000));  // the original's retry queue
  CHECK_FALSE(policy.exhausted(1000000));
}

TEST_CASE("exponential backoff doubles up to the maximum") {
  config::RetryPolicySettings settings;
  settings.backoff = config::Backoff::exponential;
  settings.delay_ms = 500;
  settings.max_delay_ms = 5000;
  const RetryPolicy policy = RetryPolicy::from(settings);
  CHECK(policy.nominal_delay(1) == milliseconds(500));
  CHECK(policy.nominal_delay(2) == milliseconds(1000));
  CHECK(policy.nominal_delay(4) == milliseconds(4000));
  CHECK(policy.nominal_delay(5) == milliseconds(5000));
  CHECK(policy.nominal_delay(1000) == milliseconds(5000));  // no overflow
}

TEST_CASE("the attempt limit counts failures, this one included") {
  config::RetryPolicySettings settings;
  settings.max_attempts = 3;
  const RetryPolicy policy = RetryPolicy::from(settings);
  CHECK_FALSE(policy.exhausted(1));
  CHECK_FALSE(policy.exhausted(2));
  CHECK(policy.exhausted(3));
}

TEST_CASE("ladder rungs are about 19 % apart and include 1000 ms exactly") {
  CHECK(executor::ladder_rungs(milliseconds(1000)) == std::pair{milliseconds(1000), milliseconds(1000)});
  const auto [low, high] = executor::ladder_rungs(milliseconds(1500));
  CHECK(low == milliseconds(1414));   // 1000 * 2^(2/4)
  CHECK(high == milliseconds(1682));  // 1000 * 2^(3/4)
  for (long long ms : {150LL, 999LL, 1001LL, 7777LL, 123456LL, 3600000LL}) {
    INFO(ms);
    const auto [lo, hi] = executor::ladder_rungs(milliseconds(ms));
    CHECK(lo <= milliseconds(ms));
    CHECK(hi >= milliseconds(ms));
    CHECK(static_cast<double>(hi.count()) / static_cast<double>(lo.count()) < 1.2);
  }
}

TEST_CASE("jitter and stochastic rounding keep the mean delay and spread the retries") {
  config::RetryPolicySettings settings;
  settings.delay_ms = 3000;
  settings.jitter_percent = 20;
  const RetryPolicy policy = RetryPolicy::from(settings);
  std::map<long long, int> queues;
  double total = 0;
  constexpr int draws = 1000;
  for (int i = 0; i < draws; ++i) {
    const double jitter = (i % 100) / 100.0;
    const double rounding = ((i * 37) % 100) / 100.0;
    const auto delay = policy.queue_delay(1, jitter, rounding);
    CHECK(delay >= milliseconds(2378));  // 2700 at least, rounded down a rung at most
    CHECK(delay <= milliseconds(3364));  // 3300 at most, rounded up a rung at most
    ++queues[delay.count()];
    total += static_cast<double>(delay.count());
  }
  CHECK(queues.size() >= 2);  // not every retry lands in one queue
  CHECK(queues.size() <= 4);  // but the number of queues stays small
  CHECK(total / draws == Approx(3000).epsilon(0.03));
}

TEST_CASE("per-job policies override the default, other jobs keep it") {
  config::RetrySettings settings;
  settings.defaults.max_attempts = 5;
  config::RetryPolicySettings upload = settings.defaults;
  upload.max_attempts = 10;
  settings.jobs.emplace("export.upload", upload);
  const auto policies = executor::RetryPolicies::from(settings);
  CHECK(policies.for_job("export.upload").max_attempts == 10);
  CHECK(policies.for_job("export.fetch").max_attempts == 5);
}
