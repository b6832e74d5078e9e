// ProgramStore on a SOCI session pool.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "program_executor/store/program_store.hpp"

namespace soci {
class session;
}  // namespace soci

namespace program_executor::store {

class Database;
class Dialect;
class SessionLease;

namespace detail {
struct StepStatements;
class OperatorQueries;
class AttemptLog;
}  // namespace detail

/// The step path runs the named statements of store/step_statements.hpp;
/// what serves the operator and the sweeper is store/operator_queries.hpp.
class SqlProgramStore : public ProgramStore {
 public:
  /// `history`: write the attempt history (history.enabled); it is read
  /// either way.
  explicit SqlProgramStore(Database& database, bool history = true);
  ~SqlProgramStore() override;

  void insert(const NewProgram& program, std::chrono::milliseconds expect_within) override;
  std::optional<ProgramRow> find(const std::string& run_id) override;
  std::vector<std::optional<ProgramRow>> find_all(const std::vector<std::string>& run_ids) override;
  std::vector<std::optional<StepClaim>> claim_all(const std::vector<ClaimRequest>& requests,
                                                  const std::string& owner,
                                                  std::chrono::milliseconds lease) override;
  std::vector<std::optional<ClaimedRow>> claim_unread(const std::vector<UnreadClaim>& requests,
                                                      const std::string& owner,
                                                      std::chrono::milliseconds lease) override;
  bool renew(const std::string& run_id, int step, std::int64_t token,
             std::chrono::milliseconds lease) override;
  bool release(const std::string& run_id, int step, std::int64_t token,
               std::chrono::milliseconds expect_within,
               const AttemptEnding* attempt = nullptr) override;
  std::vector<bool> commit_all(const std::vector<StepCommit>& commits,
                               std::chrono::milliseconds expect_within) override;
  bool record_retry(const std::string& run_id, int step, std::int64_t token,
                    std::string_view message, std::chrono::milliseconds expect_within,
                    const AttemptEnding* attempt = nullptr) override;
  bool record_isolated_crash(const std::string& run_id, int step, std::int64_t token,
                             std::string_view message,
                             std::chrono::milliseconds expect_within,
                             const AttemptEnding* attempt = nullptr) override;
  void drop_claim(const std::string& run_id, std::int64_t token, int step = 0,
                  const AttemptEnding* attempt = nullptr) override;
  bool fail(const std::string& run_id, int step, std::int64_t token,
            std::string_view message, const AttemptEnding* attempt = nullptr) override;
  nlohmann::json update_job_data(
      const std::string& run_id, const std::string& job_name, std::int64_t token,
      const std::function<nlohmann::json(const nlohmann::json&)>& modify) override;

  // The operator's and the sweeper's (detail::OperatorQueries).
  bool cancel(const std::string& run_id, std::string_view message) override;
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
  std::vector<AttemptRecord> attempts(const std::string& run_id) override;
  long long prune_attempts(std::chrono::milliseconds older_than, int limit) override;

 private:
  Database& database_;
  const Dialect& dialect_;
  std::unique_ptr<const detail::StepStatements> sql_;
  std::unique_ptr<const detail::AttemptLog> history_;
  std::unique_ptr<detail::OperatorQueries> operator_queries_;
  /// Dialect::data_modifying_with: a lone step's advance, and finish, with
  /// its attempt in one statement (AttemptLog::with_changes).
  std::array<std::string, 2> commit_with_attempt_;
  /// Dialect::data_modifying_with: a batch's commits with their attempts,
  /// whatever its size (AttemptLog::batch_commit).
  std::string batch_commit_;

  std::optional<StepClaim> claim_in(soci::session& session, const ClaimRequest& request,
                                    const std::string& owner, long long lease);
  std::vector<std::optional<StepClaim>> claim_all_returning(const std::vector<ClaimRequest>& requests,
                                                            const std::string& owner,
                                                            std::chrono::milliseconds lease);
  bool commit_in(soci::session& session, const StepCommit& commit,
                 std::chrono::milliseconds expect_within);
  std::vector<bool> commit_all_returning(const std::vector<StepCommit>& commits,
                                         std::chrono::milliseconds expect_within);
  bool commit_one(const StepCommit& commit, std::chrono::milliseconds expect_within);
  /// One step's advance or finish on `lease`'s session, kept prepared where
  /// the dialect prepares on the server; whether it matched its row.
  bool commit_step(SessionLease& lease, const StepCommit& commit, std::chrono::milliseconds expect_within);
  /// The state change `query` of a claim's holder (bound by `bind`), and
  /// `attempt` with it in one transaction when the history is on.
  template <class Bind>
  bool change_with_attempt(const char* what, const std::string& run_id, int step, std::int64_t token,
                           const std::string& query, const AttemptEnding* attempt, Bind&& bind);
  /// The `crashed` attempts of the claims `requests` take over (claim_all).
  void record_takeovers(soci::session& session, const std::vector<const ClaimRequest*>& requests);
};

}  // namespace program_executor::store
