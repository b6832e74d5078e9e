#include "program_executor/store/sql_program_store.hpp"

#include <map>
#include <memory>
#include <optional>
#include <set>

#include <soci/soci.h>

#include "attempt_log.hpp"
#include "guarded.hpp"
#include "one_time_statement.hpp"
#include "operator_queries.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/write_transaction.hpp"
#include "row_reader.hpp"
#include "step_statements.hpp"

namespace program_executor::store {
namespace {

using detail::affected;
using detail::AttemptRows;
using detail::AttemptWrite;
using detail::for_each_row;
using detail::guarded;
using detail::guarded_lease;
using detail::RowReader;

long long milliseconds(std::chrono::milliseconds duration) { return duration.count(); }

// Runs a statement of a claim's holder, whose only outcome is whether its row
// matched.
template <class... Bindings>
bool changed(Database& database, const char* what, const std::string& run_id,
             const std::string& query, Bindings&&... bindings) {
  return guarded(database, what, run_id, [&](soci::session& session) {
    return affected(session, query, std::forward<Bindings>(bindings)...) > 0;
  });
}

// The requests whose run id no earlier request has, in order: a batch claims
// a run id for its first request only (a second one is a copy of a message).
template <class Request>
std::vector<const Request*> first_per_run_id(const std::vector<Request>& requests) {
  std::vector<const Request*> unique;
  std::set<std::string_view> seen;
  for (const Request& request : requests) {
    if (seen.insert(request.run_id).second) unique.push_back(&request);
  }
  return unique;
}

// The statement kept on `lease`'s session under its SQL text, prepared there
// (T's constructor) the first time: PostgreSQL parses and plans it once per
// connection instead of on every step, SQLite compiles it once.
template <class T, class... Args>
T& kept(SessionLease& lease, const std::string& query, Args&&... args) {
  std::shared_ptr<void>& slot = lease.kept(query);
  if (!slot) slot = std::make_shared<T>(lease.session(), query, std::forward<Args>(args)...);
  return *static_cast<T*>(slot.get());
}

void prepare_kept(soci::statement& statement, const std::string& query) {
  statement.alloc();
  statement.prepare(query, soci::details::st_repeatable_query);
  statement.define_and_bind();
}

// StepStatements::claim_unread for `count` run ids, with its buffers (the
// statement refers to them, so it is declared last: destroyed first).
struct ClaimUnreadStatement {
  ClaimUnreadStatement(soci::session& session, const std::string& query, std::size_t count)
      : run_ids(count), jobs_left(count), statement(session) {
    reader.bind(statement);
    statement.exchange(soci::use(owner));
    statement.exchange(soci::use(lease));
    for (std::size_t i = 0; i < count; ++i) {
      statement.exchange(soci::use(run_ids[i]));
      statement.exchange(soci::use(jobs_left[i]));
    }
    prepare_kept(statement, query);
  }
  RowReader reader;
  std::string owner;
  long long lease = 0;
  std::vector<std::string> run_ids;  // sized once: the statement holds their addresses
  std::vector<int> jobs_left;
  soci::statement statement;
};

// The attempts of the commits that matched their rows (`matched(i)`), for
// one INSERT in the commit's transaction.
// A run id gets one attempt at most (a batch commits a run id once: copies
// of a step are dropped before they run).
template <class Matched>
std::vector<AttemptWrite> committed_attempts(const std::vector<StepCommit>& commits, Matched&& matched) {
  std::vector<AttemptWrite> writes;
  std::set<std::string_view> written;
  for (std::size_t i = 0; i < commits.size(); ++i) {
    const StepCommit& commit = commits[i];
    if (commit.attempt && matched(i) && written.insert(commit.run_id).second) {
      writes.push_back(AttemptWrite{commit.run_id, commit.step, commit.token, *commit.attempt});
    }
  }
  return writes;
}

bool any_attempt(const std::vector<StepCommit>& commits) {
  for (const StepCommit& commit : commits) {
    if (commit.attempt) return true;
  }
  return false;
}

// StepStatements::insert with its buffers.
struct InsertStatement {
  InsertStatement(soci::session& session, const std::string& query) : statement(session) {
    statement.exchange(soci::use(run_id));
    statement.exchange(soci::use(jobs));
    statement.exchange(soci::use(job_data));
    statement.exchange(soci::use(program_data));
    statement.exchange(soci::use(expect));
    statement.exchange(soci::use(existing));
    prepare_kept(statement, query);
  }
  std::string run_id, jobs, job_data, program_data;
  long long expect = 0;
  std::string existing;  // run_id again: a placeholder is bound once per occurrence
  soci::statement statement;
};

// StepStatements::advance or finish for one step.
struct CommitStatement {
  CommitStatement(soci::session& session, const std::string& query, bool with_expect) : statement(session) {
    if (with_expect) statement.exchange(soci::use(expect));
    statement.exchange(soci::use(run_id));
    statement.exchange(soci::use(step));
    statement.exchange(soci::use(token));
    prepare_kept(statement, query);
  }
  long long expect = 0;
  std::string run_id;
  int step = 0;
  long long token = 0;
  soci::statement statement;
};

// A lone step's commit and its attempt as one statement
// (AttemptLog::with_changes over advance_many(1) or finish_many(1)), with
// its buffers; it returns the run id when the step moved.
struct CommitWithAttemptStatement {
  CommitWithAttemptStatement(soci::session& session, const std::string& query, bool with_expect)
      : rows(1), statement(session) {
    statement.exchange(soci::into(moved));
    if (with_expect) statement.exchange(soci::use(expect));
    statement.exchange(soci::use(run_id));
    statement.exchange(soci::use(step));
    statement.exchange(soci::use(token));
    rows.bind(statement);
    prepare_kept(statement, query);
  }
  std::string moved;
  long long expect = 0;
  std::string run_id;
  int step = 0;
  long long token = 0;
  AttemptRows rows;
  soci::statement statement;
};

// AttemptLog::batch_commit with its buffers: a batch's commits and their
// attempts, of any size; it returns the run id of each row moved.
struct BatchCommitStatement {
  BatchCommitStatement(soci::session& session, const std::string& query) : statement(session) {
    statement.exchange(soci::into(moved));
    statement.exchange(soci::use(batch));  // in the text's order: the batch's CTE comes first
    statement.exchange(soci::use(expect));
    prepare_kept(statement, query);
  }
  std::string moved;
  long long expect = 0;
  std::string batch;
  soci::statement statement;
};

}  // namespace

SqlProgramStore::SqlProgramStore(Database& database, bool history)
    : database_(database),
      dialect_(database.dialect()),
      sql_(std::make_unique<const detail::StepStatements>(dialect_, dialect_.quote(database.table()))),
      history_(std::make_unique<const detail::AttemptLog>(dialect_, database.table(), history)),
      operator_queries_(std::make_unique<detail::OperatorQueries>(database, *history_)) {
  if (dialect_.data_modifying_with()) {
    commit_with_attempt_ = {history_->with_changes({sql_->advance_many(1)}, 1),
                            history_->with_changes({sql_->finish_many(1)}, 1)};
    batch_commit_ = history_->batch_commit(*sql_);
  }
}

SqlProgramStore::~SqlProgramStore() = default;

void SqlProgramStore::insert(const NewProgram& program, std::chrono::milliseconds expect_within) {
  const bool inserted = guarded_lease(database_, "inserting a program", program.run_id, [&](SessionLease& session) {
    const std::string jobs = nlohmann::json(program.jobs).dump();
    const std::string job_data = program.job_data.dump();
    const std::string program_data = program.program_data.dump();
    const long long expect = milliseconds(expect_within);
    if (sql_->keep_prepared) {
      // Kept: `serve` creates programs one request after another on each
      // of its sessions, and PostgreSQL then plans the insert once.
      auto& statement = kept<InsertStatement>(session, sql_->insert);
      statement.run_id = program.run_id;
      statement.jobs = jobs;
      statement.job_data = job_data;
      statement.program_data = program_data;
      statement.expect = expect;
      statement.existing = program.run_id;
      statement.statement.execute(true);
      return statement.statement.get_affected_rows() > 0;
    }
    return affected(session.session(), sql_->insert, soci::use(program.run_id), soci::use(jobs),
                    soci::use(job_data), soci::use(program_data), soci::use(expect),
                    soci::use(program.run_id)) > 0;
  });
  if (!inserted) throw StoreError("a program with run id " + program.run_id + " exists already");
}

std::optional<ProgramRow> SqlProgramStore::find(const std::string& run_id) {
  return guarded(database_, "reading a program", run_id, [&](soci::session& session) -> std::optional<ProgramRow> {
    RowReader reader;
    std::optional<ProgramRow> found;
    for_each_row(
        session, sql_->find,
        [&](soci::statement& statement) {
          reader.bind(statement);
          statement.exchange(soci::use(run_id));
        },
        [&] { found = reader.row(); });
    return found;
  });
}

std::vector<std::optional<ProgramRow>> SqlProgramStore::find_all(
    const std::vector<std::string>& run_ids) {
  if (run_ids.empty()) return {};
  if (run_ids.size() == 1 || !sql_->batch_statements) return ProgramStore::find_all(run_ids);
  return guarded(database_, "reading programs", run_ids.front(), [&](soci::session& session) {
    // Tables taken over from program-executor-js may hold a run id more than
    // once: the first (lowest id) counts, as in find().
    RowReader reader;
    std::map<std::string, ProgramRow> by_run_id;
    for_each_row(
        session, sql_->find_many(run_ids.size()),
        [&](soci::statement& statement) {
          reader.bind(statement);
          for (const std::string& run_id : run_ids) statement.exchange(soci::use(run_id));
        },
        [&] {
          if (!by_run_id.count(reader.run_id)) by_run_id.emplace(reader.run_id, reader.row());
        });
    std::vector<std::optional<ProgramRow>> found;
    found.reserve(run_ids.size());
    for (const std::string& run_id : run_ids) {
      auto it = by_run_id.find(run_id);
      found.push_back(it == by_run_id.end() ? std::nullopt : std::optional<ProgramRow>(it->second));
    }
    return found;
  });
}

std::vector<std::optional<StepClaim>> SqlProgramStore::claim_all(
    const std::vector<ClaimRequest>& requests, const std::string& owner,
    std::chrono::milliseconds lease) {
  if (requests.empty()) return {};
  if (sql_->batch_statements) return claim_all_returning(requests, owner, lease);
  const char* what = requests.size() == 1 ? "claiming a step" : "claiming steps";
  return guarded(database_, what, requests.front().run_id, [&](soci::session& session) {
    WriteTransaction transaction(session, dialect_);
    record_takeovers(session, first_per_run_id(requests));
    std::vector<std::optional<StepClaim>> claims;
    claims.reserve(requests.size());
    for (const ClaimRequest& request : requests) {
      claims.push_back(claim_in(session, request, owner, milliseconds(lease)));
    }
    transaction.commit();
    return claims;
  });
}

std::vector<std::optional<StepClaim>> SqlProgramStore::claim_all_returning(
    const std::vector<ClaimRequest>& requests, const std::string& owner,
    std::chrono::milliseconds lease) {
  // One UPDATE ... RETURNING for the whole batch. A run id asked for twice is
  // claimed for its first request only (the second is a copy of the message).
  const std::vector<const ClaimRequest*> unique = first_per_run_id(requests);
  const long long lease_for = milliseconds(lease);
  std::map<std::string, StepClaim> claimed;
  guarded(database_, "claiming steps", requests.front().run_id, [&](soci::session& session) {
    // With the history on, the crashed attempts of the claims taken over are
    // written in the claim's transaction (a single statement needs none).
    std::optional<WriteTransaction> transaction;
    if (history_->enabled()) {
      transaction.emplace(session, dialect_);
      record_takeovers(session, unique);
    }
    std::string run_id;
    long long token = 0;
    int crashes = 0;
    int isolated_crashes = 0;
    for_each_row(
        session, sql_->claim_many(unique.size()),
        [&](soci::statement& statement) {
          statement.exchange(soci::into(run_id));
          statement.exchange(soci::into(token));
          statement.exchange(soci::into(crashes));
          statement.exchange(soci::into(isolated_crashes));
          statement.exchange(soci::use(owner));
          statement.exchange(soci::use(lease_for));
          for (const ClaimRequest* request : unique) {
            statement.exchange(soci::use(request->run_id));
            statement.exchange(soci::use(request->step));
          }
        },
        [&] { claimed.emplace(run_id, StepClaim{token, crashes, isolated_crashes}); });
    if (transaction) transaction->commit();
  });
  std::vector<std::optional<StepClaim>> claims;
  claims.reserve(requests.size());
  std::map<std::string, bool> handed_out;
  for (const ClaimRequest& request : requests) {
    auto it = claimed.find(request.run_id);
    if (it == claimed.end() || handed_out[request.run_id]) {
      claims.emplace_back();
      continue;
    }
    handed_out[request.run_id] = true;
    claims.emplace_back(it->second);
  }
  return claims;
}

std::vector<std::optional<ClaimedRow>> SqlProgramStore::claim_unread(
    const std::vector<UnreadClaim>& requests, const std::string& owner,
    std::chrono::milliseconds lease) {
  std::vector<std::optional<ClaimedRow>> claimed(requests.size());
  if (requests.empty() || !sql_->claims_unread()) return claimed;
  // The claim of claim_all_returning, with the step computed from the job
  // list and the whole row returned: no read before it.
  const std::vector<const UnreadClaim*> unique = first_per_run_id(requests);
  const long long lease_for = milliseconds(lease);
  // Tables taken over from program-executor-js may hold a run id more than
  // once: the lowest id counts, as in find().
  std::map<std::string, ProgramRow> rows;
  // With the history on, a claim taken over goes through claim_all, which
  // records the crashed attempt with it; here only free steps are claimed.
  const std::string query = sql_->claim_unread(unique.size(), history_->enabled());
  guarded_lease(database_, "claiming steps", requests.front().run_id, [&](SessionLease& session) {
    auto& claim = kept<ClaimUnreadStatement>(session, query, unique.size());
    claim.owner = owner;
    claim.lease = lease_for;
    for (std::size_t i = 0; i < unique.size(); ++i) {
      claim.run_ids[i] = unique[i]->run_id;
      claim.jobs_left[i] = unique[i]->jobs_left;
    }
    claim.statement.execute(false);
    while (claim.statement.fetch()) {
      const RowReader& reader = claim.reader;
      auto [it, first] = rows.emplace(reader.run_id, ProgramRow{});
      if (first || reader.id < it->second.id) it->second = reader.row();
    }
  });
  std::set<std::string> handed_out;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto it = rows.find(requests[i].run_id);
    if (it == rows.end() || !handed_out.insert(it->first).second) continue;
    const ProgramRow& row = it->second;
    claimed[i] = ClaimedRow{
        row, StepClaim{row.lease_token, row.step_crash_count, row.step_isolated_crash_count}};
  }
  return claimed;
}

void SqlProgramStore::record_takeovers(soci::session& session,
                                       const std::vector<const ClaimRequest*>& requests) {
  if (!history_->enabled() || requests.empty()) return;
  soci::statement statement(session);
  for (const ClaimRequest* request : requests) {
    statement.exchange(soci::use(request->run_id));
    statement.exchange(soci::use(request->step));
  }
  statement.alloc();
  statement.prepare(history_->crashed_insert(sql_->requested(requests.size())),
                    soci::details::st_one_time_query);
  statement.define_and_bind();
  statement.execute(true);
}

template <class Bind>
bool SqlProgramStore::change_with_attempt(const char* what, const std::string& run_id, int step,
                                          std::int64_t token, const std::string& query,
                                          const AttemptEnding* attempt, Bind&& bind) {
  return guarded(database_, what, run_id, [&](soci::session& session) {
    const auto change = [&] {
      soci::statement statement(session);
      bind(statement);
      statement.alloc();
      statement.prepare(query, soci::details::st_one_time_query);
      statement.define_and_bind();
      statement.execute(true);
      return statement.get_affected_rows() > 0;
    };
    if (attempt == nullptr || !history_->enabled()) return change();
    // Unmatched, the transaction rolls back: no attempt without its change.
    WriteTransaction transaction(session, dialect_);
    if (!change()) return false;
    history_->insert(session, {AttemptWrite{run_id, step, token, *attempt}});
    transaction.commit();
    return true;
  });
}

std::optional<StepClaim> SqlProgramStore::claim_in(soci::session& session,
                                                   const ClaimRequest& request,
                                                   const std::string& owner, long long lease) {
  if (affected(session, sql_->claim, soci::use(owner), soci::use(lease), soci::use(request.run_id),
               soci::use(request.step)) == 0) {
    return std::nullopt;
  }
  StepClaim claim;
  long long token = 0;
  session << sql_->claim_read, soci::into(token), soci::into(claim.crashes),
      soci::into(claim.isolated_crashes), soci::use(request.run_id);
  claim.token = token;
  return claim;
}

bool SqlProgramStore::renew(const std::string& run_id, int step, std::int64_t token,
                            std::chrono::milliseconds lease) {
  const long long lease_for = milliseconds(lease);
  const long long fencing = token;
  return changed(database_, "renewing a claim", run_id, sql_->renew, soci::use(lease_for),
                 soci::use(run_id), soci::use(step), soci::use(fencing));
}

bool SqlProgramStore::release(const std::string& run_id, int step, std::int64_t token,
                              std::chrono::milliseconds expect_within,
                              const AttemptEnding* attempt) {
  const long long expect = milliseconds(expect_within);
  const long long fencing = token;
  return change_with_attempt("releasing a claim", run_id, step, token, sql_->release, attempt,
                             [&](soci::statement& statement) {
                               statement.exchange(soci::use(expect));
                               statement.exchange(soci::use(run_id));
                               statement.exchange(soci::use(step));
                               statement.exchange(soci::use(fencing));
                             });
}

std::vector<bool> SqlProgramStore::commit_all(const std::vector<StepCommit>& commits,
                                              std::chrono::milliseconds expect_within) {
  if (commits.empty()) return {};
  if (commits.size() == 1) {
    // Autocommit: one statement needs no BEGIN and COMMIT round trips.
    return {commit_one(commits.front(), expect_within)};
  }
  if (sql_->batch_statements && !dialect_.in_process()) return commit_all_returning(commits, expect_within);
  // One transaction of single-step statements: MySQL's (no UPDATE ...
  // RETURNING), and SQLite's, where the kept statements cost no round trip.
  return guarded_lease(database_, "committing steps", commits.front().run_id, [&](SessionLease& lease) {
    WriteTransaction transaction(lease.session(), dialect_);
    std::vector<bool> matched;
    matched.reserve(commits.size());
    for (const StepCommit& commit : commits) matched.push_back(commit_step(lease, commit, expect_within));
    history_->insert(lease, committed_attempts(commits, [&](std::size_t i) { return matched[i]; }));
    transaction.commit();
    return matched;
  });
}

bool SqlProgramStore::commit_step(SessionLease& lease, const StepCommit& commit,
                                  std::chrono::milliseconds expect_within) {
  if (!sql_->keep_prepared) return commit_in(lease.session(), commit, expect_within);
  const std::string& query = commit.last ? sql_->finish : sql_->advance;
  auto& statement = kept<CommitStatement>(lease, query, !commit.last);
  statement.expect = milliseconds(expect_within);
  statement.run_id = commit.run_id;
  statement.step = commit.step;
  statement.token = commit.token;
  statement.statement.execute(true);
  return statement.statement.get_affected_rows() > 0;
}

std::vector<bool> SqlProgramStore::commit_all_returning(const std::vector<StepCommit>& commits,
                                                        std::chrono::milliseconds expect_within) {
  // At most two statements (the steps that advance, the programs that
  // finish), each one UPDATE ... RETURNING; a transaction only when both
  // run, or when the attempts go in beside them, so the batch still costs
  // one commit. Where the dialect allows, the UPDATEs and the attempts'
  // INSERT are one statement instead, and need no transaction.
  std::vector<const StepCommit*> advancing, finishing;
  for (const StepCommit& commit : commits) (commit.last ? finishing : advancing).push_back(&commit);
  const long long expect = milliseconds(expect_within);
  const auto bind_fences = [&](soci::statement& statement, const std::vector<const StepCommit*>& group,
                               std::vector<long long>& tokens) {
    tokens.resize(group.size());
    for (std::size_t i = 0; i < group.size(); ++i) {
      tokens[i] = group[i]->token;
      statement.exchange(soci::use(group[i]->run_id));
      statement.exchange(soci::use(group[i]->step));
      statement.exchange(soci::use(tokens[i]));
    }
  };
  std::set<std::string> matched;
  std::string run_id;
  const auto update = [&](soci::session& session, const std::vector<const StepCommit*>& group,
                          bool last) {
    if (group.empty()) return;
    std::vector<long long> tokens;
    for_each_row(
        session, last ? sql_->finish_many(group.size()) : sql_->advance_many(group.size()),
        [&](soci::statement& statement) {
          statement.exchange(soci::into(run_id));
          if (!last) statement.exchange(soci::use(expect));
          bind_fences(statement, group, tokens);
        },
        [&] { matched.insert(run_id); });
  };
  const bool record = history_->enabled() && any_attempt(commits);
  guarded_lease(database_, "committing steps", commits.front().run_id, [&](SessionLease& lease) {
    soci::session& session = lease.session();
    if (!record && (advancing.empty() || finishing.empty())) {
      update(session, advancing, false);
      update(session, finishing, true);
      return;
    }
    if (record && dialect_.data_modifying_with()) {
      // One statement for the steps and their attempts, kept prepared for
      // every batch size; every attempt is offered, and written only where
      // its step moved.
      auto& statement = kept<BatchCommitStatement>(lease, batch_commit_);
      statement.expect = expect;
      statement.batch = detail::AttemptLog::batch_document(commits);
      statement.statement.execute(false);
      while (statement.statement.fetch()) matched.insert(statement.moved);
      return;
    }
    // The attempts go in with the steps they end: one transaction, one
    // INSERT for the batch.
    WriteTransaction transaction(session, dialect_);
    update(session, advancing, false);
    update(session, finishing, true);
    history_->insert(lease, committed_attempts(commits, [&](std::size_t i) {
                       return matched.count(commits[i].run_id) > 0;
                     }));
    transaction.commit();
  });
  std::vector<bool> result;
  result.reserve(commits.size());
  for (const StepCommit& commit : commits) result.push_back(matched.count(commit.run_id) > 0);
  return result;
}

bool SqlProgramStore::commit_one(const StepCommit& commit, std::chrono::milliseconds expect_within) {
  const bool record = commit.attempt && history_->enabled();
  return guarded_lease(
      database_, commit.last ? "finishing a program" : "advancing a program", commit.run_id,
      [&](SessionLease& session) {
        if (record && sql_->keep_prepared && dialect_.data_modifying_with()) {
          // The commit and its attempt in one statement: atomic in autocommit,
          // one round trip, as the commit alone.
          const std::string& query = commit.last ? commit_with_attempt_[1] : commit_with_attempt_[0];
          auto& statement = kept<CommitWithAttemptStatement>(session, query, !commit.last);
          statement.expect = milliseconds(expect_within);
          statement.run_id = commit.run_id;
          statement.step = commit.step;
          statement.token = commit.token;
          statement.rows.assign({AttemptWrite{commit.run_id, commit.step, commit.token, *commit.attempt}});
          return statement.statement.execute(true);
        }
        // Without the history one statement in autocommit; with it, the
        // attempt in the same transaction.
        std::optional<WriteTransaction> transaction;
        if (record) transaction.emplace(session.session(), dialect_);
        const bool matched = commit_step(session, commit, expect_within);
        if (!transaction) return matched;
        if (matched) {
          history_->insert(session, {AttemptWrite{commit.run_id, commit.step, commit.token, *commit.attempt}});
        }
        transaction->commit();
        return matched;
      });
}

bool SqlProgramStore::commit_in(soci::session& session, const StepCommit& commit,
                                std::chrono::milliseconds expect_within) {
  const long long fencing = commit.token;
  if (commit.last) {
    return affected(session, sql_->finish, soci::use(commit.run_id), soci::use(commit.step),
                    soci::use(fencing)) > 0;
  }
  const long long expect = milliseconds(expect_within);
  return affected(session, sql_->advance, soci::use(expect), soci::use(commit.run_id),
                  soci::use(commit.step), soci::use(fencing)) > 0;
}

bool SqlProgramStore::record_retry(const std::string& run_id, int step, std::int64_t token,
                                   std::string_view message,
                                   std::chrono::milliseconds expect_within,
                                   const AttemptEnding* attempt) {
  const std::string text = truncate_error_message(message);
  const long long expect = milliseconds(expect_within);
  const long long fencing = token;
  return change_with_attempt("recording a retry", run_id, step, token, sql_->record_retry, attempt,
                             [&](soci::statement& statement) {
                               statement.exchange(soci::use(text));
                               statement.exchange(soci::use(expect));
                               statement.exchange(soci::use(run_id));
                               statement.exchange(soci::use(step));
                               statement.exchange(soci::use(fencing));
                             });
}

bool SqlProgramStore::record_isolated_crash(const std::string& run_id, int step,
                                            std::int64_t token, std::string_view message,
                                            std::chrono::milliseconds expect_within,
                                            const AttemptEnding* attempt) {
  const std::string text = truncate_error_message(message);
  const long long expect = milliseconds(expect_within);
  const long long fencing = token;
  return change_with_attempt("recording a crash", run_id, step, token, sql_->record_isolated_crash,
                             attempt, [&](soci::statement& statement) {
                               statement.exchange(soci::use(text));
                               statement.exchange(soci::use(expect));
                               statement.exchange(soci::use(run_id));
                               statement.exchange(soci::use(step));
                               statement.exchange(soci::use(fencing));
                             });
}

void SqlProgramStore::drop_claim(const std::string& run_id, std::int64_t token, int step,
                                 const AttemptEnding* attempt) {
  const long long fencing = token;
  if (attempt == nullptr || !history_->enabled()) {
    changed(database_, "dropping a claim", run_id, sql_->drop_claim, soci::use(run_id),
            soci::use(fencing));
    return;
  }
  guarded(database_, "dropping a claim", run_id, [&](soci::session& session) {
    // The row refused the holder's outcome: whatever the drop matches (a
    // cancel cleared the claim already), the attempt ended here.
    WriteTransaction transaction(session, dialect_);
    affected(session, sql_->drop_claim, soci::use(run_id), soci::use(fencing));
    const AttemptWrite write{run_id, step, token, *attempt};
    if (attempt->outcome == attempt_outcome::stale) {
      history_->supersede(session, write);
    } else {
      history_->insert(session, {write});
    }
    transaction.commit();
  });
}

bool SqlProgramStore::fail(const std::string& run_id, int step, std::int64_t token,
                           std::string_view message, const AttemptEnding* attempt) {
  const std::string text = truncate_error_message(message);
  const long long fencing = token;
  return change_with_attempt("failing a program", run_id, step, token, sql_->fail, attempt,
                             [&](soci::statement& statement) {
                               statement.exchange(soci::use(text));
                               statement.exchange(soci::use(run_id));
                               statement.exchange(soci::use(step));
                               statement.exchange(soci::use(fencing));
                             });
}

std::vector<AttemptRecord> SqlProgramStore::attempts(const std::string& run_id) {
  return guarded(database_, "reading the attempt history", run_id,
                 [&](soci::session& session) { return history_->read(session, run_id); });
}

long long SqlProgramStore::prune_attempts(std::chrono::milliseconds older_than, int limit) {
  return guarded(database_, "pruning the attempt history", "", [&](soci::session& session) {
    return history_->prune(session, milliseconds(older_than), limit);
  });
}

nlohmann::json SqlProgramStore::update_job_data(
    const std::string& run_id, const std::string& job_name, std::int64_t token,
    const std::function<nlohmann::json(const nlohmann::json&)>& modify) {
  return guarded(database_, "updating job data", run_id, [&](soci::session& session) {
    WriteTransaction transaction(session, dialect_);
    long long id = 0;
    std::string text;
    soci::indicator ind{};
    long long current_token = 0;
    soci::indicator token_ind{};
    std::string ended;
    soci::indicator ended_ind{};
    // FOR UPDATE (SQLite: the write transaction) holds the row until commit,
    // so two read-modify-writes of one row never lose an update.
    session << sql_->read_job_data, soci::into(id), soci::into(text, ind), soci::into(current_token, token_ind),
        soci::into(ended, ended_ind), soci::use(run_id);
    if (!session.got_data()) throw StoreError("no program with run id " + run_id);
    if (ended_ind != soci::i_null) {
      throw ProgramEnded("program " + run_id + " ended (was cancelled) while job " + job_name +
                         " ran; its job data is not written");
    }
    if (token_ind == soci::i_null) current_token = 0;
    if (current_token != token) {
      throw StoreError("the claim on program " + run_id +
                       " was lost to another worker; job data not written");
    }
    nlohmann::json all = ind == soci::i_null ? nlohmann::json::object()
                                             : detail::parse_column(text, "job_data");
    if (!all.is_object()) all = nlohmann::json::object();
    const nlohmann::json current =
        all.contains(job_name) ? all[job_name] : nlohmann::json::object();
    nlohmann::json updated = modify(current);
    all[job_name] = updated;
    const std::string stored = all.dump();
    session << sql_->write_job_data, soci::use(stored), soci::use(id);
    transaction.commit();
    return updated;
  });
}

bool SqlProgramStore::cancel(const std::string& run_id, std::string_view message) {
  return operator_queries_->cancel(run_id, message);
}

std::vector<ProgramRow> SqlProgramStore::list(const ProgramFilter& filter) {
  return operator_queries_->list(filter);
}

StateCounts SqlProgramStore::count_by_state() { return operator_queries_->count_by_state(); }

bool SqlProgramStore::resume(const std::string& run_id, int from_step,
                             std::chrono::milliseconds expect_within) {
  return operator_queries_->resume(run_id, from_step, expect_within);
}

bool SqlProgramStore::restart_finished(const std::string& run_id, int from_step,
                                       std::chrono::milliseconds expect_within) {
  return operator_queries_->restart_finished(run_id, from_step, expect_within);
}

std::vector<StaleProgram> SqlProgramStore::overdue(const RecoveryWindow& window, int limit) {
  return operator_queries_->overdue(window, limit);
}

long long SqlProgramStore::count_abandoned(const RecoveryWindow& window) {
  return operator_queries_->count_abandoned(window);
}

bool SqlProgramStore::begin_recovery(const std::string& run_id, int step, std::int64_t token,
                                     const RecoveryWindow& window,
                                     std::chrono::milliseconds expect_within) {
  return operator_queries_->begin_recovery(run_id, step, token, window, expect_within);
}

long long SqlProgramStore::delete_ended(std::chrono::milliseconds ended_more_than, int limit) {
  return operator_queries_->delete_ended(ended_more_than, limit);
}

}  // namespace program_executor::store
