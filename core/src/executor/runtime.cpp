#include "program_executor/executor/runtime.hpp"

#include "program_executor/amqp/connection.hpp"
#include "program_executor/executor/worker.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/plugin/plugin_loader.hpp"

namespace program_executor::executor {

Runtime::Runtime(const config::Config& config) : config_(config) {
  jobs_ = plugin::load_directory(config_.plugins.directory);
  log::event(log::Level::info, "plugins.loaded", "",
             {{"directory", config_.plugins.directory},
              {"jobs", static_cast<long long>(jobs_.size())}});
  // One session per worker for steps, one more for the jobs' own calls.
  database_ = std::make_unique<store::Database>(config_.database,
                                                static_cast<std::size_t>(config_.workers) * 2);
  database_->ensure_schema();
  store_ = database_->program_store();
  log::event(log::Level::info, "database.ready", "",
             {{"backend", config_.database.backend}, {"table", config_.database.table}});
  const auto settings = amqp::parse_url(config_.amqp.url, config_.amqp.tls,
                                        config_.amqp.heartbeat_seconds);
  amqp::Connection probe(settings, "program-executor startup");
  probe.declare(amqp::QueueTopology(config_.amqp.queue, config_.amqp.durable));
  log::event(log::Level::info, "amqp.ready", "",
             {{"broker", settings.describe()}, {"queue", config_.amqp.queue},
              {"durable", config_.amqp.durable}});
}

Runtime::~Runtime() {
  request_stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void Runtime::start() {
  const auto connection = amqp::parse_url(config_.amqp.url, config_.amqp.tls,
                                          config_.amqp.heartbeat_seconds);
  for (int i = 0; i < config_.workers; ++i) {
    WorkerSettings settings{i, connection,
                            amqp::QueueTopology(config_.amqp.queue, config_.amqp.durable),
                            config_.amqp.prefetch};
    {
      std::lock_guard lock(mutex_);
      ++running_;
    }
    threads_.emplace_back([this, settings = std::move(settings)]() mutable {
      try {
        Worker(std::move(settings), *store_, jobs_, stop_requested_).run();
      } catch (const std::exception& e) {
        log::event(log::Level::error, "worker.failed", e.what(), {{"worker", settings.index}});
      }
      std::lock_guard lock(mutex_);
      --running_;
      changed_.notify_all();
    });
  }
  log::event(log::Level::info, "daemon.started", "", {{"workers", config_.workers}});
}

void Runtime::request_stop() { stop_requested_ = true; }

bool Runtime::wait_stopped(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return changed_.wait_until(lock, deadline, [this] { return running_ == 0; });
}

}  // namespace program_executor::executor
