// The composition root of the service: everything `program-executor run`
// starts (metrics, plugins, database, broker, workers, the recovery sweeper)
// is created and wired here, and nowhere else.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "program_executor/config/config.hpp"
#include "program_executor/executor/job_library.hpp"
#include "program_executor/executor/loaded_jobs_record.hpp"
#include "program_executor/executor/startup_wait.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/store/database.hpp"

namespace program_executor::executor {

class CompositionRoot {
 public:
  /// Starts the metrics exporter and loads every plugin, so a taken port or a
  /// bad plugin fails here with a precise message (PluginLoadError) before
  /// any server is waited for.
  explicit CompositionRoot(const config::Config& config);

  /// Opens the database and makes its table usable (Database::ensure_schema),
  /// before connect_broker(). A server that does not answer (not up yet,
  /// restarting) is retried with backoff, `pause` waiting between attempts
  /// (retry_while_unreachable, logged as database.waiting); false when `pause`
  /// asked to stop first. One that answers and refuses (password, TLS, a
  /// missing database, a schema to migrate) throws StoreError.
  bool open_database(const StartupPause& pause);

  /// Connects to the broker and declares the queues once, after
  /// open_database() and before start(). A broker that cannot be reached (not
  /// up yet) is retried as the database is (amqp.waiting); false when `pause`
  /// asked to stop first. A broker that answers and refuses (login, TLS, a
  /// queue declared with other arguments) throws AmqpError.
  bool connect_broker(const StartupPause& pause);
  /// Stops the workers if still running and joins them.
  ~CompositionRoot();

  /// Starts `workers` worker threads.
  void start();
  /// Asks every worker to stop taking messages and finish its current step.
  void request_stop();
  /// Waits until every worker has returned or `deadline` passes; true if all returned.
  bool wait_stopped(std::chrono::steady_clock::time_point deadline);

  /// True while every running worker's loop turned within `max_age` (the
  /// systemd watchdog is pinged only then).
  bool healthy(std::chrono::milliseconds max_age) const;

  /// Applies a new configuration without a restart: rescans the plugin
  /// directory (new and replaced .so files serve the next steps; running
  /// steps keep their libraries) and takes the new log settings. Keys that
  /// need a restart (broker, queue, database, workers) are reported by a
  /// warning and keep their running values. Throws, changing nothing, when
  /// the plugins cannot be loaded.
  void reload(const config::Config& config);

  std::shared_ptr<const plugin::JobRegistry> jobs() const { return jobs_->current(); }

 private:
  /// The command that runs one step in an isolated process; empty if unknown.
  std::vector<std::string> isolation_command() const;

  config::Config config_;
  std::unique_ptr<JobLibrary> jobs_;
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<store::ProgramStore> store_;
  /// The Prometheus exporter when metrics.listen is set, else a Metrics counting nothing.
  std::unique_ptr<metrics::Metrics> metrics_;
  std::atomic<bool> stop_requested_{false};
  std::vector<std::thread> threads_;
  std::thread sweeper_;  ///< runs RecoverySweeper every recovery.sweep_interval
  /// Per worker: last loop turn (steady clock ms), or -1 once it has returned.
  std::unique_ptr<std::atomic<std::int64_t>[]> beats_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int running_ = 0;

  void sweep_until_stopped();

  // What `program-executor jobs` reads: the jobs this process has loaded,
  // recorded in $STATE_DIRECTORY (see loaded_jobs_record.hpp).
  std::filesystem::path state_directory_;  ///< empty: not recorded (no StateDirectory=)
  LoadedJobsRecord loaded_;
  void record_loaded_jobs(bool reloaded);
};

}  // namespace program_executor::executor
