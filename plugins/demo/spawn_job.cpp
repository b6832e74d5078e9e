#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo_jobs.hpp"
#include "parameters.hpp"

namespace program_executor::demo {

SpawnJob::SpawnJob(const nlohmann::json&) {}

void SpawnJob::execute(const nlohmann::json&, sdk::JobDataHandler& job_data,
                       sdk::JobContext& context) {
  const nlohmann::json data = job_data.get();
  // A step runs at least once: when an earlier execution already spawned the
  // program and saved its id, spawning again would start a second copy.
  // (A crash between create_program and merge can still spawn twice.)
  if (data.contains("spawned_run_id")) return;

  const auto jobs = data.find("jobs");
  if (jobs == data.end() || !jobs->is_array() || jobs->empty() ||
      !std::all_of(jobs->begin(), jobs->end(), [](const auto& j) { return j.is_string(); })) {
    throw std::runtime_error("demo.spawn: job data 'jobs' must be a non-empty array of job names");
  }
  sdk::ProgramRequest request;
  request.jobs = jobs->get<std::vector<std::string>>();
  request.program_data = object_parameter(data, "demo.spawn", "program_data");
  request.job_data = object_parameter(data, "demo.spawn", "job_data");

  const std::string run_id = context.create_program(request);
  job_data.merge({{"spawned_run_id", run_id}});
}

}  // namespace program_executor::demo
