// `program-executor serve`: the HTTP API and web console (docs/api.md,
// docs/console.md), a process of its own beside the workers.
#pragma once

#include "commands.hpp"

namespace program_executor::daemon {

/// Serves until SIGTERM or SIGINT; SIGHUP rereads the token files and the
/// plugin directory's job list. Exit 1 when it cannot start (no token, the
/// address in use, the database unreachable).
int serve_web(const CommonOptions& options);

}  // namespace program_executor::daemon
