// What happened to a program, from its attempt history (`program-executor
// explain`): the timeline of its steps' attempts and one line saying why the
// program is in its state. No I/O: the daemon's command reads the row and the
// attempts and prints what these return.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/program_row.hpp"

namespace program_executor::executor {

/// Why the program is in its state, in one line: "finished: ...",
/// "errored at step 2 (charge) after 3 attempts: ...", "running: step 1
/// (fetch) waits to be retried ...", and so on.
std::string explain_reason(const store::ProgramRow& row,
                           const std::vector<store::AttemptRecord>& attempts);

/// The timeline, one line per attempt (when it started, the step and job,
/// the attempt, its outcome, how long it took and where it ran, its error),
/// with the waits between attempts of a step (retry delays, yields) and a
/// note when the history starts after step 0 (taken over from
/// program-executor-js, or written with history.enabled false); the reason
/// last.
std::vector<std::string> format_timeline(const store::ProgramRow& row,
                                         const std::vector<store::AttemptRecord>& attempts);

/// {"runId", "state", "reason", "attempts": [{"step", "job", "attempt",
/// "outcome", "worker", "startedAt", "endedAt", "durationMs", "error"}]},
/// attempts oldest first, error null when there was none.
nlohmann::json explain_json(const store::ProgramRow& row,
                            const std::vector<store::AttemptRecord>& attempts);

/// The milliseconds from `from` to `to`, both UTC ISO 8601 as the store
/// writes them ("YYYY-MM-DDTHH:MM:SS.mmmZ"); nullopt if either is not.
std::optional<long long> milliseconds_between(const std::string& from, const std::string& to);

}  // namespace program_executor::executor
