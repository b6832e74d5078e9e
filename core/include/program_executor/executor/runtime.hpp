// Everything `program-executor run` starts: plugins, database, workers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "program_executor/config/config.hpp"
#include "program_executor/plugin/job_registry.hpp"
#include "program_executor/store/database.hpp"

namespace program_executor::executor {

class Runtime {
 public:
  /// Loads every plugin, opens the database and creates the table if missing,
  /// and declares the queues once, so a bad plugin, an unreachable service or
  /// a queue declared with other arguments fails here with a precise message
  /// (PluginLoadError, StoreError, AmqpError) before any work is taken.
  explicit Runtime(const config::Config& config);
  /// Stops the workers if still running and joins them.
  ~Runtime();

  /// Starts `workers` worker threads.
  void start();
  /// Asks every worker to stop taking messages and finish its current step.
  void request_stop();
  /// Waits until every worker has returned or `deadline` passes; true if all returned.
  bool wait_stopped(std::chrono::steady_clock::time_point deadline);

  const plugin::JobRegistry& jobs() const noexcept { return jobs_; }

 private:
  config::Config config_;
  plugin::JobRegistry jobs_;
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<store::ProgramStore> store_;
  std::atomic<bool> stop_requested_{false};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int running_ = 0;
};

}  // namespace program_executor::executor
