// The interface a job implements, and what the daemon hands it while it runs.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "program_executor/sdk/abi.hpp"

namespace program_executor::sdk {

/// The job data of one job in one program: the entry `job_data[<job name>]` of
/// the program's row. Every call reads and writes the database at once, so
/// progress saved here survives a crash or a retry of the step.
class JobDataHandler {
 public:
  virtual ~JobDataHandler() = default;
  /// This job's data, or an empty object when it has none.
  virtual nlohmann::json get() = 0;
  /// Replaces this job's data with `data` (an object).
  virtual void set(const nlohmann::json& data) = 0;
  /// Shallow-merges the keys of `partial` (an object) into this job's data.
  virtual void merge(const nlohmann::json& partial) = 0;
  /// Merges `partial`, then, if the job has been running for longer than
  /// `max_execution_time` (zero: no limit), throws ExecutionTimeExceeded so the
  /// step yields and is resumed later. Let that exception propagate.
  virtual void checkpoint(const nlohmann::json& partial,
                          std::chrono::milliseconds max_execution_time) = 0;
};

/// A program to create: the jobs to run in order, data every job sees, and the
/// initial job data keyed by job name.
struct ProgramRequest {
  std::vector<std::string> jobs;
  nlohmann::json program_data = nlohmann::json::object();
  nlohmann::json job_data = nlohmann::json::object();
};

/// Severity of a message a job logs through its context.
enum class LogLevel { debug, info, warn, error };

/// What the daemon offers a running job besides its data.
class JobContext {
 public:
  virtual ~JobContext() = default;
  /// The run id of the program this step belongs to.
  virtual const std::string& run_id() const = 0;
  /// The name this job was registered under.
  virtual const std::string& job_name() const = 0;
  /// Index of this job in the program's job list (0-based).
  virtual int step() const = 0;
  /// 1 on the first execution of this step, +1 on every retry.
  virtual int attempt() const = 0;
  /// A key that is the same on every execution of this step of this program and
  /// differs for any other step: steps run at least once, so pass it to
  /// external systems to make side effects idempotent.
  virtual std::string idempotency_key() const = 0;
  /// Creates a new program (a row, then its first message) and returns its run id.
  virtual std::string create_program(const ProgramRequest& request) = 0;
  /// Logs a message with the run id, job and step attached.
  virtual void log(LogLevel level, std::string_view message) = 0;
  /// True once the daemon is shutting down: a long job should checkpoint and
  /// return (or throw RetryableError) so the step resumes elsewhere.
  virtual bool stop_requested() const = 0;
};

/// A job. One object is created per step execution, from the program data.
class Job {
 public:
  virtual ~Job() = default;
  /// Runs the job. `message` is the whole step message (`jobs`, `programData`,
  /// `runId` and any other keys). Return to succeed; throw RetryableError to be
  /// retried, IgnorableError to end the program quietly, anything else to fail it.
  virtual void execute(const nlohmann::json& message, JobDataHandler& job_data,
                       JobContext& context) = 0;
};

}  // namespace program_executor::sdk
