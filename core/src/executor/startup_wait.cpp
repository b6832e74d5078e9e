#include "program_executor/executor/startup_wait.hpp"

#include "program_executor/log/logger.hpp"

namespace program_executor::executor {

void log_waiting(const AwaitedServer& server, const std::string& error, int attempt,
                 std::chrono::milliseconds next_delay) {
  log::event(log::Level::warn, server.event,
             error + "; " + server.what + " may not be up yet, trying again",
             {{"attempt", attempt}, {"retry_in_ms", static_cast<long long>(next_delay.count())}});
}

}  // namespace program_executor::executor
