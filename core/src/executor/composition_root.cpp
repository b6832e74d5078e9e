#include "program_executor/executor/composition_root.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstdlib>
#include <string>
#include <vector>

#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/amqp/amqp_error.hpp"
#include "program_executor/executor/clock.hpp"
#include "program_executor/executor/recovery_sweeper.hpp"
#include "program_executor/executor/throughput_recorder.hpp"
#include "program_executor/executor/worker.hpp"
#include "program_executor/executor/worker_identity.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/metrics/prometheus_metrics.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/store/database_unreachable.hpp"
#include "program_executor/store/throughput_store.hpp"

namespace program_executor::executor {
namespace {

// The keys whose new value only a restart applies.
std::vector<std::string> restart_only_changes(const config::Config& running,
                                              const config::Config& next) {
  std::vector<std::string> changed;
  auto check = [&](bool differs, const char* key) {
    if (differs) changed.emplace_back(key);
  };
  check(running.amqp.url != next.amqp.url, "amqp.url");
  check(running.amqp.urls != next.amqp.urls, "amqp.urls");
  check(running.amqp.queue != next.amqp.queue, "amqp.queue");
  check(running.amqp.durable != next.amqp.durable, "amqp.durable");
  check(running.amqp.prefetch != next.amqp.prefetch, "amqp.prefetch");
  check(running.amqp.heartbeat_seconds != next.amqp.heartbeat_seconds, "amqp.heartbeat_seconds");
  check(running.database.backend != next.database.backend, "database.backend");
  check(running.database.connection != next.database.connection, "database.connection");
  check(running.database.table != next.database.table, "database.table");
  check(running.workers != next.workers, "workers");
  check(running.metrics.listen != next.metrics.listen, "metrics.listen");
  return changed;
}

// Moves the steps counted since the last call into the steps-per-minute
// table and, when `prune` is set, deletes its rows older than 48 hours.
// Failures are logged, never thrown: the sweeper goes on.
void record_throughput(ThroughputRecorder& recorder, store::ThroughputStore& throughput,
                       const std::string& owner, bool prune) {
  recorder.flush(throughput, owner);
  if (!prune) return;
  try {
    throughput.prune(std::chrono::hours(48));
  } catch (const std::exception& e) {
    log::event(log::Level::warn, "throughput.prune_failed", e.what());
  }
}

}  // namespace

CompositionRoot::CompositionRoot(const config::Config& config) : config_(config) {
  // First, so a taken port fails the start before anything else is touched.
  if (config_.metrics.listen.empty()) {
    metrics_ = std::make_unique<metrics::Metrics>();
    log::event(log::Level::info, "metrics.disabled", "metrics.listen is empty");
  } else {
    metrics_ = metrics::make_prometheus_metrics(config_.metrics.listen);
    log::event(log::Level::info, "metrics.listening", "",
               {{"url", "http://" + config_.metrics.listen + "/metrics"}});
  }
  // Also counts the steps executed, for the steps-per-minute table (sweeper thread).
  metrics_ = std::make_unique<ThroughputRecorder>(std::move(metrics_));
  jobs_ = std::make_unique<JobLibrary>(plugin::load_directory(config_.plugins.directory));
  log::event(log::Level::info, "plugins.loaded", "",
             {{"directory", config_.plugins.directory},
              {"jobs", static_cast<long long>(jobs_->current()->size())}});
}

bool CompositionRoot::open_database(const StartupPause& pause) {
  // Per worker one session for its step and one for its claim renewals (or a
  // job's own calls), plus one for the recovery sweeper. On SQLite one
  // session for the process: its file takes one write at a time whatever
  // the sessions, and a session discards its whole page cache when another
  // has written since its last transaction, so several sessions read every
  // page again from the file at each step. With one, the threads wait their
  // turn on the pool instead of in SQLite's busy handler, which sleeps a
  // millisecond and more (docs/databases.md, "Connections, pools").
  const std::size_t sessions = config_.database.backend == config::DatabaseBackend::sqlite3
                                   ? 1
                                   : static_cast<std::size_t>(config_.workers) * 2 + 1;
  const int attempts = retry_while_unreachable<store::DatabaseUnreachableError>(
      {"database.waiting", "the database"},
      [&] { database_ = std::make_unique<store::Database>(config_.database, sessions); },
      StartupBackoff{}, pause);
  if (attempts == 0) return false;
  database_->on_reconnect([metrics = metrics_.get()] { metrics->database_reconnected(); });
  database_->ensure_schema();
  store_ = database_->program_store(config_.history.enabled);
  log::event(log::Level::info, "database.ready", "",
             {{"backend", std::string(to_string(config_.database.backend))}, {"table", config_.database.table},
              {"attempts", attempts}});
  return true;
}

bool CompositionRoot::connect_broker(const StartupPause& pause) {
  // With several nodes, the first that answers declares the queues (a
  // cluster shares them); waiting starts only when none answers.
  auto nodes = amqp::BrokerNodes::from(config_.amqp, config_.amqp.heartbeat_seconds)
                   .shuffled(amqp::node_order_seed(-1));
  const int attempts = retry_while_unreachable<amqp::BrokerUnreachableError>(
      {"amqp.waiting", "the broker"},
      [&] {
        nodes.connect("program-executor startup")->declare(amqp::QueueTopology::from(config_.amqp));
      },
      StartupBackoff{}, pause);
  if (attempts == 0) return false;
  log::event(log::Level::info, "amqp.ready", "",
             {{"broker", nodes.current().describe()},
              {"nodes", nodes.size()},
              {"queue", config_.amqp.queue},
              {"durable", config_.amqp.durable},
              {"attempts", attempts}});
  return true;
}

CompositionRoot::~CompositionRoot() {
  if (!state_directory_.empty()) remove_loaded_jobs(state_directory_, loaded_.pid);
  request_stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  if (sweeper_.joinable()) sweeper_.join();
}

void CompositionRoot::sweep_until_stopped() {
  amqp::ReconnectingPublisher publisher(
      amqp::BrokerNodes::from(config_.amqp, 0).shuffled(amqp::node_order_seed(-1)),
      "program-executor recovery");
  store::RecoveryWindow window(config_.recovery.stale_after);
  if (config_.recovery.unclaimed_after.count() > 0) window.unclaimed_after = config_.recovery.unclaimed_after;
  window.max_age = config_.recovery.max_age;
  RecoverySweeper sweeper(*store_, publisher,
                          SweeperSettings{config_.amqp.queue, config_.amqp.durable, window, 200,
                                          config_.history.retention, 1000},
                          *metrics_);
  // The attempt history: a bounded batch every loop tick (100 ms) while a
  // backlog lasts, then a look once an hour (HistoryPruneCadence).
  HistoryPruneCadence history_cadence(std::chrono::steady_clock::now());
  // The steps per minute: recorded every sweep interval (at most 10 s apart),
  // rows older than 48 hours pruned once an hour.
  auto* recorder = dynamic_cast<ThroughputRecorder*>(metrics_.get());
  store::ThroughputStore throughput(*database_);
  const std::string owner = process_identity();
  const auto record_every = std::min(config_.recovery.sweep_interval, std::chrono::seconds(10));
  auto next_record = std::chrono::steady_clock::now() + record_every;
  auto next_prune = std::chrono::steady_clock::now();
  // Spread the daemons' sweeps apart; each pass is cheap when nothing is overdue.
  auto next = std::chrono::steady_clock::now() + config_.recovery.sweep_interval;
  while (!stop_requested_) {
    if (recorder != nullptr && std::chrono::steady_clock::now() >= next_record) {
      const bool prune = std::chrono::steady_clock::now() >= next_prune;
      if (prune) next_prune = std::chrono::steady_clock::now() + std::chrono::hours(1);
      record_throughput(*recorder, throughput, owner, prune);
      next_record = std::chrono::steady_clock::now() + record_every;
    }
    // Before the wait for the sweep: a backlog drains at the loop's pace,
    // not one batch per sweep interval.
    if (const auto began = std::chrono::steady_clock::now(); history_cadence.due(began)) {
      try {
        const long long deleted = sweeper.prune_history();
        history_cadence.pruned(began, std::chrono::steady_clock::now(), deleted);
      } catch (const std::exception& e) {
        log::event(log::Level::warn, "history.prune_failed", e.what());
        history_cadence.failed(std::chrono::steady_clock::now());
      }
    }
    if (std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    next = std::chrono::steady_clock::now() + config_.recovery.sweep_interval;
    try {
      sweeper.sweep();
    } catch (const std::exception& e) {
      log::event(log::Level::warn, "recovery.sweep_failed", e.what());
    }
  }
}

void CompositionRoot::start() {
  const auto brokers = amqp::BrokerNodes::from(config_.amqp, config_.amqp.heartbeat_seconds);
  beats_ = std::make_unique<std::atomic<std::int64_t>[]>(static_cast<std::size_t>(config_.workers));
  for (int i = 0; i < config_.workers; ++i) {
    beats_[static_cast<std::size_t>(i)] = steady_ms();
    WorkerSettings settings{i,
                            brokers.shuffled(amqp::node_order_seed(i)),
                            amqp::QueueTopology::from(config_.amqp),
                            config_.amqp.prefetch,
                            config_.recovery.lease,
                            config_.recovery.stale_after,
                            config_.recovery.max_crashes,
                            RetryPolicies::from(config_.retry),
                            isolation_command(),
                            FairnessPolicy{}};
    {
      std::lock_guard lock(mutex_);
      ++running_;
    }
    threads_.emplace_back([this, i, settings = std::move(settings)]() mutable {
      auto& beat = beats_[static_cast<std::size_t>(i)];
      metrics_->worker_up(host_name(), static_cast<long long>(::getpid()), i);
      try {
        Worker(std::move(settings), *store_, *jobs_, stop_requested_, beat, *metrics_).run();
      } catch (const std::exception& e) {
        log::event(log::Level::error, "worker.failed", e.what(), {{"worker", i}});
      }
      metrics_->worker_down(i);
      beat = -1;
      std::lock_guard lock(mutex_);
      --running_;
      changed_.notify_all();
    });
  }
  sweeper_ = std::thread([this] { sweep_until_stopped(); });
  log::event(log::Level::info, "daemon.started", "", {{"workers", config_.workers}});
  record_loaded_jobs(false);
}

void CompositionRoot::record_loaded_jobs(bool reloaded) {
  if (!reloaded) {
    // systemd sets STATE_DIRECTORY from StateDirectory= (a colon-separated
    // list when the unit names several: the first is ours).
    const char* directories = std::getenv("STATE_DIRECTORY");
    std::string first = directories != nullptr ? directories : "";
    first = first.substr(0, first.find(':'));
    if (first.empty()) {
      log::event(log::Level::info, "daemon.loaded_jobs_not_recorded",
                 "STATE_DIRECTORY is not set (not started by the unit): `program-executor jobs` "
                 "shows the plugin directory only");
      return;
    }
    state_directory_ = first;
  }
  if (state_directory_.empty()) return;
  LoadedJobsRecord record = record_of(*jobs_->current(), config_.plugins.directory, config_.source);
  if (reloaded) {
    record.started_at = loaded_.started_at;
    record.reloads = loaded_.reloads + 1;
  }
  loaded_ = std::move(record);
  try {
    write_loaded_jobs(state_directory_, loaded_);
    log::event(log::Level::debug, "daemon.loaded_jobs_recorded", "",
               {{"file", (state_directory_ / loaded_jobs_file_name).string()},
                {"jobs", static_cast<long long>(loaded_.jobs.size())}});
  } catch (const std::exception& e) {
    // The daemon runs either way; only the operator's view is poorer.
    log::event(log::Level::warn, "daemon.loaded_jobs_not_recorded", e.what());
  }
}

std::vector<std::string> CompositionRoot::isolation_command() const {
  // This very program, reading the daemon's configuration file: a step's
  // isolated process runs the same plugins against the same database.
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error || config_.source.empty()) {
    log::event(log::Level::warn, "isolation.unavailable",
               "steps with a crash on record will run in the worker process",
               {{"reason", error ? error.message() : std::string("no configuration file")}});
    return {};
  }
  return {self.string(), "run-step", "-c", std::filesystem::absolute(config_.source).string()};
}

void CompositionRoot::request_stop() { stop_requested_ = true; }

bool CompositionRoot::wait_stopped(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, deadline, [this] { return running_ == 0; });
}

bool CompositionRoot::healthy(std::chrono::milliseconds max_age) const {
  const std::int64_t oldest_allowed = steady_ms() - max_age.count();
  for (int i = 0; i < config_.workers; ++i) {
    const std::int64_t beat = beats_ ? beats_[static_cast<std::size_t>(i)].load() : -1;
    // A worker that returned while the daemon runs has failed: unhealthy too.
    if (beat < oldest_allowed) return false;
  }
  return beats_ != nullptr;
}

void CompositionRoot::reload(const config::Config& config) {
  plugin::JobRegistry registry = plugin::load_directory(config.plugins.directory);
  const auto size = static_cast<long long>(registry.size());
  jobs_->replace(std::move(registry));
  log::configure(config.log.level, config.log.format,
                 log::Destination::standard_output);
  for (const auto& key : restart_only_changes(config_, config)) {
    log::event(log::Level::warn, "daemon.reload_needs_restart",
               "this key changed; its new value applies after a restart", {{"key", key}});
  }
  config_.plugins = config.plugins;
  config_.log = config.log;
  config_.shutdown_grace = config.shutdown_grace;
  log::event(log::Level::info, "daemon.reloaded", "",
             {{"directory", config.plugins.directory}, {"jobs", size}});
  record_loaded_jobs(true);
}

}  // namespace program_executor::executor
