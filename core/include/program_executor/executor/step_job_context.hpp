// The SDK's JobContext for one step execution.
#pragma once

#include <atomic>
#include <string>

#include "program_executor/executor/program_creator.hpp"
#include "program_executor/sdk/job.hpp"

namespace program_executor::executor {

class StepJobContext : public sdk::JobContext {
 public:
  StepJobContext(ProgramCreator& creator, std::string run_id, std::string job_name, int step,
                 int attempt, const std::atomic<bool>& stop_requested);

  const std::string& run_id() const override { return run_id_; }
  const std::string& job_name() const override { return job_name_; }
  int step() const override { return step_; }
  int attempt() const override { return attempt_; }
  std::string idempotency_key() const override;
  std::string create_program(const sdk::ProgramRequest& request) override;
  void log(sdk::LogLevel level, std::string_view message) override;
  bool stop_requested() const override { return stop_requested_.load(); }

 private:
  ProgramCreator& creator_;
  std::string run_id_;
  std::string job_name_;
  int step_;
  int attempt_;
  const std::atomic<bool>& stop_requested_;
};

}  // namespace program_executor::executor
