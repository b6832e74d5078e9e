// Running the real program-executor binary from tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace program_executor::test {

struct CommandResult {
  int exit_code = -1;  ///< exit status, or 128 + signal number
  std::string out;
  std::string err;
};

/// Runs a program to completion with `args` (args[0] is the executable path),
/// capturing stdout and stderr. Fails the test if it runs longer than `timeout`.
CommandResult run_command(const std::vector<std::string>& args,
                          std::chrono::seconds timeout = std::chrono::seconds(60));

/// A `program-executor run` (or `serve`) process with its output in a log file.
class DaemonProcess {
 public:
  /// `environment` is added to the inherited environment of the process;
  /// `command`: the long-running command, "run" or "serve".
  DaemonProcess(const std::filesystem::path& config, const std::filesystem::path& log_file,
                const std::vector<std::pair<std::string, std::string>>& environment = {},
                const std::string& command = "run");
  ~DaemonProcess();  ///< SIGKILLs the process if still running
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  /// Waits until the log contains `text` `count` times; false on timeout or if the process exited.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout, int count = 1) const;
  /// Number of log lines containing `text`.
  int count_in_log(const std::string& text) const;
  std::string log() const;
  /// Sends `signal` and waits for the exit; returns the exit status (or 128+signal), -1 on timeout.
  int stop(int signal, std::chrono::milliseconds timeout);
  /// Sends `signal` and returns at once (the exit is awaited by wait_for_exit or stop).
  void signal(int signal);
  /// Waits for the exit without signalling; the exit status, -1 on timeout.
  int wait_for_exit(std::chrono::milliseconds timeout);
  bool running();
  pid_t pid() const noexcept { return pid_; }

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_file_;
  int status_ = -1;
};

}  // namespace program_executor::test
