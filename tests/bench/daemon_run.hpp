// The daemon under test: its configuration, its processes, and what one run
// of it measures (throughput from the first consumer to the last finished
// program, CPU and memory from /proc, create->finish latency when idle).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace program_executor::bench {

/// Where and how to run the daemon; one plan serves every run of a bench.
struct DaemonPlan {
  std::string daemon;       ///< path of program-executor
  std::string plugins;      ///< directory holding demo.so
  std::string amqp_url;
  std::string backend;
  std::string connection;
  std::string log_level = "warn";
  std::optional<int> prefetch;  ///< unset: the daemon's default
  std::filesystem::path work_dir;  ///< configs and logs
  std::chrono::seconds timeout{600};
};

/// What one daemon run is asked to do.
struct DaemonRunSpec {
  std::string label;
  int workers = 2;
  int processes = 1;
  int programs = 0;
  int jobs = 0;
  long long filler_rows = 0;  ///< finished rows put in the table first
  int latency_samples = 0;    ///< create->finish samples on the idle daemon after the run
};

struct DaemonRunResult {
  std::string label;
  int workers = 0;
  int processes = 0;
  long long filler_rows = 0;
  long long steps = 0;
  int programs = 0;
  double seconds = 0;
  double startup_seconds = 0;  ///< spawn to first consumer
  double cpu_seconds = 0;      ///< utime + stime of every process over the run
  long long peak_rss_kb = 0;   ///< highest VmHWM of one process
  double load_before = 0, load_after = 0;  ///< 1-minute load average
  /// 1-job programs: first step published -> finished_at seen, in sample order.
  std::vector<double> latency_ms;
  /// The same from before the row's insert: the whole creation included.
  std::vector<double> create_latency_ms;
  std::vector<double> repeats;  ///< steps/s of every run (--repeat), this one the median
  double steps_per_second() const { return seconds > 0 ? static_cast<double>(steps) / seconds : 0; }
  double programs_per_second() const { return seconds > 0 ? programs / seconds : 0; }
  double cpu_us_per_step() const { return steps > 0 ? cpu_seconds * 1e6 / static_cast<double>(steps) : 0; }
};

/// Runs the daemon once on a table and queue of its own (both removed
/// afterwards): prefills the programs before the daemon starts, starts the
/// processes, measures, optionally samples latency, stops them with SIGTERM.
DaemonRunResult run_daemon(const DaemonPlan& plan, const DaemonRunSpec& spec);

/// The 1-minute load average.
double load_average();

/// "pe_bench_<time>_<pid>_<n>": unique per call, a valid table name; the
/// queue name is the same with '-'.
std::string unique_name();

}  // namespace program_executor::bench
