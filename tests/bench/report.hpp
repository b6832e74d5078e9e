// What one pe-bench run found: printed as a table for people, as JSON for
// scripts, with the targets of issue 6 checked beside the figures.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api_run.hpp"
#include "daemon_run.hpp"
#include "floor.hpp"

namespace program_executor::bench {

struct FloorRun {
  FloorResult result;
  int threads = 0;
  int prefetch = 0;
  int batch = 0;  ///< 0: one message at a time
  double load_before = 0, load_after = 0;
  std::vector<double> repeats;  ///< steps/s of every run (--repeat), this one the median
  double steps_per_second() const { return result.steps_per_second(); }
};

/// --history both: daemon runs alternating off, on, off, on..., the same
/// programs and options; off[i] ran just before on[i].
struct HistoryComparison {
  std::vector<DaemonRunResult> off;
  std::vector<DaemonRunResult> on;
};

/// --prune-rows: daemon runs (history on) alternating without and with a
/// backlog of `rows` old attempts that the daemons prune while measured.
struct PruneComparison {
  long long rows = 0;
  std::vector<DaemonRunResult> plain;
  std::vector<DaemonRunResult> backlog;
};

struct BenchReport {
  std::string backend;
  std::string broker;  ///< without the password
  int programs = 0;
  int jobs = 0;
  int workers = 0;
  int processes = 0;
  std::optional<int> prefetch;
  std::string log_level;
  int repeat = 1;
  double load_at_start = 0;
  std::optional<FloorRun> floor_unpipelined;
  std::optional<FloorRun> floor_pipelined;
  std::optional<DaemonRunResult> daemon;      ///< W workers x P processes, with the latency samples
  std::optional<DaemonRunResult> daemon_rss;  ///< 4 workers, 1 process (the RSS target)
  std::vector<DaemonRunResult> table_sizes;   ///< one per --table-rows size
  std::vector<DaemonRunResult> job_durations; ///< one per --job-ms duration (demo.sleep)
  std::optional<DaemonRunResult> mixed;       ///< --mixed EVERY:MS
  std::optional<double> max_gap;              ///< --max-gap: the bound the runs were held to
  std::optional<ApiRunResult> api;            ///< --api: serve's creates/s and listing latency
  bool api_only = false;                      ///< --api-only: no floor, no daemon run
  std::string history = "on";                 ///< --history: on, off or both
  std::optional<HistoryComparison> history_cost;  ///< --history both
  std::optional<PruneComparison> prune;           ///< --prune-rows
};

/// The run of median steps/s among `runs` (not empty), with every run's
/// steps/s in `repeats` and every run's latency samples pooled.
DaemonRunResult median_run(const std::vector<DaemonRunResult>& runs);

/// The median of `values` (the mean of the middle two for an even count); 0 if empty.
double median(std::vector<double> values);

/// The most steps/s a run could reach: the pipelined floor (broker and
/// database), or the workers' time spent in the jobs themselves
/// (workers x processes x 1000 / mean job ms), whichever is lower. 0 when
/// neither is known.
double steps_bound(const BenchReport& report, const DaemonRunResult& run);

/// The value below which `percent` % of `values` lie (nearest rank); 0 if empty.
double percentile(std::vector<double> values, double percent);

void print_table(std::ostream& out, const BenchReport& report);
nlohmann::json to_json(const BenchReport& report);

}  // namespace program_executor::bench
