// The signals a long-running command (`run`, `serve`) is steered by, as
// systemd sends them: SIGTERM or SIGINT stop it, SIGHUP reloads.
#pragma once

#include <signal.h>

#include <chrono>
#include <optional>

#include "program_executor/executor/startup_wait.hpp"

namespace program_executor::daemon {

enum class ServiceSignal { stop, reload };

class ServiceSignals {
 public:
  /// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread. Construct it
  /// before any thread starts: threads inherit the mask, so only wait()
  /// receives these signals.
  ServiceSignals();

  /// The next signal, or nothing once `timeout` has passed without one.
  std::optional<ServiceSignal> wait(std::chrono::nanoseconds timeout);
  /// The next signal, however long it takes.
  ServiceSignal wait();

  /// "SIGTERM" or "SIGINT": the last stop signal received, for the logs.
  const char* stop_name() const noexcept { return stopped_by_ == SIGINT ? "SIGINT" : "SIGTERM"; }

 private:
  std::optional<ServiceSignal> classify(int received) noexcept;

  sigset_t handled_{};
  int stopped_by_ = SIGTERM;
};

/// The pause between start-up attempts while `server` ("the database", "the
/// broker") is not up yet: tells systemd why the start takes long (STATUS=),
/// waits on `signals`, and returns false on SIGTERM or SIGINT. SIGHUP has
/// nothing to reload before the start: the wait goes on.
executor::StartupPause waiting_for(ServiceSignals& signals, const char* server);

}  // namespace program_executor::daemon
