// A thread that runs one step at a time for a worker.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "program_executor/executor/step_processor.hpp"

namespace program_executor::executor {

/// Runs `process(body)` on its own thread, one body at a time, so the caller
/// can keep its broker connection alive while a job runs.
class JobRunner {
 public:
  using Process = std::function<StepOutcome(const std::string& body)>;

  explicit JobRunner(Process process);
  /// Waits for the step in progress, then stops the thread.
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  /// Starts processing `body`; the runner must be idle.
  void submit(std::string body);
  /// The outcome once the step has finished (the runner is idle again).
  std::optional<StepOutcome> poll();
  /// Blocks until the step in progress finishes and returns its outcome.
  StepOutcome wait();
  bool busy() const;

 private:
  void loop();

  Process process_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<std::string> input_;
  std::optional<StepOutcome> output_;
  bool busy_ = false;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace program_executor::executor
