// The fairness rule's numbers and edges: the job runner, the step processor
// and the worker all decide by it, so its lines are pinned here.
#include <chrono>
#include <optional>

#include <catch2/catch.hpp>

#include "program_executor/executor/fairness_policy.hpp"

using program_executor::executor::FairnessPolicy;
using namespace std::chrono_literals;

TEST_CASE("the fairness policy's lines: 5 ms a step, 100 ms a batch, prefetch 1 meanwhile") {
  const FairnessPolicy fairness;
  CHECK(fairness.slow_step.count() == 5.0);
  CHECK(fairness.long_batch == 100ms);
  CHECK(FairnessPolicy::throttled_prefetch == 1);
}

TEST_CASE("a job is slow when it has not run yet or its recent runs averaged over 5 ms") {
  const FairnessPolicy fairness;
  CHECK(fairness.slow_job(std::nullopt));
  CHECK_FALSE(fairness.slow_job(0.1));
  CHECK_FALSE(fairness.slow_job(5.0));
  CHECK(fairness.slow_job(5.001));
}

TEST_CASE("after a batch slower than 5 ms a step, the next batch takes one step") {
  const FairnessPolicy fairness;
  CHECK(fairness.batch_limit(1ms, 8) == 8);
  CHECK(fairness.batch_limit(5ms, 8) == 8);
  CHECK(fairness.batch_limit(5ms + 1ns, 8) == 1);
}

TEST_CASE("a batch holds up the queue once it has run over 100 ms") {
  const FairnessPolicy fairness;
  CHECK_FALSE(fairness.holds_up_queue(100ms));
  CHECK(fairness.holds_up_queue(100ms + 1ns));
  FairnessPolicy patient;
  patient.long_batch = 1s;
  CHECK_FALSE(patient.holds_up_queue(500ms));
}
