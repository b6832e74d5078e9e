#include "program_executor/executor/step_job_context.hpp"

#include "program_executor/log/logger.hpp"

namespace program_executor::executor {

StepJobContext::StepJobContext(ProgramCreator& creator, std::string run_id, std::string job_name,
                               int step, int attempt, const std::atomic<bool>& stop_requested)
    : creator_(creator),
      run_id_(std::move(run_id)),
      job_name_(std::move(job_name)),
      step_(step),
      attempt_(attempt),
      stop_requested_(stop_requested) {}

std::string StepJobContext::idempotency_key() const {
  return run_id_ + ":" + std::to_string(step_);
}

std::string StepJobContext::create_program(const sdk::ProgramRequest& request) {
  std::string created = creator_.create(request);
  log::event(log::Level::info, "job.program_created", "",
             {{"run_id", run_id_}, {"job", job_name_}, {"step", step_}, {"created_run_id", created}});
  return created;
}

void StepJobContext::log(sdk::LogLevel level, std::string_view message) {
  log::Level mapped = log::Level::info;
  switch (level) {
    case sdk::LogLevel::debug: mapped = log::Level::debug; break;
    case sdk::LogLevel::info: mapped = log::Level::info; break;
    case sdk::LogLevel::warn: mapped = log::Level::warn; break;
    case sdk::LogLevel::error: mapped = log::Level::error; break;
  }
  log::event(mapped, "job.log", message, {{"run_id", run_id_}, {"job", job_name_}, {"step", step_}});
}

}  // namespace program_executor::executor
