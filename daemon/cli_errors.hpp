// How every command of the program-executor binary leaves: the documented
// exit codes (docs/operations.md, "Exit codes and errors"), one error line
// "program-executor: error: ..." on stderr, or with --json one JSON object
// {"error": CODE, "message": ...} on stdout with a stable CODE for scripts.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace program_executor::daemon {

/// The exit codes, the same for every command.
enum ExitCode : int {
  exit_ok = 0,       ///< done (also: cancel of an already cancelled program)
  exit_failure = 1,  ///< the command ran and failed, or found problems (check, migrate --check)
  exit_usage = 2,    ///< the command line is wrong: nothing was done
};

/// Stable values of the "error" field of a --json error (documented; never renamed).
namespace error_code {
inline constexpr const char* usage = "usage";                  ///< bad arguments (exit 2)
inline constexpr const char* config = "config";                ///< the configuration is invalid
inline constexpr const char* database = "database";            ///< the database failed or refused
inline constexpr const char* broker = "broker";                ///< the broker failed or refused
inline constexpr const char* plugin = "plugin";                ///< a plugin cannot be loaded
inline constexpr const char* not_found = "not_found";          ///< no program with this run id
inline constexpr const char* invalid_state = "invalid_state";  ///< the program's state forbids it
inline constexpr const char* invalid_argument = "invalid_argument";  ///< a value is wrong
inline constexpr const char* unknown_jobs = "unknown_jobs";    ///< create --strict: no plugin has them
inline constexpr const char* migrations_missing = "migrations_missing";  ///< migrate --check
inline constexpr const char* check_failed = "check_failed";    ///< check found problems
inline constexpr const char* failed = "failed";                ///< anything else
}  // namespace error_code

/// An error a command raises with its code, e.g. not_found.
class CommandError : public std::runtime_error {
 public:
  CommandError(const char* code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  const char* code() const noexcept { return code_; }

 private:
  const char* code_;
};

/// Whether errors are printed as JSON on stdout (the command got --json).
/// Set once by main before the command runs.
void set_json_errors(bool json) noexcept;
bool json_errors() noexcept;

/// Prints the error as the mode requires; returns exit_failure (exit_usage for `usage`).
int fail(const char* code, const std::string& message);
/// fail(error_code::failed, message).
int fail(const std::string& message);

/// The code for an exception: its own (CommandError) or one per kind of error
/// (configuration, database, broker, plugin, invalid argument).
const char* code_of(const std::exception& error) noexcept;

/// A usage error from CLI11: help and --version print and exit 0, anything
/// else is `program-executor: error: ...` with a pointer to --help, exit 2.
int fail_usage(CLI::App& app, const CLI::ParseError& error);

/// e.what(), with the SQLite file's owner and mode added to a database error
/// about writing or opening it.
std::string message_of(const std::exception& error);

/// Runs a command, turning any exception into fail(code_of(e), message_of(e)).
template <class F>
int guarded(F&& command) {
  try {
    return command();
  } catch (const std::exception& e) {
    return fail(code_of(e), message_of(e));
  }
}

}  // namespace program_executor::daemon
