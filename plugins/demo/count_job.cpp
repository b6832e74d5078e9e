#include "demo_jobs.hpp"

namespace program_executor::demo {

CountJob::CountJob(const nlohmann::json&) {}

void CountJob::execute(const nlohmann::json&, sdk::JobDataHandler& job_data, sdk::JobContext&) {
  const nlohmann::json data = job_data.get();
  job_data.merge({{"runs", data.value("runs", 0) + 1}});
}

}  // namespace program_executor::demo
