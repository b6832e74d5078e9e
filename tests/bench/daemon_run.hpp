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

#include "program_executor/amqp/connection_settings.hpp"
#include "program_executor/amqp/queue_topology.hpp"

namespace program_executor::bench {

/// history.retention of the daemons under test (the daemon's default);
/// seeded old attempts (DaemonRunSpec::old_attempts) are twice as old.
constexpr int history_retention_days = 30;

/// Where and how to run the daemon; one plan serves every run of a bench.
struct DaemonPlan {
  std::string daemon;       ///< path of program-executor
  std::string plugins;      ///< directory holding demo.so
  std::string amqp_url;  ///< the bench's own connections; the daemons' too without amqp_urls
  /// A cluster's nodes (pe-bench --cluster): the daemons get them as
  /// amqp.urls, with quorum queues; empty: amqp_url and classic queues.
  std::vector<std::string> amqp_urls;
  std::string backend;
  std::string connection;
  /// info or lower: every step's job.started and job.finished are logged, and
  /// the gaps between steps measured from them; the log format is JSON.
  std::string log_level = "info";
  std::optional<int> prefetch;  ///< unset: the daemon's default
  bool history = true;          ///< history.enabled: the attempt history written or not
  std::filesystem::path work_dir;  ///< configs and logs
  std::chrono::seconds timeout{600};
};

/// What the programs' jobs do: demo.noop (the daemon's own cost only), or
/// demo.sleep for `job_ms`, with every `slow_every`-th program sleeping
/// `slow_ms` instead (issue 17's mix of jobs either side of the 5 ms line).
struct JobMix {
  int job_ms = -1;     ///< < 0: demo.noop
  int slow_every = 0;  ///< 0: every program alike
  int slow_ms = 0;
  bool sleeps() const { return job_ms >= 0 || slow_every > 0; }
  std::string job() const { return sleeps() ? "demo.sleep" : "demo.noop"; }
  /// The job data of program `index` (JSON text).
  std::string job_data(int index) const;
  /// Mean milliseconds a job sleeps.
  double mean_ms() const;
  /// "demo.noop", "demo.sleep 20 ms", "demo.sleep 0 ms, every 8th 30 ms".
  std::string describe() const;
};

/// What one daemon run is asked to do.
struct DaemonRunSpec {
  std::string label;
  int workers = 2;
  int processes = 1;
  int programs = 0;
  int jobs = 0;
  JobMix mix;
  long long filler_rows = 0;  ///< finished rows put in the table first
  int latency_samples = 0;    ///< create->finish samples on the idle daemon after the run
  /// Attempts seeded in `<table>_attempts` first: older than
  /// history.retention (`attempts_due`), a backlog the daemons prune while the
  /// run is measured; else a day old, the same table the daemons leave alone.
  long long old_attempts = 0;
  bool attempts_due = true;
};

struct DaemonRunResult {
  std::string label;
  int workers = 0;
  int processes = 0;
  long long filler_rows = 0;
  long long steps = 0;
  int programs = 0;
  JobMix mix;
  bool history = true;  ///< history.enabled of the run
  /// The backlog of old attempts (DaemonRunSpec::old_attempts), how long
  /// seeding it took, and how many of them the daemons deleted between their
  /// spawn and the end of the measured run (`prune_seconds`).
  long long old_attempts = 0;
  bool attempts_due = false;
  double seed_seconds = 0;
  long long attempts_pruned = 0;
  double prune_seconds = 0;
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
  /// From the daemons' logs: program.recovered events (a program the
  /// sweeper had to republish: none is expected in a run without faults).
  int recovered = 0;
  /// From job.finished of one step to job.started of the next step of the
  /// same program (the run of that step that returned), per program; the
  /// longest of the run. Unset when the log level hides job events.
  bool gaps_logged = false;
  long long gaps_measured = 0;
  double longest_gap_seconds = 0;
  std::string longest_gap_run_id;
  int longest_gap_step = 0;  ///< the later step
  double steps_per_second() const { return seconds > 0 ? static_cast<double>(steps) / seconds : 0; }
  double programs_per_second() const { return seconds > 0 ? programs / seconds : 0; }
  double prune_rows_per_second() const {
    return prune_seconds > 0 ? static_cast<double>(attempts_pruned) / prune_seconds : 0;
  }
  double cpu_us_per_step() const { return steps > 0 ? cpu_seconds * 1e6 / static_cast<double>(steps) : 0; }
};

/// A child process with stdout and stderr appended to a log file; SIGTERM
/// (then SIGKILL) on destruction if still running, so no process the bench
/// started outlives it.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::filesystem::path& log);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  const std::filesystem::path& log() const noexcept { return log_; }
  bool running();
  /// SIGTERM, then SIGKILL after `grace`; the wait status.
  int terminate(std::chrono::seconds grace);

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

/// The last `lines` lines of a file, each indented with "  | ".
std::string tail(const std::filesystem::path& file, std::size_t lines);
/// utime + stime of a process (all its threads), from /proc/PID/stat.
double cpu_seconds(pid_t pid);
/// VmHWM: the peak resident set size of a process, in kB.
long long peak_rss_kb(pid_t pid);

/// `value` as a YAML single-quoted scalar, with ${ escaped from the config loader's variable expansion.
std::string yaml_text(const std::string& value);

/// The daemon's configuration for one run, `<work_dir>/<queue>.yaml`: queue,
/// table, `workers`, plugins, log level (JSON lines), no metrics endpoint.
std::filesystem::path write_config(const DaemonPlan& plan, const std::string& queue, const std::string& table,
                                   int workers);

/// A daemon's queues (its topology), deleted when the run ends however it ends.
class QueueCleanup {
 public:
  QueueCleanup(const amqp::ConnectionSettings& broker, amqp::QueueTopology topology);
  ~QueueCleanup();
  QueueCleanup(const QueueCleanup&) = delete;
  QueueCleanup& operator=(const QueueCleanup&) = delete;

 private:
  amqp::ConnectionSettings broker_;
  amqp::QueueTopology topology_;
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
