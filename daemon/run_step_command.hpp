// `program-executor run-step -c CONFIG`: not for people. The daemon starts it
// to run one step alone (core/include/program_executor/executor/step_isolation.hpp).
#pragma once

#include <string>

namespace program_executor::daemon {

/// Runs the step read from standard input; the result goes to descriptor 3.
int run_isolated_step_command(const std::string& config_path);

}  // namespace program_executor::daemon
