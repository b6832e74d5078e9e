// The isolated process's side of step_isolation.hpp: runs one step's job and
// nothing else, then reports how it ended.
#pragma once

#include <atomic>
#include <filesystem>

namespace program_executor::executor {

/// Reads an IsolatedStep (JSON) from `request_fd`, runs its job with the
/// plugins, database and broker of the configuration file (the job's data
/// writes and the programs it creates go where the daemon's would; logs go to
/// stdout, as the daemon's), and writes the JobResult (JSON) to `result_fd`.
/// Failures to set up (an unreadable configuration or request, a database
/// out of reach) are results too, not crashes. Returns the exit code for the
/// process: 0 once a result is written. `stop` is passed on to the job.
int run_isolated_step(const std::filesystem::path& config_path, int request_fd, int result_fd,
                      const std::atomic<bool>& stop);

}  // namespace program_executor::executor
