// Named crash points in the step protocol, for fault-injection tests only.
//
// `PE_CRASH_POINT("after_commit");` compiles to nothing unless the build
// defines PE_CRASH_POINTS (CMake option -DPE_CRASH_POINTS=ON, for test builds
// only; never in a release). In such a build, a process started with
//
//   PE_CRASH_POINT=<name>            the one point that may fire in this process
//   PE_CRASH_PROBABILITY=<p>         chance it fires on each pass, 0..1 (default 1)
//
// writes one line to stderr and kills itself with SIGKILL when it passes the
// named point and the draw succeeds: no destructors, no flush, no ack, exactly
// like a crash or an OOM kill. The line is a JSON object, so it sits among
// the daemon's JSON log lines: {"event":"crash_point.fired","point":...,
// "pid":...,"t_ns":...} (t_ns: CLOCK_REALTIME in nanoseconds). The variables
// are read once, on the first pass through any crash point, so changing them
// later has no effect.
//
// The points of the step protocol (tests/chaos drives them):
//
//   after_claim      the step is claimed (lease taken), before the job runs
//   after_job        the job returned, before anything of its outcome is written
//   before_commit    the outcome is decided; the step's database commit has not happened
//   after_commit     the step is committed in the database, before the next
//                    step is published
//   after_publish    the next step is published, before the current delivery is acked
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace program_executor::executor {

/// The crash point names the step protocol uses (see above).
inline constexpr std::string_view crash_point_names[] = {
    "after_claim", "after_job", "before_commit", "after_commit", "after_publish"};

/// Which crash point is armed in this process, and how likely it fires.
struct CrashPointSettings {
  std::string name;          ///< empty: no crash point is armed
  double probability = 1.0;  ///< 0 never, 1 on every pass
};

/// Parses the values of PE_CRASH_POINT and PE_CRASH_PROBABILITY (null when
/// unset). An unset or empty name arms nothing. Throws std::invalid_argument
/// for a probability that is not a number in [0, 1] (a misconfigured chaos
/// run must not silently never crash).
CrashPointSettings parse_crash_point_settings(const char* name, const char* probability);

/// Whether point `point` fires, given the armed settings and a uniform draw in
/// [0, 1): the names must match exactly and the draw be below the probability
/// (so 0 never fires and 1 always does).
bool crash_point_fires(const CrashPointSettings& settings, std::string_view point, double draw);

/// The settings of this process, read from its environment on first use and
/// cached. An invalid probability is reported once on stderr and disarms
/// every point (a test build only; the daemon must not refuse to run for it).
const CrashPointSettings& process_crash_point_settings();

/// The decision for one pass through `point`, drawing from a per-thread
/// generator; returns the line it would log when the point fires.
std::optional<std::string> crash_point_decision(std::string_view point);

/// What PE_CRASH_POINT expands to: kills the process with SIGKILL when the
/// point fires (after one line on stderr), returns otherwise.
void crash_point(std::string_view point);

}  // namespace program_executor::executor

#if defined(PE_CRASH_POINTS)
#define PE_CRASH_POINT(name) ::program_executor::executor::crash_point(name)
#else
#define PE_CRASH_POINT(name) static_cast<void>(0)
#endif
