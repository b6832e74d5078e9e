// `program-executor run`: the service loop around the executor's composition root:
// configuration, signals, systemd's notifications and watchdog, shutdown.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <systemd/sd-daemon.h>

#include "cli_errors.hpp"
#include "command_config.hpp"
#include "commands.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/executor/composition_root.hpp"
#include "program_executor/log/logger.hpp"
#include "service_signals.hpp"
#include "sqlite_file.hpp"

namespace program_executor::daemon {

int run_daemon(const CommonOptions& options) {
  return guarded([&] {
    config::Config config = config::load_file(options.config_path);
    configure_service_log(config, options);
    if (const auto file = sqlite_file(config.database)) note_database_file(*file);
    log::event(log::Level::info, "daemon.starting", "",
               {{"config", options.config_path}, {"pid", static_cast<long long>(::getpid())}});

    // Before any thread starts, so only the loop below receives them.
    ServiceSignals signals;

    executor::CompositionRoot root(config);
    // A database or broker that is not up yet (a host still booting, a
    // server restarting) is waited for, each attempt logged as
    // database.waiting or amqp.waiting, instead of exiting: READY follows the
    // connections, and SIGTERM or SIGINT end the wait. systemd's
    // TimeoutStartSec= bounds it under the unit.
    const auto stopped_while_waiting_for = [&](const char* server) {
      log::event(log::Level::info, "daemon.stopped", std::string("stopped while waiting for ") + server,
                 {{"signal", signals.stop_name()}});
      return 0;
    };
    if (!root.open_database(waiting_for(signals, "the database"))) {
      return stopped_while_waiting_for("the database");
    }
    if (!root.connect_broker(waiting_for(signals, "the broker"))) {
      return stopped_while_waiting_for("the broker");
    }
    sd_notify(0, "STATUS=");
    root.start();
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
      const auto signal = signals.wait(tick);
      if (signal == ServiceSignal::stop) break;
      if (signal == ServiceSignal::reload) {
        sd_notify(0, "RELOADING=1");
        try {
          config::Config next = config::load_file(options.config_path);
          root.reload(next);
          config = std::move(next);
        } catch (const std::exception& e) {
          log::event(log::Level::error, "daemon.reload_failed",
                     std::string(e.what()) + "; the running configuration stays in force");
        }
        sd_notify(0, "READY=1");
        continue;
      }
      if (watchdog && root.healthy(max_beat_age)) sd_notify(0, "WATCHDOG=1");
    }
    sd_notify(0, "STOPPING=1");
    log::event(log::Level::info, "daemon.stopping", "",
               {{"signal", signals.stop_name()},
                {"grace_seconds", static_cast<long long>(config.shutdown_grace.count())}});
    root.request_stop();
    if (!root.wait_stopped(std::chrono::steady_clock::now() + config.shutdown_grace)) {
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

}  // namespace program_executor::daemon
