#include "commands.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>
#include <systemd/sd-daemon.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/program_status.hpp"
#include "program_executor/executor/runtime.hpp"
#include "program_executor/executor/step_publishing.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/sdk/abi.hpp"
#include "program_executor/store/database.hpp"
#include "cli_errors.hpp"
#include "command_config.hpp"
#include "sqlite_file.hpp"

namespace program_executor::daemon {

int run_daemon(const CommonOptions& options) {
  return guarded([&] {
    config::Config config = config::load_file(options.config_path);
    log::configure(log::parse_level(config.log.level),
                   log::parse_format(options.log_format.empty() ? config.log.format
                                                                : options.log_format),
                   log::Destination::standard_output);
    if (const auto file = sqlite_file(config.database)) note_database_file(*file);
    log::event(log::Level::info, "daemon.starting", "",
               {{"config", options.config_path}, {"pid", static_cast<long long>(::getpid())}});

    // Block the signals we handle before any thread starts, so every thread
    // inherits the mask and only the loop below receives them.
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &handled, nullptr);

    executor::Runtime runtime(config);
    // A broker that is not up yet (a host still booting) is waited for, each
    // attempt logged as amqp.waiting, instead of exiting: READY follows the
    // connection, and SIGTERM or SIGINT end the wait. systemd's
    // TimeoutStartSec= bounds it under the unit.
    int received = 0;
    const bool connected = runtime.connect_broker([&](std::chrono::milliseconds delay) {
      sd_notifyf(0, "STATUS=waiting for the broker, next attempt in %lld ms",
                 static_cast<long long>(delay.count()));
      const auto until = std::chrono::steady_clock::now() + delay;
      while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return true;
        timespec timeout{};
        timeout.tv_sec = static_cast<time_t>(left.count() / 1000000000);
        timeout.tv_nsec = static_cast<long>(left.count() % 1000000000);
        received = sigtimedwait(&handled, nullptr, &timeout);
        if (received == SIGTERM || received == SIGINT) return false;
        // SIGHUP: nothing to reload before the start; keep waiting.
      }
    });
    if (!connected) {
      log::event(log::Level::info, "daemon.stopped", "stopped while waiting for the broker",
                 {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
      return 0;
    }
    sd_notify(0, "STATUS=");
    runtime.start();
    // Plugins are loaded, the database and the broker answered: tell systemd
    // (every sd_notify is a no-op when not started by systemd with Type=notify).
    sd_notify(0, "READY=1");

    // With WatchdogSec= set, ping at half the interval while every worker's
    // loop is turning; a stuck loop stops the pings and systemd restarts us.
    std::uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
    const auto tick = watchdog ? std::chrono::microseconds(watchdog_usec / 2)
                               : std::chrono::microseconds(std::chrono::seconds(1));
    const auto max_beat_age = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(tick),
                                       std::chrono::milliseconds(2000));
    while (true) {
      timespec timeout{};
      timeout.tv_sec = static_cast<time_t>(tick.count() / 1000000);
      timeout.tv_nsec = static_cast<long>((tick.count() % 1000000) * 1000);
      received = sigtimedwait(&handled, nullptr, &timeout);
      if (received == SIGTERM || received == SIGINT) break;
      if (received == SIGHUP) {
        sd_notify(0, "RELOADING=1");
        try {
          config::Config next = config::load_file(options.config_path);
          runtime.reload(next);
          config = std::move(next);
        } catch (const std::exception& e) {
          log::event(log::Level::error, "daemon.reload_failed",
                     std::string(e.what()) + "; the running configuration stays in force");
        }
        sd_notify(0, "READY=1");
        continue;
      }
      if (watchdog && runtime.healthy(max_beat_age)) sd_notify(0, "WATCHDOG=1");
    }
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

int show_status(const CommonOptions& options, const std::string& run_id) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_read_only(config);
    auto row = database->program_store()->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    std::cout << (options.json ? executor::status_json(*row) + "\n"
                               : executor::format_status(*row));
    return 0;
  });
}

int cancel_program(const CommonOptions& options, const std::string& run_id) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_for_writing(config);
    auto store = database->program_store();
    if (store->cancel(run_id, executor::cancelled_message)) {
      log::event(log::Level::info, "program.cancel_requested", "", {{"run_id", run_id}});
      if (options.json) {
        std::cout << nlohmann::json{{"run_id", run_id}, {"state", "cancelled"}}.dump() << "\n";
      } else {
        std::cout << "cancelled " << run_id << "\n";
      }
      return 0;
    }
    auto row = store->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    const std::string state = executor::program_state(*row);
    if (state == "cancelled") {
      // What was asked holds already: scripts may cancel twice.
      const std::string note = "program " + run_id + " was already cancelled; nothing changed";
      if (options.json) {
        std::cout << nlohmann::json{{"run_id", run_id}, {"state", "cancelled"}, {"note", note}}
                         .dump()
                  << "\n";
      } else {
        std::cout << note << "\n";
      }
      return 0;
    }
    return fail(error_code::invalid_state,
                "program " + run_id + " is already " + state + "; nothing to cancel");
  });
}

int migrate_schema(const CommonOptions& options, bool check_only) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    // --check changes nothing: a SQLite file is opened read-only, never created.
    const auto database = check_only ? open_database_read_only(config, TableRequired::no)
                                     : open_database_for_writing(config, Migrate::no);
    const std::string& table = config.database.table;
    const store::SchemaStatus status = database->schema_status();
    if (check_only && options.json) {
      std::cout << nlohmann::json{{"table", table},
                                  {"exists", status.table_exists},
                                  {"version", status.version},
                                  {"latest", status.latest},
                                  {"current", status.current()}}
                       .dump()
                << "\n";
      return status.current() ? 0 : exit_failure;
    }
    if (check_only) {
      std::cout << "table " << table << ": "
                << (status.table_exists ? "exists" : "does not exist") << ", schema version "
                << status.version << (status.versioned ? "" : " (no version table)")
                << ", this program needs " << status.latest << "\n";
      return status.current() ? 0
                              : fail(error_code::migrations_missing,
                                     "migrations are missing: run `program-executor migrate`");
    }
    const store::MigrationReport report = database->migrate();
    database->ensure_schema();  // the columns the store needs are all there
    if (options.json) {
      std::cout << nlohmann::json{{"table", table},
                                  {"from", report.from},
                                  {"to", report.to},
                                  {"created", !status.table_exists},
                                  {"adopted", report.adopted},
                                  {"applied", report.applied}}
                       .dump()
                << "\n";
      return 0;
    }
    std::cout << "table " << table << ": schema version " << report.from << " -> " << report.to;
    if (!status.table_exists) std::cout << " (created)";
    if (report.adopted) std::cout << " (adopted the existing table as version 1)";
    std::cout << "\n";
    for (const auto& applied : report.applied) std::cout << "  applied " << applied << "\n";
    if (report.applied.empty() && !report.adopted) std::cout << "  nothing to do\n";
    return 0;
  });
}

int print_version(const CommonOptions& options) {
  if (options.json) {
    std::cout << nlohmann::json{{"version", PE_VERSION}, {"plugin_abi", PROGRAM_EXECUTOR_ABI_VERSION}}.dump()
              << "\n";
  } else {
    std::cout << "program-executor " << PE_VERSION << " (plugin ABI "
              << PROGRAM_EXECUTOR_ABI_VERSION << ")\n";
  }
  return 0;
}

int list_programs(const CommonOptions& options, const ListOptions& list) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_read_only(config);
    store::ProgramFilter filter;
    if (!list.state.empty()) filter.state = list.state;
    if (!list.job.empty()) filter.job = list.job;
    filter.limit = list.limit;
    filter.offset = (list.page - 1) * list.limit;
    const std::vector<store::ProgramRow> rows = database->program_store()->list(filter);
    if (options.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& row : rows) out.push_back(nlohmann::json::parse(executor::status_json(row)));
      std::cout << out.dump(2) << "\n";
    } else {
      std::cout << executor::format_list(rows);
      if (static_cast<int>(rows.size()) == list.limit) {
        std::cout << "(more: --page " << list.page + 1 << ")\n";
      }
    }
    return 0;
  });
}

int resume_program(const CommonOptions& options, const std::string& run_id, int from_step) {
  return guarded([&] {
    const config::Config config = load_for_command(options);
    const auto database = open_database_for_writing(config);
    auto store = database->program_store();
    auto row = store->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    const std::string state = executor::program_state(*row);
    if (state != "errored" && state != "cancelled") {
      return fail(error_code::invalid_state,
                  "program " + run_id + " is " + state + "; only errored or cancelled programs resume");
    }
    const int total = static_cast<int>(row->jobs.size());
    const int step = from_step > 0 ? from_step - 1 : row->step;
    if (step >= total) {
      return fail(error_code::invalid_argument,
                  "--from-step " + std::to_string(from_step) + ": the program has " +
                  std::to_string(total) + " steps");
    }
    if (!store->resume(run_id, step, config.recovery.stale_after)) {
      return fail(error_code::invalid_state,
                  "program " + run_id + " changed meanwhile; look at it again with `status`");
    }
    // Should this publish fail, the program is overdue in stale_after and the
    // daemons' recovery sweeper publishes the step instead.
    auto settings = amqp::parse_url(config.amqp.url, config.amqp.tls, 0);
    amqp::Connection connection(settings, "program-executor resume");
    connection.declare(amqp::QueueTopology::from(config.amqp));
    executor::publish_step(connection, config.amqp.queue, config.amqp.durable, run_id, row->jobs,
                           step, row->program_data);
    log::event(log::Level::info, "program.resumed", "",
               {{"run_id", run_id}, {"step", step},
                {"job", row->jobs[static_cast<std::size_t>(step)]}});
    if (options.json) {
      std::cout << nlohmann::json{{"run_id", run_id}, {"state", "running"}, {"step", step}}.dump()
                << "\n";
    } else {
      std::cout << "resumed " << run_id << " at step " << step + 1 << " of " << total << " ("
                << row->jobs[static_cast<std::size_t>(step)] << ")\n";
    }
    return 0;
  });
}

}  // namespace program_executor::daemon
