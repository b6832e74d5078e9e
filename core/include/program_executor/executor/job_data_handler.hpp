// The SDK's JobDataHandler on the bookkeeping table.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "program_executor/sdk/job.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {

class StoreJobDataHandler : public sdk::JobDataHandler {
 public:
  /// `started` is when the step began: checkpoint() measures from it. Writes
  /// are fenced by `token`, the step's claim: a worker that lost its claim
  /// cannot change the job data any more.
  StoreJobDataHandler(store::ProgramStore& store, std::string run_id, std::string job_name,
                      std::int64_t token, std::chrono::steady_clock::time_point started);

  nlohmann::json get() override;
  void set(const nlohmann::json& data) override;
  void merge(const nlohmann::json& partial) override;
  void checkpoint(const nlohmann::json& partial,
                  std::chrono::milliseconds max_execution_time) override;

 private:
  store::ProgramStore& store_;
  std::string run_id_;
  std::string job_name_;
  std::int64_t token_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace program_executor::executor
