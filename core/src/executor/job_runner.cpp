#include "program_executor/executor/job_runner.hpp"

#include <stdexcept>

namespace program_executor::executor {

JobRunner::JobRunner(Process process) : process_(std::move(process)) {
  thread_ = std::thread([this] { loop(); });
}

JobRunner::~JobRunner() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void JobRunner::submit(std::string body) {
  {
    std::lock_guard lock(mutex_);
    if (busy_) throw std::logic_error("JobRunner::submit while a step is running");
    busy_ = true;
    output_.reset();
    input_ = std::move(body);
  }
  changed_.notify_all();
}

std::optional<StepOutcome> JobRunner::poll() {
  std::lock_guard lock(mutex_);
  if (busy_ || !output_) return std::nullopt;
  std::optional<StepOutcome> result = std::move(output_);
  output_.reset();
  return result;
}

StepOutcome JobRunner::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return !busy_; });
  StepOutcome result = output_.value_or(StepOutcome{Disposition::retry, "step.not_run"});
  output_.reset();
  return result;
}

bool JobRunner::busy() const {
  std::lock_guard lock(mutex_);
  return busy_;
}

void JobRunner::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return quit_ || input_.has_value(); });
    if (input_) {
      std::string body = std::move(*input_);
      input_.reset();
      lock.unlock();
      // StepProcessor::process never throws; this guards a future Process that might.
      StepOutcome result{Disposition::retry, "step.runner_error"};
      try {
        result = process_(body);
      } catch (...) {
      }
      lock.lock();
      output_ = std::move(result);
      busy_ = false;
      changed_.notify_all();
      continue;
    }
    if (quit_) return;
  }
}

}  // namespace program_executor::executor
