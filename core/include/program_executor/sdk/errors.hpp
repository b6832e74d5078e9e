// Exceptions a job throws to tell the daemon how its failure must be handled.
#pragma once

#include <stdexcept>
#include <string>

#include "program_executor/sdk/abi.hpp"

namespace program_executor::sdk {

/// A temporary failure: the step is retried later (the program is not errored).
/// The message is stored in the program's error_message column.
class PROGRAM_EXECUTOR_EXPORT RetryableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A failure that ends the program quietly: errored_at and error_message are
/// set, but it is logged at info level, not as an error.
class PROGRAM_EXECUTOR_EXPORT IgnorableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by JobDataHandler::checkpoint() when the job has run longer than the
/// limit it gave: the step yields and is run again later, resuming from the
/// checkpointed job data. It is neither counted as a retry nor recorded as an
/// error. Jobs do not throw it themselves.
class PROGRAM_EXECUTOR_EXPORT ExecutionTimeExceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Any other exception fails the program: errored_at and error_message are set.

}  // namespace program_executor::sdk
