// The queries that serve the operator and the recovery sweeper rather than the
// step path: listing and counting programs, cancelling, resuming and
// restarting them, the overdue programs, and pruning ended ones.
// SqlProgramStore answers its ProgramStore methods of that kind through these.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/store/program_store.hpp"

namespace program_executor::store {

class Database;
class Dialect;

namespace detail {

/// See ProgramStore for what each method does; thread-safe.
class AttemptLog;

class OperatorQueries {
 public:
  /// `history`: the attempts table, where recovering a crashed claim
  /// records its `crashed` attempt and pruning a program deletes its attempts.
  OperatorQueries(Database& database, const AttemptLog& history);

  std::vector<ProgramRow> list(const ProgramFilter& filter);
  StateCounts count_by_state();
  bool cancel(const std::string& run_id, std::string_view message);
  bool resume(const std::string& run_id, int from_step, std::chrono::milliseconds expect_within);
  bool restart_finished(const std::string& run_id, int from_step,
                        std::chrono::milliseconds expect_within);
  std::vector<StaleProgram> overdue(const RecoveryWindow& window, int limit);
  long long count_abandoned(const RecoveryWindow& window);
  bool begin_recovery(const std::string& run_id, int step, std::int64_t token,
                      const RecoveryWindow& window, std::chrono::milliseconds expect_within);
  long long delete_ended(std::chrono::milliseconds ended_more_than, int limit);

 private:
  Database& database_;
  const AttemptLog& history_;
  const Dialect& dialect_;
  std::string table_;        ///< already quoted
  std::string now_;          ///< SQL expression for the current UTC time
  std::string row_columns_;  ///< the columns RowReader reads, in its order
  std::string resume_sql_;   ///< restart_sql() of an errored or cancelled program
  std::string restart_finished_sql_;  ///< restart_sql() of a finished program

  /// SQL for the current UTC time plus the milliseconds bound to `:name`.
  std::string later(const char* name) const;
  /// " AND" the condition of `state` (as ProgramRow::state() decides it).
  std::string state_condition(const std::string& state) const;
  /// The overdue condition (RecoveryWindow), binding :unclaimed and :never,
  /// in that order.
  std::string overdue_sql() const;
  /// " AND" the program moved within :max_age ms (when `limited`).
  std::string recent_sql(bool limited) const;
  /// The UPDATE that runs an ended program again from :step, keeping its job
  /// data: `cleared` (what ended it) and the error message cleared, retry and
  /// crash counts reset, no claim, expected within :expect ms; only where
  /// `ended` holds. Binds step, expect, run_id.
  std::string restart_sql(const std::string& cleared, const std::string& ended) const;
  /// Runs a restart_sql() statement; whether the row matched.
  bool restart(const char* what, const std::string& query, const std::string& run_id, int from_step,
               std::chrono::milliseconds expect_within);
};

}  // namespace detail
}  // namespace program_executor::store
