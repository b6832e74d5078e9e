#include "program_executor/amqp/startup_wait.hpp"

#include <algorithm>

#include "program_executor/amqp/amqp_error.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::amqp {

int retry_while_unreachable(const std::function<void()>& attempt, const StartupBackoff& backoff,
                            const StartupPause& pause) {
  auto delay = backoff.first;
  for (int number = 1;; ++number) {
    try {
      attempt();
      return number;
    } catch (const BrokerUnreachableError& e) {
      log::event(log::Level::warn, "amqp.waiting",
                 std::string(e.what()) + "; the broker may not be up yet, trying again",
                 {{"attempt", number}, {"retry_in_ms", static_cast<long long>(delay.count())}});
    }
    if (!pause(delay)) return 0;
    delay = std::min(delay * 2, backoff.longest);
  }
}

}  // namespace program_executor::amqp
