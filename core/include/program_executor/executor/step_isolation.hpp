// Running one step alone in a process of its own, so that a crash is the
// step's own doing (docs/guarantees.md, "Crashes").
//
// When a worker process dies, every step it held dies with it, and nothing
// tells which of them killed it. Each such step gets a crash on record
// (step_crash_count), and from then on runs isolated: in a child process that
// runs that one job and nothing else. If the child dies, the crash is
// attributed to that step alone (step_isolated_crash_count), and only those
// crashes stop a program (recovery.max_crashes). A step's isolation ends when
// it moves on. The worker process survives its isolated children.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "program_executor/executor/job_execution.hpp"

namespace program_executor::executor {

/// What an isolated process needs to run one claimed step.
struct IsolatedStep {
  std::string body;  ///< the step message
  int step = 0;
  int attempt = 1;
  std::int64_t token = 0;  ///< the claim: job data writes are fenced by it

  nlohmann::json to_json() const;
  /// Throws std::invalid_argument for anything to_json() did not write.
  static IsolatedStep from_json(const nlohmann::json& json);
};

/// Runs a step's job somewhere its crash cannot take others with it.
class StepIsolation {
 public:
  virtual ~StepIsolation() = default;
  /// The job's result, or JobResult::Kind::crashed when the process running
  /// it died. `stop` is the daemon's stop request, passed on to the job.
  virtual JobResult run(const IsolatedStep& step, const std::atomic<bool>& stop) = 0;
};

/// Runs each step in a child process: `command` (an executable and its
/// arguments, e.g. {"/proc/self/exe", "run-step", "-c", CONFIG}) reads the
/// IsolatedStep as JSON on its standard input and writes the JobResult as
/// JSON to file descriptor 3 (run_isolated_step). The child dies with the
/// thread that started it (PR_SET_PDEATHSIG), and gets SIGTERM when `stop`
/// is set. Ending without a result (a signal, exit(), abort()) is a crash.
class ProcessIsolation final : public StepIsolation {
 public:
  explicit ProcessIsolation(std::vector<std::string> command);
  JobResult run(const IsolatedStep& step, const std::atomic<bool>& stop) override;

 private:
  std::vector<std::string> command_;
};

}  // namespace program_executor::executor
