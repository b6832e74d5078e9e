// The body of one step message, in program-executor-js's wire format:
// {"jobs": [current job first, ...rest], "programData": {...}, "runId": "..."}.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace program_executor::executor {

/// A body that can never run; what() is the reason, recorded when it is parked.
class InvalidMessage : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Limits checked before and while parsing, against hostile or broken producers.
struct MessageLimits {
  std::size_t max_bytes = 1024 * 1024;
  int max_depth = 64;
};

struct StepMessage {
  nlohmann::json body;  ///< the whole object; unknown keys are carried to the next step
  std::string run_id;
  std::vector<std::string> jobs;  ///< remaining jobs, jobs[0] runs now (never empty)

  const std::string& current_job() const { return jobs.front(); }
  /// The program data (an empty object when absent).
  const nlohmann::json& program_data() const;
};

/// Parses and validates a body; throws InvalidMessage saying what is wrong.
StepMessage parse_step_message(std::string_view body, const MessageLimits& limits = {});

/// The body of the next step: the same object with `jobs` minus its head.
std::string next_step_body(const StepMessage& message);

/// The body of a program's first step.
std::string first_step_body(const std::string& run_id, const std::vector<std::string>& jobs,
                            const nlohmann::json& program_data);

}  // namespace program_executor::executor
