// Every operation the daemon and the CLI perform on the bookkeeping table.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "program_executor/store/program_row.hpp"

namespace program_executor::store {

/// A database failure (connection lost, constraint violated, bad SQL).
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The bookkeeping operations. Every state change is conditional on the step
/// the caller saw (`WHERE step = :expected` and the program still running), so
/// a stale or duplicated message can never move a program twice; the boolean
/// results say whether the row matched. Implementations are thread-safe.
class ProgramStore {
 public:
  virtual ~ProgramStore() = default;

  /// Inserts a new row (step 0). Throws StoreError if the run id exists.
  virtual void insert(const NewProgram& program) = 0;

  /// The row with this run id, if any.
  virtual std::optional<ProgramRow> find(const std::string& run_id) = 0;

  /// step = step + 1, step_retry_count = 0, if still running at `step`.
  virtual bool advance(const std::string& run_id, int step) = 0;

  /// finished_at = now, step_retry_count = 0, if still running at `step`.
  virtual bool finish(const std::string& run_id, int step) = 0;

  /// step_retry_count += 1, error_message = message, if still running at `step`.
  virtual bool record_retry(const std::string& run_id, int step, std::string_view message) = 0;

  /// errored_at = now, error_message = message, if still running at `step`.
  virtual bool fail(const std::string& run_id, int step, std::string_view message) = 0;

  /// errored_at = now, error_message = message, if still running (any step).
  virtual bool cancel(const std::string& run_id, std::string_view message) = 0;

  /// Atomically replaces job_data[job_name] with modify(current value or {}),
  /// and returns the new value. Throws StoreError if the run id is unknown.
  virtual nlohmann::json update_job_data(
      const std::string& run_id, const std::string& job_name,
      const std::function<nlohmann::json(const nlohmann::json&)>& modify) = 0;
};

}  // namespace program_executor::store
