#include "run_step_command.hpp"

#include <atomic>
#include <csignal>

#include "program_executor/executor/isolated_step.hpp"

namespace program_executor::daemon {
namespace {

std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int) { stop_requested = true; }

}  // namespace

int run_isolated_step_command(const std::string& config_path) {
  // The daemon's SIGTERM reaches the job as JobContext::stop_requested().
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  std::signal(SIGPIPE, SIG_IGN);
  return executor::run_isolated_step(config_path, 0, 3, stop_requested);
}

}  // namespace program_executor::daemon
