#include <string>

#include "demo_jobs.hpp"
#include "parameters.hpp"

namespace program_executor::demo {

FlakyJob::FlakyJob(const nlohmann::json&) {}

void FlakyJob::execute(const nlohmann::json&, sdk::JobDataHandler& job_data, sdk::JobContext&) {
  const nlohmann::json data = job_data.get();
  const std::int64_t failures = count_parameter(data, "demo.flaky", "failures", 1);
  const std::int64_t failed = count_parameter(data, "demo.flaky", "failed", 0);
  if (failed >= failures) return;
  // The count lives in job data, not in this object: every retry gets a new
  // job object (possibly in another daemon), and only job data survives.
  // It is saved before throwing, so the retry sees it.
  job_data.merge({{"failed", failed + 1}});
  throw sdk::RetryableError("flaky failure " + std::to_string(failed + 1) + " of " +
                            std::to_string(failures));
}

}  // namespace program_executor::demo
