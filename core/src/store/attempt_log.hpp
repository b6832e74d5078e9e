// The SQL of the attempt history (`<table>_attempts`, schema version 6): the
// rows the step protocol's statements write beside their state change, in
// their transaction, and the reads and prunes of operators and the sweeper.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "program_executor/store/attempt_record.hpp"

namespace soci {
class session;
class statement;
}  // namespace soci

namespace program_executor::store {

class Dialect;
class SessionLease;
struct StepCommit;

namespace detail {

struct StepStatements;

/// One attempt to write: the step and claim it belongs to, and its ending.
struct AttemptWrite {
  const std::string& run_id;
  int step = 0;
  long long token = 0;
  const AttemptEnding& ending;
};

struct AttemptValues;

/// The values `count` attempts bind in one statement, in the order of the
/// INSERT's columns, attempt after attempt. SOCI keeps their addresses, so
/// they are sized once and live as long as the statement.
class AttemptRows {
 public:
  explicit AttemptRows(std::size_t count);
  ~AttemptRows();
  AttemptRows(const AttemptRows&) = delete;
  AttemptRows& operator=(const AttemptRows&) = delete;

  void bind(soci::statement& statement);
  /// The values of `writes`, one per row (writes.size() == the count).
  void assign(const std::vector<AttemptWrite>& writes);

 private:
  std::vector<AttemptValues> rows_;
};

/// The attempts table of one bookkeeping table. Every writing method runs on
/// the caller's session, inside the caller's transaction, and writes nothing
/// when the history is disabled (history.enabled: false).
class AttemptLog {
 public:
  AttemptLog(const Dialect& dialect, const std::string& table, bool enabled);

  bool enabled() const noexcept { return enabled_; }

  /// One multi-row INSERT for all of `writes` (none: no statement).
  void insert(soci::session& session, const std::vector<AttemptWrite>& writes) const;
  /// The same on `lease`'s session, where the statement for that many rows
  /// is kept prepared (Dialect::prepares_on_server): SQLite compiles, and
  /// PostgreSQL plans, the INSERT of a lone step's attempt once per session
  /// instead of on every step.
  void insert(SessionLease& lease, const std::vector<AttemptWrite>& writes) const;

  /// Dialect::data_modifying_with: `changes` (each an UPDATE ... RETURNING
  /// run_id) and the INSERT of `count` attempts as one statement, which
  /// returns the run id of every row changed and writes the attempt of
  /// every run id changed, and of no other. It binds each change's
  /// parameters in turn, then AttemptRows(count).
  std::string with_changes(const std::vector<std::string>& changes, std::size_t count) const;

  /// PostgreSQL: a batch's commits and their attempts in one statement that
  /// does not depend on the batch's size, so a session keeps it prepared
  /// (parsed and planned once) however the batches vary: the steps advance
  /// and finish with `steps`' advance_from and finish_from, and the attempts
  /// of the rows that moved are written. Binds the batch as a JSON document
  /// (batch_document), then expect (ms). Returns the run_id of each row moved.
  std::string batch_commit(const StepStatements& steps) const;

  /// The JSON document batch_commit reads: a row per commit, with its
  /// attempt where it has one (the first commit of a run id only: a batch
  /// commits a run id once).
  static std::string batch_document(const std::vector<StepCommit>& commits);

  /// The holder of claim `write.token` learned it was taken over (or the row
  /// moved on without it): the `crashed` row its takeover wrote becomes
  /// `stale` with the holder's ending, or, where there is none, a `stale`
  /// row is written.
  void supersede(soci::session& session, const AttemptWrite& write) const;

  /// INSERT ... SELECT of a `crashed` attempt for every row matching
  /// `condition` (SQL on the programs table, its parameters bound by the
  /// caller) whose claim is held and expired: run before the statement that
  /// takes those claims over (counting the crash), in its transaction, with
  /// the rows locked (FOR UPDATE where the dialect locks rows). The attempt
  /// started when the claim was taken (claimed_at) and ended now.
  std::string crashed_insert(const std::string& condition) const;

  /// Every attempt of `run_id`, oldest first.
  std::vector<AttemptRecord> read(soci::session& session, const std::string& run_id) const;

  /// Deletes at most `limit` attempts that ended more than `older_than_ms`
  /// ago, oldest first, in one statement; returns how many.
  long long prune(soci::session& session, long long older_than_ms, int limit) const;

  /// DELETE of the attempts of the run ids `run_ids` selects (SQL, a
  /// subquery whose parameters the caller binds).
  std::string delete_of(const std::string& run_ids) const;

 private:
  const Dialect& dialect_;
  std::string programs_;  ///< quoted
  std::string table_;     ///< quoted
  bool enabled_;
  std::string columns_;   ///< the INSERT's column list

  /// The VALUES rows of `count` attempts (`typed`: each parameter CAST to
  /// its column's type), in AttemptRows' order.
  std::string values(std::size_t count, bool typed) const;
  std::string insert_of(std::size_t count) const;
};

}  // namespace detail
}  // namespace program_executor::store
