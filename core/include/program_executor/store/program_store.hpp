// Every operation the daemon and the CLI perform on the bookkeeping table.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/program_row.hpp"

namespace program_executor::store {

/// A database failure (connection lost, constraint violated, bad SQL).
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The program ended (cancelled) while one of its steps ran: the step's
/// holder may change nothing more (update_job_data).
class ProgramEnded : public StoreError {
 public:
  using StoreError::StoreError;
};

/// A worker's claim on one step of one program (see docs/architecture.md,
/// "The step protocol"). Only the holder of the latest claim may change the
/// step: every state change names the claim's fencing token.
struct StepClaim {
  std::int64_t token = 0;  ///< fencing token, +1 on every claim of the row
  int crashes = 0;         ///< claims of this step that ended without a release (a process died)
  /// Of those, the deaths of an isolated worker process running this step
  /// alone: the step's own doing.
  int isolated_crashes = 0;
};

/// One step a worker wants to claim (ProgramStore::claim_all).
struct ClaimRequest {
  std::string run_id;
  int step = 0;
};

/// A step to claim on its message's word, before its row was read
/// (ProgramStore::claim_unread): the step `jobs_left` jobs before the end of
/// the program's job list, as a step message in the original's shape says.
struct UnreadClaim {
  std::string run_id;
  int jobs_left = 0;
};

/// A claim with the row as the claim left it, but for job_data and
/// program_data, which are not read (empty objects): the step's message
/// carries the program data, and a job reads its data through the store.
struct ClaimedRow {
  ProgramRow row;
  StepClaim claim;
};

/// One finished step to commit (ProgramStore::commit_all): the step is
/// advanced or, for the program's last step, the program finished.
struct StepCommit {
  std::string run_id;
  int step = 0;
  std::int64_t token = 0;
  bool last = false;
  /// The attempt this commit ends (`finished` or `skipped`), written with it.
  std::optional<AttemptEnding> attempt = std::nullopt;
};

/// A program whose progress is overdue: its lease (or its "expected by" time)
/// passed `stale_after` ago, so its current step message may be lost.
struct StaleProgram {
  std::string run_id;
  int step = 0;
  std::int64_t token = 0;
  std::vector<std::string> jobs;
  nlohmann::json program_data;
};

/// When the recovery sweeper republishes a running program's step.
struct RecoveryWindow {
  RecoveryWindow(std::chrono::milliseconds stale) : stale_after(stale), unclaimed_after(stale) {}
  /// A claimed step whose claim ran out (its worker died) this long ago, or a
  /// step released by this daemon this long after it was expected to move.
  std::chrono::milliseconds stale_after;
  /// A step nobody claimed (lease_owner NULL) this long after it was expected
  /// to move, or, on a row this daemon never touched, since it was updated: in
  /// a deployment shared with program-executor-js (which takes no claim) such
  /// a step may be running on a JS worker, so the wait is longer there.
  std::chrono::milliseconds unclaimed_after;
  /// Programs that last moved longer ago than this are left alone (taking over
  /// an old table must not revive abandoned work); 0: no limit.
  std::chrono::milliseconds max_age{0};
};

/// Which programs `list` returns: newest first, a page at a time.
struct ProgramFilter {
  std::optional<std::string> state;  ///< running, finished, errored or cancelled
  std::optional<std::string> job;    ///< programs whose job list holds this name
  int limit = 20;
  int offset = 0;
  /// Keyset paging: only programs with a lower id (the last id of the
  /// previous page); cheaper than `offset` on a deep page. (Last, so the
  /// aggregate initialisations {state, job, limit, offset} keep their meaning.)
  std::optional<long long> before_id;
  /// Only programs that errored (not cancelled) at most this long ago by the
  /// database's clock (`list --errored-since`).
  std::optional<std::chrono::milliseconds> errored_within = std::nullopt;
  /// Only programs whose step a worker holds, named as the claim names it
  /// (lease_owner "host:pid:worker"): the whole owner, or its first parts
  /// ("host", "host:pid") for every worker of a host or process (`list --worker`).
  std::optional<std::string> worker = std::nullopt;
};

/// How many programs are in each state (ProgramStore::count_by_state).
struct StateCounts {
  long long running = 0;
  long long finished = 0;
  long long errored = 0;
  long long cancelled = 0;
};

/// The bookkeeping operations. Every state change is conditional on the step
/// the caller saw (`WHERE step = :expected`), on the program still running,
/// and on the caller's claim (`AND lease_token = :token`), so a stale or
/// duplicated message can never move a program twice and a worker that lost
/// its claim cannot commit; the boolean results say whether the row matched.
/// Each state change also releases the claim and sets the time by which the
/// program is next expected to move (`lease_until`), which the recovery
/// sweeper watches. Implementations are thread-safe.
class ProgramStore {
 public:
  virtual ~ProgramStore() = default;

  /// Inserts a new row (step 0), expected to move within `expect_within`.
  /// Throws StoreError if the run id exists.
  virtual void insert(const NewProgram& program,
                      std::chrono::milliseconds expect_within = std::chrono::minutes(1)) = 0;

  /// The row with this run id, if any.
  virtual std::optional<ProgramRow> find(const std::string& run_id) = 0;

  /// find() for each run id, in order (one query where the store can).
  virtual std::vector<std::optional<ProgramRow>> find_all(const std::vector<std::string>& run_ids);

  /// Claims each requested step for `owner` until now + `lease`, if its
  /// program is running at that step and nobody holds an unexpired claim; all
  /// in one transaction (one commit for the batch). Taking over an expired
  /// claim that was never released counts a crash. The result has one entry
  /// per request, in order; nullopt: someone else holds the step, or the
  /// program moved on. Throws StoreError if the transaction fails; then no
  /// claim was taken.
  virtual std::vector<std::optional<StepClaim>> claim_all(const std::vector<ClaimRequest>& requests,
                                                          const std::string& owner,
                                                          std::chrono::milliseconds lease) = 0;

  /// claim_all() for one step.
  std::optional<StepClaim> claim(const std::string& run_id, int step, const std::string& owner,
                                 std::chrono::milliseconds lease);

  /// For each request, claims the step its message stands for, if the program
  /// is running at that step and nobody holds an unexpired claim, and returns
  /// the row: the common case of a step in one round trip, with no read
  /// before it. nullopt means "not claimed here", for any reason; the caller
  /// then reads the row and decides (a message early, stale or for a missing
  /// program, or a step someone else holds). A run id asked for twice is
  /// claimed for its first request only. Throws StoreError if the statement
  /// fails; then no claim was taken. The default claims nothing.
  virtual std::vector<std::optional<ClaimedRow>> claim_unread(const std::vector<UnreadClaim>& requests,
                                                              const std::string& owner,
                                                              std::chrono::milliseconds lease);

  /// Extends a held claim to now + `lease`; false if it was lost.
  virtual bool renew(const std::string& run_id, int step, std::int64_t token,
                     std::chrono::milliseconds lease) = 0;

  /// Releases a claim without changing the step (a yield, or trouble before
  /// the job ran); the program is expected to move within `expect_within`.
  /// The state changes of a claim's holder below (release, record_retry,
  /// record_isolated_crash, fail) write `attempt`, when given, in the same
  /// transaction, and only when their row matched: history and state never
  /// disagree.
  virtual bool release(const std::string& run_id, int step, std::int64_t token,
                       std::chrono::milliseconds expect_within,
                       const AttemptEnding* attempt = nullptr) = 0;

  /// Commits each finished step, all in one transaction, if its program is
  /// running at that step under its token: step = step + 1, retry and crash
  /// counts 0, the next step expected within `expect_within`; or, for the
  /// program's last step (`last`), finished_at = now, step_retry_count = 0.
  /// One entry per commit saying whether its row matched. Throws StoreError
  /// if the transaction fails; then nothing was committed.
  virtual std::vector<bool> commit_all(const std::vector<StepCommit>& commits,
                                       std::chrono::milliseconds expect_within) = 0;

  /// commit_all() for one step that is not the program's last.
  bool advance(const std::string& run_id, int step, std::int64_t token,
               std::chrono::milliseconds expect_within);

  /// commit_all() for the program's last step.
  bool finish(const std::string& run_id, int step, std::int64_t token);

  /// step_retry_count += 1, error_message = message, if running at `step`
  /// under `token`; the retry is expected within `expect_within`.
  virtual bool record_retry(const std::string& run_id, int step, std::int64_t token,
                            std::string_view message, std::chrono::milliseconds expect_within,
                            const AttemptEnding* attempt = nullptr) = 0;

  /// The isolated worker process running the step under `token` died: both
  /// crash counters += 1, error_message = message, the claim released; the
  /// step is expected again within `expect_within`.
  virtual bool record_isolated_crash(const std::string& run_id, int step, std::int64_t token,
                                     std::string_view message,
                                     std::chrono::milliseconds expect_within,
                                     const AttemptEnding* attempt = nullptr) = 0;

  /// Clears the claim `token` still holds on the row, whatever its step and
  /// state, after the row refused the step's outcome (the program was
  /// cancelled, or moved on by a worker that takes no claim, as
  /// program-executor-js's): no claim outlives the step it was taken for.
  /// With `attempt`, the holder's attempt is written in the same transaction:
  /// a `stale` one replaces the `crashed` row the takeover wrote for `token`
  /// (AttemptLog::supersede); any other outcome (`cancelled`) is added.
  virtual void drop_claim(const std::string& run_id, std::int64_t token, int step = 0,
                          const AttemptEnding* attempt = nullptr) = 0;

  /// errored_at = now, error_message = message, if running at `step` under `token`.
  virtual bool fail(const std::string& run_id, int step, std::int64_t token,
                    std::string_view message, const AttemptEnding* attempt = nullptr) = 0;

  /// errored_at = cancelled_at = now, error_message = message, no claim, if
  /// still running (any step, any claim).
  virtual bool cancel(const std::string& run_id, std::string_view message) = 0;

  /// Atomically replaces job_data[job_name] with modify(current value or {}),
  /// and returns the new value, if the claim `token` still holds the row.
  /// Throws ProgramEnded if the program was cancelled meanwhile, StoreError
  /// if the run id is unknown or the claim was lost.
  virtual nlohmann::json update_job_data(
      const std::string& run_id, const std::string& job_name, std::int64_t token,
      const std::function<nlohmann::json(const nlohmann::json&)>& modify) = 0;

  /// Programs matching `filter`, newest (highest id) first.
  virtual std::vector<ProgramRow> list(const ProgramFilter& filter) = 0;

  /// Programs per state, in one pass over the table. The default (for stores
  /// without SQL) counts every row through list().
  virtual StateCounts count_by_state();

  /// Restarts an errored or cancelled program at `from_step`, keeping its job
  /// data: errored_at and error_message cleared, retry and crash counts reset,
  /// no claim, expected to move within `expect_within`. False if the program
  /// is not errored or cancelled.
  virtual bool resume(const std::string& run_id, int from_step,
                      std::chrono::milliseconds expect_within) = 0;

  /// Running programs that are overdue (see RecoveryWindow). At most
  /// `limit`, oldest first.
  virtual std::vector<StaleProgram> overdue(const RecoveryWindow& window, int limit) = 0;

  /// Running programs that would be overdue but last moved before
  /// window.max_age: left alone, counted for the log.
  virtual long long count_abandoned(const RecoveryWindow& window) = 0;

  /// Marks an overdue program as being recovered: expected within
  /// `expect_within` from now, if it is still overdue at `step` and `token`.
  /// Only the caller that gets true republishes its step.
  virtual bool begin_recovery(const std::string& run_id, int step, std::int64_t token,
                              const RecoveryWindow& window,
                              std::chrono::milliseconds expect_within) = 0;

  /// Deletes at most `limit` programs that ended (finished, errored or
  /// cancelled: finished_at or errored_at set) more than `ended_more_than`
  /// ago by the database's clock, lowest id first, in one statement; returns
  /// how many it deleted. Running programs are never touched. (`prune` calls
  /// it until a batch comes back short: store/program_pruner.hpp.)
  virtual long long delete_ended(std::chrono::milliseconds ended_more_than, int limit) = 0;

  /// The attempts of `run_id` (the attempt history), oldest first. The
  /// default (for stores without SQL) has none.
  virtual std::vector<AttemptRecord> attempts(const std::string& run_id);

  /// Deletes at most `limit` attempts that ended more than `older_than` ago,
  /// oldest first, in one statement; returns how many (the sweeper calls it
  /// for history.retention, a bounded batch at a time). The default: none.
  virtual long long prune_attempts(std::chrono::milliseconds older_than, int limit);

  /// Restarts a finished program at `from_step`, keeping its job data, as
  /// resume() does for errored ones: finished_at and error_message cleared,
  /// retry and crash counts reset, no claim, expected to move within
  /// `expect_within`. For steps that were skipped (no plugin had the job) and
  /// must run now that it is loaded. False if the program is not finished.
  virtual bool restart_finished(const std::string& run_id, int from_step,
                                std::chrono::milliseconds expect_within) = 0;
};

}  // namespace program_executor::store
