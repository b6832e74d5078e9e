// Waiting at start for a database or a broker that is not up yet (a host
// still booting, a server restarting): the daemon retries with backoff instead
// of exiting, so a late server neither spends systemd's start limit nor needs
// an operator.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>

namespace program_executor::executor {

/// Delays between attempts: `first`, doubled after each failed attempt, at most `longest`.
struct StartupBackoff {
  std::chrono::milliseconds first{500};
  std::chrono::milliseconds longest{30000};
};

/// Waits `delay`; returns false when the wait was cut short because the
/// daemon is asked to stop (SIGTERM), true otherwise.
using StartupPause = std::function<bool(std::chrono::milliseconds delay)>;

/// What is waited for, as the log names it.
struct AwaitedServer {
  const char* event;  ///< logged at each failed attempt: "amqp.waiting", "database.waiting"
  const char* what;   ///< "the broker", "the database"
};

/// Logs `server.event` (warn): the error, the attempt number and the next delay.
void log_waiting(const AwaitedServer& server, const std::string& error, int attempt,
                 std::chrono::milliseconds next_delay);

/// Calls `attempt` until it returns. After each `UnreachableError` it logs the
/// wait (log_waiting) and calls `pause`. Any other exception (a refused login,
/// a failed TLS verification, a queue declared with other arguments) propagates
/// at once: waiting would not fix it. Returns the number of attempts made, or 0
/// when `pause` returned false (stop requested before the server answered).
template <class UnreachableError>
int retry_while_unreachable(const AwaitedServer& server, const std::function<void()>& attempt,
                            const StartupBackoff& backoff, const StartupPause& pause) {
  auto delay = backoff.first;
  for (int number = 1;; ++number) {
    try {
      attempt();
      return number;
    } catch (const UnreachableError& e) {
      log_waiting(server, e.what(), number, delay);
    }
    if (!pause(delay)) return 0;
    delay = std::min(delay * 2, backoff.longest);
  }
}

}  // namespace program_executor::executor
