// ProgramStore on a SOCI session pool.
#pragma once

#include <string>

#include "program_executor/store/program_store.hpp"

namespace soci {
class session;
}  // namespace soci

namespace program_executor::store {

class Database;
class Dialect;

class SqlProgramStore : public ProgramStore {
 public:
  explicit SqlProgramStore(Database& database);

  void insert(const NewProgram& program, std::chrono::milliseconds expect_within) override;
  std::optional<ProgramRow> find(const std::string& run_id) override;
  std::vector<std::optional<ProgramRow>> find_all(const std::vector<std::string>& run_ids) override;
  std::optional<StepClaim> claim(const std::string& run_id, int step, const std::string& owner,
                                 std::chrono::milliseconds lease) override;
  std::vector<std::optional<StepClaim>> claim_all(const std::vector<ClaimRequest>& requests,
                                                  const std::string& owner,
                                                  std::chrono::milliseconds lease) override;
  std::vector<std::optional<ClaimedRow>> claim_unread(const std::vector<UnreadClaim>& requests,
                                                      const std::string& owner,
                                                      std::chrono::milliseconds lease) override;
  bool renew(const std::string& run_id, int step, std::int64_t token,
             std::chrono::milliseconds lease) override;
  bool release(const std::string& run_id, int step, std::int64_t token,
               std::chrono::milliseconds expect_within) override;
  bool advance(const std::string& run_id, int step, std::int64_t token,
               std::chrono::milliseconds expect_within) override;
  bool finish(const std::string& run_id, int step, std::int64_t token) override;
  std::vector<bool> commit_all(const std::vector<StepCommit>& commits,
                               std::chrono::milliseconds expect_within) override;
  bool record_retry(const std::string& run_id, int step, std::int64_t token,
                    std::string_view message, std::chrono::milliseconds expect_within) override;
  bool record_isolated_crash(const std::string& run_id, int step, std::int64_t token,
                             std::string_view message,
                             std::chrono::milliseconds expect_within) override;
  void drop_claim(const std::string& run_id, std::int64_t token) override;
  bool fail(const std::string& run_id, int step, std::int64_t token,
            std::string_view message) override;
  bool cancel(const std::string& run_id, std::string_view message) override;
  nlohmann::json update_job_data(
      const std::string& run_id, const std::string& job_name, std::int64_t token,
      const std::function<nlohmann::json(const nlohmann::json&)>& modify) override;
  std::vector<ProgramRow> list(const ProgramFilter& filter) override;
  StateCounts count_by_state() override;
  bool resume(const std::string& run_id, int from_step,
              std::chrono::milliseconds expect_within) override;
  std::vector<StaleProgram> overdue(const RecoveryWindow& window, int limit) override;
  long long count_abandoned(const RecoveryWindow& window) override;
  bool begin_recovery(const std::string& run_id, int step, std::int64_t token,
                      const RecoveryWindow& window,
                      std::chrono::milliseconds expect_within) override;
  long long delete_ended(std::chrono::milliseconds ended_more_than, int limit) override;
  bool restart_finished(const std::string& run_id, int from_step,
                        std::chrono::milliseconds expect_within) override;

 private:
  Database& database_;
  const Dialect& dialect_;
  std::string table_;    ///< already quoted
  std::string now_;      ///< SQL expression for the current UTC time
  std::string running_;  ///< " AND" the program neither finished nor errored
  /// " AND" the condition of `state` (as ProgramRow::state() decides it).
  std::string state_condition(const std::string& state) const;

  bool multi_row_;       ///< batches as single UPDATE ... RETURNING statements
  std::string jobs_count_;  ///< SQL: the length of the jobs array; empty: claim_unread claims nothing
  /// The statements of every step are prepared once per session and kept
  /// (PostgreSQL, SQLite; SOCI's MySQL backend prepares on the client only).
  bool keep_statements_;

  // Built once: run on every step.
  std::string row_columns_;  ///< the columns RowReader reads, in its order
  std::string claimed_columns_;  ///< the same without job_data and program_data (NULL)
  std::string insert_sql_;
  std::string claim_set_sql_;
  std::string claim_free_sql_;
  std::string advance_set_sql_;
  std::string finish_set_sql_;
  std::string claim_sql_;
  std::string claim_read_sql_;
  std::string advance_sql_;
  std::string finish_sql_;

  /// SQL for the current UTC time plus the milliseconds bound to `:name`.
  std::string later(const char* name) const;
  /// The overdue condition (RecoveryWindow), binding :claimed, :unclaimed,
  /// :never_claimed, in that order.
  std::string overdue_sql() const;
  /// " AND" the program moved within :max_age ms (when `limited`).
  std::string recent_sql(bool limited) const;
  std::optional<StepClaim> claim_in(soci::session& session, const std::string& run_id, int step,
                                    const std::string& owner, std::chrono::milliseconds lease);
  bool commit_in(soci::session& session, const StepCommit& commit,
                 std::chrono::milliseconds expect_within);
  std::vector<std::optional<StepClaim>> claim_all_returning(const std::vector<ClaimRequest>& requests,
                                                            const std::string& owner,
                                                            std::chrono::milliseconds lease);
  std::vector<bool> commit_all_returning(const std::vector<StepCommit>& commits,
                                         std::chrono::milliseconds expect_within);
  bool commit_in_guarded(const StepCommit& commit, std::chrono::milliseconds expect_within);
};

}  // namespace program_executor::store
