// One program as the bookkeeping table holds it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace program_executor::store {

/// A row of the programs table (column names as program-executor-js uses them).
struct ProgramRow {
  long long id = 0;
  std::string run_id;
  std::vector<std::string> jobs;
  int step = 0;
  std::optional<std::string> finished_at;  ///< UTC, ISO 8601
  std::optional<std::string> errored_at;   ///< UTC, ISO 8601
  std::optional<std::string> error_message;
  int step_retry_count = 0;
  nlohmann::json job_data = nlohmann::json::object();
  nlohmann::json program_data = nlohmann::json::object();
  std::string created_at;
  std::string updated_at;
  // The step protocol's columns (added to the original's table; the original ignores them).
  std::optional<std::string> lease_owner;  ///< who holds the current step, while it runs
  std::int64_t lease_token = 0;            ///< fencing token of the latest claim
  std::optional<std::string> lease_until;  ///< claim expiry, or when the program is next expected to move
  int step_crash_count = 0;                ///< processes that died holding the current step
  /// Crashes of the current step running alone in an isolated worker process:
  /// only these are the step's own doing (recovery.max_crashes counts them).
  int step_isolated_crash_count = 0;
  std::optional<std::string> cancelled_at;  ///< set by a cancel (UTC, ISO 8601)

  bool ended() const noexcept { return finished_at.has_value() || errored_at.has_value(); }
  /// "running", "finished", "errored" or "cancelled": from the timestamps,
  /// never from the error message's text.
  std::string state() const;
  /// The row as JSON with the table's column names (for `status --json`).
  nlohmann::json to_json() const;
};

/// A program about to be inserted.
struct NewProgram {
  std::string run_id;
  std::vector<std::string> jobs;
  nlohmann::json program_data = nlohmann::json::object();
  nlohmann::json job_data = nlohmann::json::object();
};

/// The message stored in error_message is cut to the column's 255 characters
/// (Unicode code points, as varchar(255) counts on PostgreSQL and MySQL; whole
/// UTF-8 sequences only).
std::string truncate_error_message(std::string_view message);

}  // namespace program_executor::store
