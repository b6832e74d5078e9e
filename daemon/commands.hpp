// The subcommands of the program-executor binary. Each returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace program_executor::daemon {

struct CommonOptions {
  std::string config_path = "/etc/program-executor/config.yaml";
  bool json = false;  ///< --json: results as JSON on stdout, for scripts
};

struct ListOptions {
  std::string state;  ///< empty: any
  std::string job;    ///< empty: any
  int limit = 20;
  int page = 1;
};

struct CreateOptions {
  std::vector<std::string> jobs;
  std::string program_data = "{}";
  std::string job_data = "{}";
};

int run_daemon(const CommonOptions& options);
int create_program(const CommonOptions& options, const CreateOptions& create);
int show_status(const CommonOptions& options, const std::string& run_id);
int cancel_program(const CommonOptions& options, const std::string& run_id);
/// Programs newest first, filtered by state and job name, a page at a time.
int list_programs(const CommonOptions& options, const ListOptions& list);
/// Restarts an errored or cancelled program from the step it stopped at, or
/// from `from_step` (1-based, as status shows), keeping its job data.
int resume_program(const CommonOptions& options, const std::string& run_id, int from_step);
/// Every job the plugin directory provides, with its plugin file.
int list_jobs(const CommonOptions& options);
/// Applies the missing schema migrations to the configured table (creating it,
/// or taking over program-executor-js's) and prints what it did; with
/// `check_only`, changes nothing and exits 1 if migrations are missing.
int migrate_schema(const CommonOptions& options, bool check_only);
/// Validates the configuration, loads every plugin with the trust checks and
/// looks for secrets other users can read; 0 when nothing is wrong, else 1
/// with one line per problem on stderr.
int check_config(const CommonOptions& options);
int print_version(const CommonOptions& options);

}  // namespace program_executor::daemon
