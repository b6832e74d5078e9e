// The SQL of the step protocol (docs/architecture.md, "The step protocol"),
// built once per store from the dialect's capabilities: each statement a step
// runs, by name, as PowerDNS names its backends' queries. The lease fence,
// the condition under which a claim's holder may change its step, is written
// here and only here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace program_executor::store {

class Dialect;

namespace detail {

/// " AND" the program neither finished nor errored. Not "finished_at IS NULL
/// AND errored_at IS NULL", which is the predicate of the partial overdue
/// index: on a table without statistics yet, PostgreSQL then scans that index
/// (every running program) instead of finding the one row by run_id.
inline constexpr std::string_view still_running = " AND COALESCE(finished_at, errored_at) IS NULL";

/// The lease fence: the row of :run_id, still at :step, under the claim
/// :token (bound in that order). `suffix` tells the steps of a batch apart
/// (":run_id0", ":step0", ":token0"). A claim's holder changes its step only
/// under this condition and still_running, so a stale claim or a duplicated
/// message never moves a program.
std::string lease_fence(std::string_view suffix = {});

/// The statements of the step protocol on one table. The comment of each
/// says what it binds, in order; "fence" is lease_fence()'s run id, step and
/// token. Statements for a batch are built for its size.
struct StepStatements {
  StepStatements(const Dialect& dialect, const std::string& quoted_table);

  /// UPDATE ... RETURNING (Dialect::update_returning): a batch of claims or
  /// commits is one statement, a step is claimed before its row is read, and
  /// a batch of rows is read in one query.
  bool batch_statements;
  /// Statements kept prepared per session (Dialect::prepares_on_server):
  /// parsed and planned once per connection instead of on every step.
  bool keep_prepared;

  /// run_id, jobs, job_data, program_data, expect (ms), run_id again. Where
  /// we created the table, its unique run_id index refuses a duplicate; the
  /// original's index is not unique, so the insert checks too.
  std::string insert;
  /// run_id: the row (RowReader, all columns); the lowest id where a table
  /// taken over from program-executor-js holds a run id more than once.
  std::string find;
  /// owner, lease (ms), run_id, step: one step claimed, nothing returned.
  std::string claim;
  /// run_id: the token and crash counts of the claim just taken.
  std::string claim_read;
  /// expect (ms), fence.
  std::string advance;
  /// fence.
  std::string finish;
  /// lease (ms), fence: only a claim that is still held.
  std::string renew;
  /// expect (ms), fence.
  std::string release;
  /// message, expect (ms), fence.
  std::string record_retry;
  /// message, expect (ms), fence.
  std::string record_isolated_crash;
  /// message, fence.
  std::string fail;
  /// run_id, token: whatever the step and state.
  std::string drop_claim;
  /// run_id: id, job_data, lease_token and when the program ended (NULL:
  /// running), the row locked until the transaction ends (SQLite: the write
  /// transaction holds it), so two read-modify-writes never lose an update.
  std::string read_job_data;
  /// job_data, id.
  std::string write_job_data;

  /// `count` run ids: every row of them (RowReader, all columns), by id.
  std::string find_many(std::size_t count) const;
  /// owner, lease (ms), then run_id and step per request. Returns run_id,
  /// lease_token, step_crash_count, step_isolated_crash_count per claim.
  std::string claim_many(std::size_t count) const;
  /// The condition of claim_many's rows: run_id and step per request.
  std::string requested(std::size_t count) const;
  /// Whether claim_unread() exists: UPDATE ... RETURNING and a JSON array
  /// length, so the step can be computed from the job list.
  bool claims_unread() const noexcept { return !jobs_count_.empty(); }
  /// owner, lease (ms), then run_id and jobs_left per request: claims the
  /// step that many jobs before the end of the job list. Returns each claimed
  /// row (RowReader, without job_data and program_data).
  /// `free_only`: only steps nobody holds a claim on, expired or not, so a
  /// takeover (which counts a crash, and with the history on records the
  /// `crashed` attempt in claim_all's transaction) goes through claim_all.
  std::string claim_unread(std::size_t count, bool free_only = false) const;
  /// expect (ms), then a fence per step. Returns the run_id of each row moved.
  std::string advance_many(std::size_t count) const;
  /// A fence per step. Returns the run_id of each row finished.
  std::string finish_many(std::size_t count) const;
  /// PostgreSQL: advance_many, finish_many with the steps given as rows of
  /// `source`, whose columns are r (run_id), s (step), t (token) and l
  /// (true: the program's last step), so one statement serves a batch of
  /// any size. advance_from binds expect (ms).
  std::string advance_from(std::string_view source) const;
  std::string finish_from(std::string_view source) const;

 private:
  const Dialect& dialect_;  ///< owned by the Database, which outlives the store
  std::string table_;
  std::string jobs_count_;  ///< SQL: the length of the jobs array; empty: no claim_unread
  std::string claim_set_;   ///< UPDATE ... SET of a claim
  std::string claim_free_;  ///< " AND" nobody holds an unexpired claim
  std::string advance_set_;
  std::string finish_set_;
  std::string find_many_prefix_;  ///< find_many() up to its list of run ids
  std::string claimed_columns_;   ///< RowReader's columns without job_data and program_data

  /// UPDATE with `set`, for a claim's holder: under the fence, still running.
  std::string fenced(const std::string& set) const;
  /// The same for `count` steps at once, returning the run_id of each.
  std::string fenced_many(const std::string& set, std::size_t count) const;
  /// The same for the rows of `source` whose l is `last`.
  std::string fenced_from(const std::string& set, std::string_view source, bool last) const;
};

}  // namespace detail
}  // namespace program_executor::store
