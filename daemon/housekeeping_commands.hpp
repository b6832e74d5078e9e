// The operator's housekeeping commands: `prune`, `parked list|requeue|drop`,
// `jobs` (the plugin directory against what the running daemons loaded) and
// `resume --rerun-finished`. main() registers them with one object, so the
// rest of the command line stays as it is.
#pragma once

#include <optional>
#include <string>

#include "commands.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace program_executor::daemon {

struct PruneOptions {
  std::string finished_before;  ///< DURATION or TIMESTAMP (store/program_pruner.hpp)
  int batch_size = 1000;
};

struct ParkedOptions {
  std::string run_id;  ///< requeue/drop: only this run id's messages
  bool all = false;    ///< requeue/drop: every message (one of the two is required)
  int limit = 0;       ///< list: default 100; requeue/drop: 0 is no limit
};

/// Registers the housekeeping subcommands on `app` and the options they add
/// to `resume` and `jobs`, then runs the one the command line chose.
class HousekeepingCommands {
 public:
  /// Adds `prune` and `parked` to `app`; their -c/--json fill `common`.
  HousekeepingCommands(CLI::App& app, CommonOptions& common);

  /// `resume --rerun-finished`: restart a finished program (needs --from-step).
  void extend_resume(CLI::App* resume);
  /// `jobs --state-directory DIR`: where running daemons record what they loaded.
  void extend_jobs(CLI::App* jobs);

  /// After parsing: the exit code of the housekeeping command chosen, or
  /// nullopt when the command line chose another command. `run_id` and
  /// `from_step` are `resume`'s arguments as main() parsed them.
  std::optional<int> run(const std::string& run_id, int from_step);

 private:
  CommonOptions& common_;
  CLI::App* prune_ = nullptr;
  CLI::App* parked_list_ = nullptr;
  CLI::App* parked_requeue_ = nullptr;
  CLI::App* parked_drop_ = nullptr;
  CLI::App* resume_ = nullptr;
  CLI::App* jobs_ = nullptr;
  PruneOptions prune_options_;
  ParkedOptions parked_options_;
  bool rerun_finished_ = false;
  std::string state_directory_;
};

/// Deletes programs that ended before --finished-before, in batches.
int prune_programs(const CommonOptions& options, const PruneOptions& prune);
/// Lists, requeues or drops the messages of `<queue>-parked`.
int parked_list(const CommonOptions& options, const ParkedOptions& parked);
int parked_requeue(const CommonOptions& options, const ParkedOptions& parked);
int parked_drop(const CommonOptions& options, const ParkedOptions& parked);
/// Every job the plugin directory provides and whether the running daemons
/// of this configuration have loaded it (records under `state_directory`,
/// or /var/lib/program-executor and its subdirectories when empty).
int show_jobs(const CommonOptions& options, const std::string& state_directory);
/// Restarts a finished program at `from_step` (1-based), keeping its job data.
int rerun_finished_program(const CommonOptions& options, const std::string& run_id, int from_step);

}  // namespace program_executor::daemon
