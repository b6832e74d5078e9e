// Running a job's code, and what it came to, before any bookkeeping: the part
// of a step that runs in the worker process, or alone in an isolated one
// (step_isolation.hpp).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "program_executor/executor/step_message.hpp"
#include "program_executor/plugin/job_registry.hpp"
#include "program_executor/sdk/job.hpp"

namespace program_executor::executor {

/// How a job's execution ended.
struct JobResult {
  enum class Kind {
    succeeded,       ///< returned: the step is to be committed
    yielded,         ///< a checkpoint past its time limit: resumed later, not counted
    retryable,       ///< sdk::RetryableError (message)
    ignorable,       ///< sdk::IgnorableError: ends the program, expected
    failed,          ///< any other exception: ends the program (message)
    cancelled,       ///< the program was cancelled while the job ran (store::ProgramEnded)
    infrastructure,  ///< the bookkeeping failed, not the job (store::StoreError): retried
    crashed,         ///< the isolated process running the job died (message: how)
  };
  Kind kind = Kind::succeeded;
  std::string message;
  /// The C++ type of the exception the job ended with (demangled); empty
  /// when it ended without one. Kept in the attempt history.
  std::string exception_type = {};

  nlohmann::json to_json() const;
  /// Throws std::invalid_argument for anything to_json() did not write.
  static JobResult from_json(const nlohmann::json& json);
};

std::string_view to_string(JobResult::Kind kind);

/// Creates `message`'s current job from `jobs` and runs it. Never throws:
/// every way a job can end, its factory's failures included, is a JobResult
/// (never `crashed`: a crash ends the process instead).
JobResult execute_job(const plugin::JobRegistry& jobs, const StepMessage& message,
                      sdk::JobDataHandler& data, sdk::JobContext& context);

}  // namespace program_executor::executor
