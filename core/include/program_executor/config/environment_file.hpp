// The unit's EnvironmentFile= (systemd's syntax), read by the operator's
// commands so that ${NAME} in the config resolves as it does for the daemon.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace program_executor::config {

using EnvironmentAssignments = std::vector<std::pair<std::string, std::string>>;

/// The assignments of an environment file in systemd's EnvironmentFile=
/// syntax: KEY=VALUE lines; blank lines and lines starting with # or ; are
/// comments; whitespace around the key and an unquoted value is dropped;
/// 'single quotes' keep everything, "double quotes" and unquoted values take
/// \-escapes; a \ at the end of a line continues it. Like systemd, lines
/// without a valid KEY= are ignored. Values are never part of any message.
EnvironmentAssignments parse_environment_file(std::string_view text);

/// The environment file the packaged units give the daemon running `config`:
/// /etc/program-executor/config.yaml -> /etc/program-executor/environment,
/// DIR/NAME.yaml -> DIR/NAME.environment (program-executor@NAME.service).
std::filesystem::path unit_environment_file(const std::filesystem::path& config);

}  // namespace program_executor::config
