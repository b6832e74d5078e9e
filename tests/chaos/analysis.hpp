// What the chaos harness concludes from what it recorded: the executions the
// recorder plugin logged, the daemons' JSON log events and the faults it
// injected. Pure functions over those records (no I/O), so the checks are
// unit-tested on their own (tests/chaos/analysis_test.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace program_executor::chaos {

/// Nanoseconds since the epoch, CLOCK_REALTIME (system_clock): the one clock
/// the harness, the recorder and the crash points share.
using Nanos = std::int64_t;

/// Now, in Nanos.
Nanos now_ns();

/// "2026-01-02T03:04:05.678Z" (the daemon log's `ts`) as Nanos; nullopt when malformed.
std::optional<Nanos> parse_iso_utc(std::string_view text);

/// One line of the recorder's file (PE_CHAOS_LOG):
/// "<start|end|kill> <run_id> <step> <attempt> <pid> <t_ns> [<tid> [<ppid>]]".
struct ExecutionLine {
  std::string kind;
  std::string run_id;
  int step = 0;
  int attempt = 0;
  long long pid = 0;
  Nanos t = 0;
  long long tid = 0;   ///< 0 when the line has none
  long long ppid = 0;  ///< the parent process (an isolated step's daemon); 0 when none
};

/// Parses one recorder line; nullopt for anything else (a line cut by a crash).
std::optional<ExecutionLine> parse_execution_line(std::string_view line);

/// One execution of one step by one worker thread.
struct Execution {
  std::string run_id;
  int step = 0;
  int attempt = 0;
  long long pid = 0;
  long long tid = 0;
  long long ppid = 0;  ///< see ExecutionLine
  Nanos start = 0;
  Nanos end = 0;           ///< its end line, else the death of its process
  bool completed = false;  ///< an "end" line was written (the job returned)
  bool killed = false;     ///< ended by the death of its process (no end line)
};

/// Pairs each start line with the next end or kill line of the same process,
/// thread, run id and step. An execution without one ended when its process
/// died: `deaths[pid]`; for a process of its own that a daemon started to run
/// one step isolated, which dies with that daemon (PR_SET_PDEATHSIG), no later
/// than `deaths[ppid]`; or `unknown_end` when the death is unknown (still
/// running when the harness stopped looking).
std::vector<Execution> build_executions(const std::vector<ExecutionLine>& lines,
                                        const std::map<long long, Nanos>& deaths,
                                        Nanos unknown_end);

/// Two executions of the same (run id, step) on different workers (another
/// process, or another thread of one process) whose [start, end] intervals
/// intersect: what a claim with fencing must prevent.
struct Overlap {
  Execution first;
  Execution second;
};
std::vector<Overlap> find_overlaps(const std::vector<Execution>& executions);

/// One JSON line of a daemon log, reduced to what the checks use.
struct LogEvent {
  std::string event;
  Nanos t = 0;  ///< from `t_ns` when present, else from `ts` (millisecond precision)
  std::string run_id;
  int step = -1;
  long long pid = 0;  ///< crash_point.fired only
  std::string point;  ///< crash_point.fired only
  std::string message;
};

/// Parses a daemon log line; nullopt for lines that are not JSON objects with an `event`.
std::optional<LogEvent> parse_log_line(std::string_view line);

using StepKey = std::pair<std::string, int>;  ///< (run id, step)

/// How many times each (run id, step) was reported by events named `event`.
std::map<StepKey, int> count_per_step(const std::vector<LogEvent>& events, std::string_view event);

/// Steps reported more than once by `counts` (double commits when counting commits).
std::vector<std::pair<StepKey, int>> repeated(const std::map<StepKey, int>& counts);

/// The first time in `sorted_times` strictly after `t`; nullopt when none.
std::optional<Nanos> first_after(const std::vector<Nanos>& sorted_times, Nanos t);

/// A run that moved on: a commit of one of its steps, or its end.
struct Progress {
  Nanos t = 0;
  int step = -1;  ///< the step committed; -1 for the program's end
};

/// The runs a worker process had in hand when it died at `death`: for each of
/// its threads, the run of its last execution started before `death`, unless
/// another worker started a later step of that run before `death` or the run
/// had ended by then (`ends`). Returns (run id, step) pairs.
std::vector<StepKey> in_flight_at_death(const std::vector<Execution>& executions, long long pid,
                                        Nanos death, const std::map<std::string, Nanos>& ends);

/// How long after `at` the run `key` progressed again: the first progress
/// event of that run strictly after `at` at step >= key.second (or its end);
/// nullopt when it never did.
std::optional<Nanos> resumed_after(const std::map<std::string, std::vector<Progress>>& progress,
                                   const StepKey& key, Nanos at);

/// One run of one step of a program: when its job started, and when it
/// returned if it did (an execution cut by a death has no end).
struct StepSpan {
  std::string run_id;
  int step = 0;
  Nanos start = 0;
  std::optional<Nanos> end;
};

/// Spans from a daemon's `job.started` / `job.finished` events (info level):
/// each start paired with the next finish of the same run id and step, in
/// time order. Used by pe-bench, whose jobs leave no other record.
std::vector<StepSpan> spans_from_events(const std::vector<LogEvent>& events);

/// Spans from the recorder's executions (chaos-run).
std::vector<StepSpan> spans_from_executions(const std::vector<Execution>& executions);

/// How long a program stood still between two consecutive steps: from the
/// end of step `step - 1` to the start of step `step`.
struct StepGap {
  std::string run_id;
  int step = 0;   ///< the later step (>= 1)
  Nanos from = 0;  ///< the latest end of step - 1 before `to`
  Nanos to = 0;    ///< the start of step `step`'s first run that returned (any run if none did)
  double seconds() const { return static_cast<double>(to - from) / 1e9; }
};

/// Every gap between consecutive steps of every program in `spans`. Steps
/// without a run of the step before them (a cut log) give none; step 0 gives
/// none (it has no step before it: its wait is the queue's, reported apart).
std::vector<StepGap> step_gaps(const std::vector<StepSpan>& spans);

/// The longest of `gaps`; nullopt when empty.
std::optional<StepGap> longest_gap(const std::vector<StepGap>& gaps);

/// When an injected fault acted: a daemon's death (from == to) or a service
/// restart (command start to end).
struct FaultWindow {
  Nanos from = 0;
  Nanos to = 0;
};

/// Whether a fault acted within [from, to].
bool fault_within(const std::vector<FaultWindow>& faults, Nanos from, Nanos to);

/// The `program.recovered` events that no fault explains: no fault acted
/// between the program's last move before the event (the latest start or end
/// of any of its steps in `spans`, else `created[run id]`, else the epoch)
/// and the event. A recovery is only ever needed after a death or a lost
/// message; one without a fault is a program the daemons left standing.
std::vector<LogEvent> recoveries_outside_faults(const std::vector<LogEvent>& events,
                                                const std::vector<StepSpan>& spans,
                                                const std::map<std::string, Nanos>& created,
                                                const std::vector<FaultWindow>& faults);

// ---- the attempt history (`<table>_attempts`, schema version 6) ----------

/// One attempt as the attempt history holds it: the columns the checks use.
struct HistoryAttempt {
  int step = 0;
  std::string job;
  /// finished, skipped, retry, yield, errored, ignored, cancelled, crashed or stale
  std::string outcome;
  std::int64_t token = 0;  ///< the claim's fencing token (claim_token)
  bool has_error = false;  ///< the error column is not NULL
  std::string worker;      ///< host:pid:worker
};

/// A program's row, reduced to what the history is compared with.
struct HistoryRow {
  std::string run_id;
  std::vector<std::string> jobs;
  int step = 0;
  bool finished = false;         ///< finished_at set
  bool errored = false;          ///< errored_at set (a cancel sets it too)
  bool cancelled = false;        ///< cancelled_at set
  int crash_count = 0;           ///< step_crash_count
  int isolated_crash_count = 0;  ///< step_isolated_crash_count
};

/// Where a program's history and its row disagree.
struct HistoryViolation {
  std::string run_id;
  int step = -1;  ///< -1: the program as a whole
  std::string what;
};

/// "<run id> step <s>: <what>" (or "<run id>: <what>").
std::string to_string(const HistoryViolation& violation);

/// Whether the attempts of one program (any order) agree with its row, after
/// the daemons stopped. The invariants, each justified at its check in
/// analysis.cpp (tests/chaos/README.md sums them up): one committing attempt
/// (`finished` or `skipped`) per committed step and none for the others; no
/// attempt beyond the row's step, and each names the job the row has there;
/// fencing tokens grow with the step, and a step's committing attempt holds
/// its highest token; an errored program has exactly one ending attempt at
/// its step (`errored`, `ignored`, or the `crashed` of an isolated crash
/// loop), a cancelled, finished or running one none; `cancelled` attempts
/// only in cancelled programs; the current step's `crashed` attempts agree
/// with its crash counters. Returns every disagreement found.
std::vector<HistoryViolation> check_history(const HistoryRow& row,
                                            const std::vector<HistoryAttempt>& attempts);

/// The pid in a worker identity "host:pid:worker"; nullopt when malformed.
std::optional<long long> worker_pid(std::string_view worker);

/// Totals over the attempts read.
struct HistoryFigures {
  long long attempts = 0;
  long long finished = 0;  ///< `finished` (`skipped` counted apart in outcomes)
  long long crashed = 0;
  long long crashed_takeover = 0;  ///< written by whoever took the claim over (no error)
  long long crashed_isolated = 0;  ///< written by the daemon of an isolated process that died
  std::map<std::string, long long> outcomes;
  void add(const std::vector<HistoryAttempt>& attempts);
};

/// min / median / max of a sample (seconds); n == 0 when empty.
struct Summary {
  std::size_t n = 0;
  double min = 0;
  double median = 0;
  double max = 0;
};
Summary summarize(std::vector<double> seconds);

/// "n=3 min 0.012 s, median 0.150 s, max 1.200 s", or "n=0".
std::string format_summary(const Summary& summary);

}  // namespace program_executor::chaos
