// The jobs of the demo plugin. Each reads its parameters from its own job
// data (job_data.get()), so one program can run the same job with different
// settings per program, and a test or operator can see them in the table.
#pragma once

#include <nlohmann/json.hpp>
#include <program_executor/sdk/sdk.hpp>

namespace program_executor::demo {

/// demo.sleep: sleeps `ms` milliseconds (default 0). With `interruptible: true`
/// it throws RetryableError if the daemon starts shutting down meanwhile, so
/// the step runs again elsewhere; otherwise it sleeps on through a shutdown.
class SleepJob final : public sdk::Job {
 public:
  explicit SleepJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

/// demo.noop: does nothing (no job data, no log): a step that costs only the
/// daemon's own work, for tests/bench.
class NoopJob final : public sdk::Job {
 public:
  explicit NoopJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

/// demo.log: logs the program data through the context (info level).
class LogJob final : public sdk::Job {
 public:
  explicit LogJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;

 private:
  nlohmann::json program_data_;
};

/// demo.count: adds 1 to `runs` in its job data. A program of N demo.count
/// steps ends with runs == N exactly when every step ran once.
class CountJob final : public sdk::Job {
 public:
  explicit CountJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

/// demo.fail: throws std::runtime_error with `message` (default
/// "demo.fail failed"), which fails the program.
class FailJob final : public sdk::Job {
 public:
  explicit FailJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

/// demo.flaky: fails with RetryableError `failures` times (default 1), counting
/// in its job data under `failed`, then succeeds.
class FlakyJob final : public sdk::Job {
 public:
  explicit FlakyJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

/// demo.ignorable: throws IgnorableError with `message` (default
/// "demo.ignorable ignored"), which ends the program quietly.
class IgnorableJob final : public sdk::Job {
 public:
  explicit IgnorableJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

/// demo.paginate: works through `pages` pages (default 3) of `page_ms`
/// milliseconds each (default 100), checkpointing `page` after each one with a
/// limit of `max_execution_ms` (default 0: none). Over the limit the step
/// yields, and the next execution resumes at the stored page.
class PaginateJob final : public sdk::Job {
 public:
  explicit PaginateJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

/// demo.spawn: creates a program from `jobs` (required), `program_data` and
/// `job_data`, and stores its run id as `spawned_run_id`.
class SpawnJob final : public sdk::Job {
 public:
  explicit SpawnJob(const nlohmann::json& program_data);
  void execute(const nlohmann::json& message, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override;
};

}  // namespace program_executor::demo
