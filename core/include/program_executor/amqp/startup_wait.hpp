// Waiting at start for a broker that is not up yet (a host still booting, a
// broker restarting): the daemon retries with backoff instead of exiting, so a
// late broker neither spends systemd's start limit nor needs an operator.
#pragma once

#include <chrono>
#include <functional>

namespace program_executor::amqp {

/// Delays between attempts: `first`, doubled after each failed attempt, at most `longest`.
struct StartupBackoff {
  std::chrono::milliseconds first{500};
  std::chrono::milliseconds longest{30000};
};

/// Waits `delay`; returns false when the wait was cut short because the
/// daemon is asked to stop (SIGTERM), true otherwise.
using StartupPause = std::function<bool(std::chrono::milliseconds delay)>;

/// Calls `attempt` until it returns. After each BrokerUnreachableError it logs
/// `amqp.waiting` (attempt number, the error, the next delay) and calls
/// `pause`. Any other exception (a refused login, a failed TLS verification, a
/// queue declared with other arguments) propagates at once: waiting would not
/// fix it. Returns the number of attempts made, or 0 when `pause` returned
/// false (stop requested before the broker answered).
int retry_while_unreachable(const std::function<void()>& attempt, const StartupBackoff& backoff,
                            const StartupPause& pause);

}  // namespace program_executor::amqp
