// The jobs whose whole behaviour is one outcome: sleep, nothing, log, fail, ignore.
#include <chrono>
#include <stdexcept>
#include <thread>

#include "demo_jobs.hpp"
#include "parameters.hpp"

namespace program_executor::demo {

SleepJob::SleepJob(const nlohmann::json&) {}

void SleepJob::execute(const nlohmann::json&, sdk::JobDataHandler& job_data,
                       sdk::JobContext& context) {
  const nlohmann::json data = job_data.get();
  const std::chrono::milliseconds duration{count_parameter(data, "demo.sleep", "ms", 0)};
  // Most jobs ignore shutdown and are given the grace period to finish;
  // `interruptible` shows the cooperative alternative.
  const auto interruptible = data.find("interruptible");
  if (interruptible == data.end() || !interruptible->is_boolean() || !interruptible->get<bool>()) {
    std::this_thread::sleep_for(duration);
    return;
  }
  if (!sleep_unless_stopped(duration, context)) {
    // Retryable, not a failure: the sleep did nothing wrong, the daemon left.
    throw sdk::RetryableError("demo.sleep interrupted by shutdown");
  }
}

NoopJob::NoopJob(const nlohmann::json&) {}

void NoopJob::execute(const nlohmann::json&, sdk::JobDataHandler&, sdk::JobContext&) {}

LogJob::LogJob(const nlohmann::json& program_data) : program_data_(program_data) {}

void LogJob::execute(const nlohmann::json&, sdk::JobDataHandler&, sdk::JobContext& context) {
  context.log(sdk::LogLevel::info, "program data: " + program_data_.dump());
}

FailJob::FailJob(const nlohmann::json&) {}

void FailJob::execute(const nlohmann::json&, sdk::JobDataHandler& job_data, sdk::JobContext&) {
  throw std::runtime_error(
      string_parameter(job_data.get(), "demo.fail", "message", "demo.fail failed"));
}

IgnorableJob::IgnorableJob(const nlohmann::json&) {}

void IgnorableJob::execute(const nlohmann::json&, sdk::JobDataHandler& job_data,
                           sdk::JobContext&) {
  throw sdk::IgnorableError(
      string_parameter(job_data.get(), "demo.ignorable", "message", "demo.ignorable ignored"));
}

}  // namespace program_executor::demo
