#include "commands.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>
#include <systemd/sd-daemon.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/program_status.hpp"
#include "program_executor/executor/runtime.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/sdk/abi.hpp"
#include "program_executor/store/database.hpp"

namespace program_executor::daemon {
namespace {

int fail(const std::string& message) {
  std::cerr << "program-executor: error: " << message << "\n";
  return 1;
}

// Commands other than `run` print results on stdout; only warnings and errors
// go to the log, so their output stays readable and scriptable.
config::Config load_for_command(const CommonOptions& options) {
  config::Config config = config::load_file(options.config_path);
  log::configure(std::max(log::Level::warn, log::parse_level(config.log.level)),
                 log::parse_format(config.log.format));
  return config;
}

nlohmann::json parse_json_object(const std::string& text, const char* option) {
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(std::string(option) + " is not valid JSON: " + e.what());
  }
  if (!value.is_object()) throw std::invalid_argument(std::string(option) + " must be a JSON object");
  return value;
}

template <class F>
int guarded(F&& command) {
  try {
    return command();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace

int run_daemon(const CommonOptions& options) {
  return guarded([&] {
    const config::Config config = config::load_file(options.config_path);
    log::configure(log::parse_level(config.log.level), log::parse_format(config.log.format));
    log::event(log::Level::info, "daemon.starting", "",
               {{"config", options.config_path}, {"pid", static_cast<long long>(::getpid())}});

    // Block the stop signals before any thread starts, so every thread inherits
    // the mask and only sigwait below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    executor::Runtime runtime(config);
    runtime.start();
    // Plugins are loaded, the database and the broker answered: tell systemd
    // (a no-op when not started by systemd with Type=notify).
    sd_notify(0, "READY=1");
    int received = 0;
    sigwait(&stop_signals, &received);
    sd_notify(0, "STOPPING=1");
    log::event(log::Level::info, "daemon.stopping", "",
               {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"},
                {"grace_seconds", static_cast<long long>(config.shutdown_grace.count())}});
    runtime.request_stop();
    if (!runtime.wait_stopped(std::chrono::steady_clock::now() + config.shutdown_grace)) {
      // A job is still running. Its message is unacknowledged, so the broker
      // redelivers it when our connections close with the process.
      log::event(log::Level::warn, "daemon.grace_exceeded",
                 "jobs still running are left unacknowledged for redelivery");
      std::fflush(nullptr);
      std::_Exit(0);
    }
    log::event(log::Level::info, "daemon.stopped", "");
    return 0;
  });
}

int create_program(const CommonOptions& options, const CreateOptions& create) {
  return guarded([&] {
    const config::Config config = load_for_command(options);
    sdk::ProgramRequest request;
    request.jobs = create.jobs;
    request.program_data = parse_json_object(create.program_data, "--program-data");
    request.job_data = parse_json_object(create.job_data, "--job-data");
    store::Database database(config.database, 1);
    database.ensure_schema();
    auto store = database.program_store();
    // A short-lived connection: no heartbeats needed.
    auto settings = amqp::parse_url(config.amqp.url, config.amqp.tls, 0);
    amqp::Connection connection(settings, "program-executor create");
    connection.declare(amqp::QueueTopology(config.amqp.queue, config.amqp.durable));
    executor::ProgramCreator creator(*store, connection, config.amqp.queue, config.amqp.durable);
    std::cout << creator.create(request) << "\n";
    return 0;
  });
}

int show_status(const CommonOptions& options, const std::string& run_id, bool json) {
  return guarded([&] {
    const config::Config config = load_for_command(options);
    store::Database database(config.database, 1);
    database.ensure_schema();
    auto row = database.program_store()->find(run_id);
    if (!row) return fail("no program with run id " + run_id);
    std::cout << (json ? executor::status_json(*row) + "\n" : executor::format_status(*row));
    return 0;
  });
}

int cancel_program(const CommonOptions& options, const std::string& run_id) {
  return guarded([&] {
    const config::Config config = load_for_command(options);
    store::Database database(config.database, 1);
    database.ensure_schema();
    auto store = database.program_store();
    if (store->cancel(run_id, executor::cancelled_message)) {
      log::event(log::Level::info, "program.cancel_requested", "", {{"run_id", run_id}});
      std::cout << "cancelled " << run_id << "\n";
      return 0;
    }
    auto row = store->find(run_id);
    if (!row) return fail("no program with run id " + run_id);
    return fail("program " + run_id + " is already " + executor::program_state(*row) +
                "; nothing to cancel");
  });
}

int print_version() {
  std::cout << "program-executor " << PE_VERSION << " (plugin ABI "
            << PROGRAM_EXECUTOR_ABI_VERSION << ")\n";
  return 0;
}

}  // namespace program_executor::daemon
