#include "program_executor/executor/fairness_policy.hpp"

namespace program_executor::executor {

bool FairnessPolicy::slow_job(std::optional<double> recent_ms) const {
  return !recent_ms || *recent_ms > slow_step.count();
}

std::size_t FairnessPolicy::batch_limit(std::chrono::steady_clock::duration per_step,
                                        std::size_t max_batch) const {
  return per_step > slow_step ? 1 : max_batch;
}

bool FairnessPolicy::holds_up_queue(std::chrono::steady_clock::duration running_for) const {
  return running_for > long_batch;
}

}  // namespace program_executor::executor
