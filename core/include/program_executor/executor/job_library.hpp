// The job registry in force, swapped as a whole when the daemon reloads.
#pragma once

#include <memory>
#include <mutex>

#include "program_executor/plugin/job_registry.hpp"

namespace program_executor::executor {

/// Holds the current JobRegistry. A step takes a snapshot at its start and
/// keeps it to its end, so a reload affects the next steps only; the job
/// objects of running steps keep their plugins loaded (JobRegistry::create).
class JobLibrary {
 public:
  explicit JobLibrary(plugin::JobRegistry registry)
      : current_(std::make_shared<const plugin::JobRegistry>(std::move(registry))) {}

  std::shared_ptr<const plugin::JobRegistry> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  void replace(plugin::JobRegistry registry) {
    auto next = std::make_shared<const plugin::JobRegistry>(std::move(registry));
    std::lock_guard lock(mutex_);
    current_.swap(next);
    // The old registry is released outside the lock, when `next` goes.
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const plugin::JobRegistry> current_;
};

}  // namespace program_executor::executor
