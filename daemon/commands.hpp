// The subcommands of the program-executor binary. Each returns the exit code
// (cli_errors.hpp: 0 ok, 1 failure, 2 usage).
#pragma once

#include <string>
#include <vector>

namespace program_executor::daemon {

struct CommonOptions {
  std::string config_path = "/etc/program-executor/config.yaml";
  bool json = false;  ///< --json: results as JSON on stdout, for scripts
  /// --log-format: text or json for this invocation; empty: the config's for
  /// `run`, text for the other commands.
  std::string log_format;
  /// --environment-file: the unit's environment file; empty: the one beside the config.
  std::string environment_file;
};

struct ListOptions {
  std::string state;  ///< empty: any
  std::string job;    ///< empty: any
  std::string errored_since;  ///< empty: any; a DURATION back from now or a UTC TIMESTAMP
  std::string worker;  ///< empty: any; HOST, HOST:PID or HOST:PID:WORKER holding the step
  int limit = 20;
  int page = 1;
};

struct CreateOptions {
  std::string jobs;  ///< as given: comma separated
  std::string program_data = "{}";
  std::string job_data = "{}";
  bool strict = false;  ///< refuse jobs no plugin in the plugin directory has
};

struct CheckOptions {
  bool strict = false;   ///< warnings fail the check too
  bool connect = false;  ///< also reach the broker and the database
  std::string user = "program-executor";  ///< the daemon's user, for access checks
};

int run_daemon(const CommonOptions& options);
/// Creates a program; warns (or with `strict`, refuses) jobs no loaded plugin has.
int create_program(const CommonOptions& options, const CreateOptions& create);
int show_status(const CommonOptions& options, const std::string& run_id);
/// Cancels a program; one already cancelled is left alone (exit 0, with a note).
int cancel_program(const CommonOptions& options, const std::string& run_id);
/// Programs newest first, filtered by state and job name, a page at a time.
int list_programs(const CommonOptions& options, const ListOptions& list);
/// `explain RUN_ID`: the program's attempt history as a timeline, and why it
/// is in its state (executor/attempt_timeline.hpp).
int explain_program(const CommonOptions& options, const std::string& run_id);
/// Restarts an errored or cancelled program from the step it stopped at, or
/// from `from_step` (1-based, as status shows), keeping its job data.
int resume_program(const CommonOptions& options, const std::string& run_id, int from_step);
/// Applies the missing schema migrations to the configured table (creating it,
/// or taking over program-executor-js's) and prints what it did; with
/// `check_only`, changes nothing (a missing SQLite file is not created) and
/// exits 1 if migrations are missing.
int migrate_schema(const CommonOptions& options, bool check_only);
/// Validates the configuration, loads every plugin with the trust checks,
/// looks for secrets other users can read and files the daemon's user cannot
/// read; with `connect`, reaches the broker and the database. Problems exit 1,
/// warnings only with `strict`; one line each on stderr.
int check_config(const CommonOptions& options, const CheckOptions& check);
int print_version(const CommonOptions& options);

}  // namespace program_executor::daemon
