// The attempt history (`<table>_attempts`, schema version 6): one row per
// attempt of a step, written with the step's state change so history and
// state never disagree (docs/architecture.md, "Attempt history").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace program_executor::store {

/// The name of the attempts table of bookkeeping table `table`.
std::string attempts_table(const std::string& table);

/// How an attempt ended: the `outcome` column's values.
namespace attempt_outcome {
inline constexpr std::string_view finished = "finished";    ///< committed: the step moved on
inline constexpr std::string_view retry = "retry";          ///< RetryableError: tried again later
inline constexpr std::string_view yield = "yield";          ///< a checkpoint past its time: resumed later
inline constexpr std::string_view errored = "errored";      ///< a failure that ended the program
inline constexpr std::string_view ignored = "ignored";      ///< IgnorableError: ended the program, expected
inline constexpr std::string_view skipped = "skipped";      ///< no plugin has the job: counted as done
inline constexpr std::string_view cancelled = "cancelled";  ///< the program was cancelled while it ran
inline constexpr std::string_view crashed = "crashed";      ///< its process died (recorded on takeover)
inline constexpr std::string_view stale = "stale";          ///< its claim was taken over while it ran on
}  // namespace attempt_outcome

/// What a worker knows of an attempt it ends, written by the store with the
/// state change it makes (ProgramStore::commit_all, release, record_retry,
/// fail, ...). The database's clock dates it: ended now, started
/// `duration_ms` before.
struct AttemptEnding {
  std::string job;
  int attempt = 1;       ///< the job's attempt as JobContext::attempt() saw it
  std::string worker;    ///< the claim's lease_owner: host:pid:worker
  std::string outcome;   ///< one of attempt_outcome
  long long duration_ms = 0;
  std::string error;           ///< empty: none; cut at 64 KiB (truncate_attempt_error)
  std::string exception_type;  ///< empty: none
};

/// One row of the attempts table, as read back (ProgramStore::attempts).
struct AttemptRecord {
  long long id = 0;
  std::string run_id;
  int step = 0;
  std::string job;
  int attempt = 1;
  std::string worker;
  std::int64_t token = 0;  ///< the claim's fencing token
  std::string started_at;  ///< UTC ISO 8601
  std::string ended_at;    ///< UTC ISO 8601
  long long duration_ms = 0;
  std::string outcome;
  std::optional<std::string> error;
  std::optional<std::string> exception_type;
};

/// The longest error an attempt keeps, in bytes, before the marker.
inline constexpr std::size_t attempt_error_limit = 64 * 1024;

/// `message` cut to attempt_error_limit bytes at a character boundary, with
/// "… [truncated, N bytes]" appended when it was longer.
std::string truncate_attempt_error(std::string_view message);

}  // namespace program_executor::store
