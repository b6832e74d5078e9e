#include "program_executor/store/sql_program_store.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include <soci/soci.h>

#include "guarded.hpp"
#include "one_time_statement.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/write_transaction.hpp"

namespace program_executor::store {
namespace {

using detail::affected;
using detail::guarded;
using detail::guarded_lease;

nlohmann::json parse_column(const std::string& text, const char* column) {
  if (text.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw StoreError(std::string("column ") + column + " does not hold JSON: " + e.what());
  }
}

std::vector<std::string> job_names(const std::string& text) {
  const nlohmann::json list = parse_column(text, "jobs");
  if (!list.is_array()) throw StoreError("column jobs is not a JSON array");
  std::vector<std::string> names;
  for (const auto& job : list) names.push_back(job.is_string() ? job.get<std::string>() : job.dump());
  return names;
}


long long milliseconds(std::chrono::milliseconds duration) { return duration.count(); }

// Buffers for one row of the table, in the order of
// SqlProgramStore::row_columns_; filled by each fetch of a bound statement.
struct RowReader {
  void bind(soci::statement& statement) {
    statement.exchange(soci::into(id));
    statement.exchange(soci::into(run_id));
    statement.exchange(soci::into(jobs));
    statement.exchange(soci::into(step, step_ind));
    statement.exchange(soci::into(finished_at, finished_ind));
    statement.exchange(soci::into(errored_at, errored_ind));
    statement.exchange(soci::into(error_message, message_ind));
    statement.exchange(soci::into(retries, retries_ind));
    statement.exchange(soci::into(job_data, job_data_ind));
    statement.exchange(soci::into(program_data, program_data_ind));
    statement.exchange(soci::into(created_at, created_ind));
    statement.exchange(soci::into(updated_at, updated_ind));
    statement.exchange(soci::into(lease_owner, owner_ind));
    statement.exchange(soci::into(token, token_ind));
    statement.exchange(soci::into(lease_until, until_ind));
    statement.exchange(soci::into(crashes, crashes_ind));
    statement.exchange(soci::into(isolated_crashes, isolated_ind));
    statement.exchange(soci::into(cancelled_at, cancelled_ind));
  }

  ProgramRow row() const {
    const auto present = [](soci::indicator ind) { return ind != soci::i_null; };
    ProgramRow row;
    row.id = id;
    row.run_id = run_id;
    row.jobs = job_names(jobs);
    row.step = present(step_ind) ? step : 0;
    row.step_retry_count = present(retries_ind) ? retries : 0;
    if (present(finished_ind)) row.finished_at = finished_at;
    if (present(errored_ind)) row.errored_at = errored_at;
    if (present(message_ind)) row.error_message = error_message;
    row.job_data =
        present(job_data_ind) ? parse_column(job_data, "job_data") : nlohmann::json::object();
    row.program_data = present(program_data_ind) ? parse_column(program_data, "program_data")
                                                 : nlohmann::json::object();
    if (present(created_ind)) row.created_at = created_at;
    if (present(updated_ind)) row.updated_at = updated_at;
    if (present(owner_ind)) row.lease_owner = lease_owner;
    row.lease_token = present(token_ind) ? token : 0;
    if (present(until_ind)) row.lease_until = lease_until;
    row.step_crash_count = present(crashes_ind) ? crashes : 0;
    row.step_isolated_crash_count = present(isolated_ind) ? isolated_crashes : 0;
    if (present(cancelled_ind)) row.cancelled_at = cancelled_at;
    return row;
  }

  long long id = 0;
  std::string run_id, jobs;
  int step = 0;
  std::string finished_at, errored_at, error_message;
  int retries = 0;
  std::string job_data, program_data, created_at, updated_at, lease_owner;
  long long token = 0;
  std::string lease_until;
  int crashes = 0;
  int isolated_crashes = 0;
  std::string cancelled_at;
  soci::indicator step_ind{}, finished_ind{}, errored_ind{}, message_ind{}, retries_ind{},
      job_data_ind{}, program_data_ind{}, created_ind{}, updated_ind{}, owner_ind{}, token_ind{},
      until_ind{}, crashes_ind{}, isolated_ind{}, cancelled_ind{};
};

// ":<prefix>0, :<prefix>1, ..." for `count` parameters.
std::string placeholders(const char* prefix, std::size_t count) {
  std::string list;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) list += ", ";
    list += ":" + std::string(prefix) + std::to_string(i);
  }
  return list;
}

// Runs a query once (not prepared on the server first) and calls `on_row`
// after each row is fetched into the buffers that `bind` exchanged.
template <class Bind, class OnRow>
void for_each_row(soci::session& session, const std::string& query, Bind&& bind, OnRow&& on_row) {
  soci::statement statement(session);
  bind(statement);
  statement.alloc();
  statement.prepare(query, soci::details::st_one_time_query);
  statement.define_and_bind();
  statement.execute(false);
  while (statement.fetch()) on_row();
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

// SqlProgramStore::claim_unread for `count` run ids, with its buffers (the
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

// SqlProgramStore::insert_sql_ with its buffers.
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

// SqlProgramStore::advance_sql_ or finish_sql_ for one step.
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

}  // namespace

SqlProgramStore::SqlProgramStore(Database& database)
    : database_(database),
      dialect_(database.dialect()),
      table_(dialect_.quote(database.table())),
      now_(dialect_.now()),
      // Not "finished_at IS NULL AND errored_at IS NULL", which is the
      // predicate of the partial overdue index: on a table without
      // statistics yet, PostgreSQL then scans that index (every running
      // program) instead of finding the one row by run_id.
      running_(" AND COALESCE(finished_at, errored_at) IS NULL"),
      // UPDATE ... RETURNING (PostgreSQL; SQLite since 3.35) turns a batch into
      // one statement; MySQL and MariaDB have no such UPDATE.
      multi_row_(database.backend() == Backend::postgresql || database.backend() == Backend::sqlite3),
      jobs_count_(multi_row_ ? dialect_.json_array_length("jobs") : std::string()),
      keep_statements_(multi_row_) {
  // The statements of every step, built once.
  // (MySQL evaluates SET left to right: the crash count reads the old owner.)
  claim_set_sql_ = "UPDATE " + table_ +
                   " SET step_crash_count = step_crash_count +"
                   " CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END,"
                   " lease_owner = :owner, lease_token = lease_token + 1,"
                   " lease_until = " + later("lease");
  claim_free_sql_ =
      " AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < " + now_ + ")";
  claim_sql_ = claim_set_sql_ + " WHERE run_id = :run_id AND step = :step" + running_ +
               claim_free_sql_;
  claim_read_sql_ = "SELECT lease_token, step_crash_count, step_isolated_crash_count FROM " + table_ +
                    " WHERE run_id = :run_id ORDER BY id LIMIT 1";
  advance_set_sql_ = "UPDATE " + table_ +
                     " SET step = step + 1, step_retry_count = 0,"
                     " step_crash_count = 0, step_isolated_crash_count = 0, lease_owner = NULL,"
                     " lease_until = " + later("expect") + ", updated_at = " + now_;
  advance_sql_ = advance_set_sql_ + " WHERE run_id = :run_id AND step = :step AND lease_token = :token" +
                 running_;
  finish_set_sql_ = "UPDATE " + table_ + " SET finished_at = " + now_ +
                    ", step_retry_count = 0, lease_owner = NULL,"
                    " lease_until = NULL, updated_at = " + now_;
  finish_sql_ = finish_set_sql_ + " WHERE run_id = :run_id AND step = :step AND lease_token = :token" +
                running_;
  // Where we created the table, its unique run_id index refuses a duplicate;
  // the original's index is not unique, so the insert checks too.
  insert_sql_ = "INSERT INTO " + table_ +
                " (run_id, jobs, step, step_retry_count, job_data, program_data,"
                " created_at, updated_at, lease_until) SELECT :run_id, " +
                dialect_.json_value("jobs") + ", 0, 0, " + dialect_.json_value("job_data") + ", " +
                dialect_.json_value("program_data") + ", " + now_ + ", " + now_ + ", " + later("expect") +
                dialect_.from_dual() + " WHERE NOT EXISTS (SELECT 1 FROM " + table_ +
                " WHERE run_id = :existing)";
  const Dialect& d = dialect_;
  const auto columns = [&](const std::string& job_data, const std::string& program_data) {
    return "id, run_id, " + d.json_text("jobs") + ", step, " + d.timestamp_text("finished_at") +
           ", " + d.timestamp_text("errored_at") + ", " + d.varchar_text("error_message") +
           ", step_retry_count, " +
           job_data + ", " + program_data + ", " + d.timestamp_text("created_at") + ", " +
           d.timestamp_text("updated_at") + ", lease_owner, lease_token, " +
           d.timestamp_text("lease_until") + ", step_crash_count, step_isolated_crash_count, " +
           d.timestamp_text("cancelled_at");
  };
  row_columns_ = columns(d.json_text("job_data"), d.json_text("program_data"));
  claimed_columns_ = columns("NULL", "NULL");
}

std::string SqlProgramStore::later(const char* name) const { return dialect_.now_plus(name); }

void SqlProgramStore::insert(const NewProgram& program, std::chrono::milliseconds expect_within) {
  const bool inserted = guarded_lease(database_, "inserting a program", program.run_id, [&](SessionLease& session) {
    const std::string jobs = nlohmann::json(program.jobs).dump();
    const std::string job_data = program.job_data.dump();
    const std::string program_data = program.program_data.dump();
    const long long expect = milliseconds(expect_within);
    if (keep_statements_) {
      // Kept: `serve` creates programs one request after another on each
      // of its sessions, and PostgreSQL then plans the insert once.
      auto& statement = kept<InsertStatement>(session, insert_sql_);
      statement.run_id = program.run_id;
      statement.jobs = jobs;
      statement.job_data = job_data;
      statement.program_data = program_data;
      statement.expect = expect;
      statement.existing = program.run_id;
      statement.statement.execute(true);
      return statement.statement.get_affected_rows() > 0;
    }
    return affected(session.session(), insert_sql_, soci::use(program.run_id), soci::use(jobs),
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
        session,
        "SELECT " + row_columns_ + " FROM " + table_ + " WHERE run_id = :run_id ORDER BY id LIMIT 1",
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
  if (run_ids.size() == 1 || !multi_row_) return ProgramStore::find_all(run_ids);
  return guarded(database_, "reading programs", run_ids.front(), [&](soci::session& session) {
    // Tables taken over from program-executor-js may hold a run id more than
    // once: the first (lowest id) counts, as in find().
    RowReader reader;
    std::map<std::string, ProgramRow> by_run_id;
    for_each_row(
        session,
        "SELECT " + row_columns_ + " FROM " + table_ + " WHERE run_id IN (" +
            placeholders("r", run_ids.size()) + ") ORDER BY id",
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

std::optional<StepClaim> SqlProgramStore::claim(const std::string& run_id, int step,
                                                const std::string& owner,
                                                std::chrono::milliseconds lease) {
  if (multi_row_) return claim_all_returning({ClaimRequest{run_id, step}}, owner, lease).front();
  return guarded(database_, "claiming a step", run_id, [&](soci::session& session) {
    WriteTransaction transaction(session, dialect_);
    std::optional<StepClaim> claim = claim_in(session, run_id, step, owner, lease);
    transaction.commit();
    return claim;
  });
}

std::vector<std::optional<StepClaim>> SqlProgramStore::claim_all(
    const std::vector<ClaimRequest>& requests, const std::string& owner,
    std::chrono::milliseconds lease) {
  if (requests.empty()) return {};
  const std::string& first = requests.front().run_id;
  if (multi_row_) return claim_all_returning(requests, owner, lease);
  return guarded(database_, "claiming steps", first, [&](soci::session& session) {
    WriteTransaction transaction(session, dialect_);
    std::vector<std::optional<StepClaim>> claims;
    claims.reserve(requests.size());
    for (const ClaimRequest& request : requests) {
      claims.push_back(claim_in(session, request.run_id, request.step, owner, lease));
    }
    transaction.commit();
    return claims;
  });
}

std::vector<std::optional<StepClaim>> SqlProgramStore::claim_all_returning(
    const std::vector<ClaimRequest>& requests, const std::string& owner,
    std::chrono::milliseconds lease) {
  // One UPDATE ... RETURNING for the whole batch: a single statement, so
  // atomic in autocommit, and one round trip. A run id asked for twice is
  // claimed for its first request only (the second is a copy of the message).
  const std::vector<const ClaimRequest*> unique = first_per_run_id(requests);
  std::string which;
  for (std::size_t i = 0; i < unique.size(); ++i) {
    if (i > 0) which += " OR ";
    which += "(run_id = :r" + std::to_string(i) + " AND step = :s" + std::to_string(i) + ")";
  }
  const long long lease_for = milliseconds(lease);
  std::map<std::string, StepClaim> claimed;
  guarded(database_, "claiming steps", requests.front().run_id, [&](soci::session& session) {
    std::string run_id;
    long long token = 0;
    int crashes = 0;
    int isolated_crashes = 0;
    for_each_row(
        session,
        claim_set_sql_ + " WHERE (" + which + ")" + running_ + claim_free_sql_ +
            " RETURNING run_id, lease_token, step_crash_count, step_isolated_crash_count",
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
  if (requests.empty() || jobs_count_.empty()) return claimed;
  // The claim of claim_all_returning, with the step computed from the job
  // list and the whole row returned: no read before it. A step message names
  // the jobs left, so its step is the job count minus those.
  const std::vector<const UnreadClaim*> unique = first_per_run_id(requests);
  std::string which;
  for (std::size_t i = 0; i < unique.size(); ++i) {
    const std::string n = std::to_string(i);
    if (i > 0) which += " OR ";
    which += "(run_id = :r" + n + " AND step = " + jobs_count_ + " - :l" + n + ")";
  }
  const long long lease_for = milliseconds(lease);
  // Tables taken over from program-executor-js may hold a run id more than
  // once: the lowest id counts, as in find().
  std::map<std::string, ProgramRow> rows;
  const std::string query = claim_set_sql_ + " WHERE (" + which + ")" + running_ + claim_free_sql_ +
                            " RETURNING " + claimed_columns_;
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

std::optional<StepClaim> SqlProgramStore::claim_in(soci::session& session,
                                                   const std::string& run_id, int step,
                                                   const std::string& owner,
                                                   std::chrono::milliseconds lease) {
  const long long lease_for = milliseconds(lease);
  // An unreleased claim whose lease ran out means its worker died (or lost
  // the database for longer than the lease): that is counted as a crash.
  if (affected(session, claim_sql_, soci::use(owner), soci::use(lease_for), soci::use(run_id),
               soci::use(step)) == 0) {
    return std::nullopt;
  }
  StepClaim claim;
  long long token = 0;
  session << claim_read_sql_, soci::into(token), soci::into(claim.crashes),
      soci::into(claim.isolated_crashes), soci::use(run_id);
  claim.token = token;
  return claim;
}

bool SqlProgramStore::renew(const std::string& run_id, int step, std::int64_t token,
                            std::chrono::milliseconds lease) {
  return guarded(database_, "renewing a claim", run_id, [&](soci::session& session) {
    const long long lease_for = milliseconds(lease);
    const long long fencing = token;
    const long long rows = affected(session, "UPDATE " + table_ + " SET lease_until = " +
                                                 later("lease") +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token AND lease_owner IS NOT NULL" +
                                                 running_,
                          soci::use(lease_for), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return rows > 0;
  });
}

bool SqlProgramStore::release(const std::string& run_id, int step, std::int64_t token,
                              std::chrono::milliseconds expect_within) {
  return guarded(database_, "releasing a claim", run_id, [&](soci::session& session) {
    const long long expect = milliseconds(expect_within);
    const long long fencing = token;
    const long long rows = affected(session, "UPDATE " + table_ +
                                                 " SET lease_owner = NULL, lease_until = " +
                                                 later("expect") + ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running_,
                          soci::use(expect), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return rows > 0;
  });
}

bool SqlProgramStore::advance(const std::string& run_id, int step, std::int64_t token,
                              std::chrono::milliseconds expect_within) {
  return guarded(database_, "advancing a program", run_id, [&](soci::session& session) {
    return commit_in(session, StepCommit{run_id, step, token, false}, expect_within);
  });
}

bool SqlProgramStore::finish(const std::string& run_id, int step, std::int64_t token) {
  return guarded(database_, "finishing a program", run_id, [&](soci::session& session) {
    return commit_in(session, StepCommit{run_id, step, token, true}, {});
  });
}

std::vector<bool> SqlProgramStore::commit_all(const std::vector<StepCommit>& commits,
                                              std::chrono::milliseconds expect_within) {
  if (commits.empty()) return {};
  if (commits.size() == 1) {
    // Autocommit: one statement needs no BEGIN and COMMIT round trips.
    return {commit_in_guarded(commits.front(), expect_within)};
  }
  if (multi_row_) return commit_all_returning(commits, expect_within);
  return guarded(database_, "committing steps", commits.front().run_id, [&](soci::session& session) {
    WriteTransaction transaction(session, dialect_);
    std::vector<bool> matched;
    matched.reserve(commits.size());
    for (const StepCommit& commit : commits) matched.push_back(commit_in(session, commit, expect_within));
    transaction.commit();
    return matched;
  });
}

std::vector<bool> SqlProgramStore::commit_all_returning(const std::vector<StepCommit>& commits,
                                                        std::chrono::milliseconds expect_within) {
  // At most two statements (the steps that advance, the programs that
  // finish), each one UPDATE ... RETURNING; a transaction only when both run,
  // so the batch still costs one commit.
  std::vector<const StepCommit*> advancing, finishing;
  for (const StepCommit& commit : commits) (commit.last ? finishing : advancing).push_back(&commit);
  const long long expect = milliseconds(expect_within);
  std::set<std::string> matched;
  const auto update = [&](soci::session& session, const std::string& set,
                          const std::vector<const StepCommit*>& group, bool with_expect) {
    if (group.empty()) return;
    std::string which;
    for (std::size_t i = 0; i < group.size(); ++i) {
      const std::string n = std::to_string(i);
      if (i > 0) which += " OR ";
      which += "(run_id = :r" + n + " AND step = :s" + n + " AND lease_token = :t" + n + ")";
    }
    std::vector<long long> tokens(group.size());
    for (std::size_t i = 0; i < group.size(); ++i) tokens[i] = group[i]->token;
    std::string run_id;
    for_each_row(
        session, set + " WHERE (" + which + ")" + running_ + " RETURNING run_id",
        [&](soci::statement& statement) {
          statement.exchange(soci::into(run_id));
          if (with_expect) statement.exchange(soci::use(expect));
          for (std::size_t i = 0; i < group.size(); ++i) {
            statement.exchange(soci::use(group[i]->run_id));
            statement.exchange(soci::use(group[i]->step));
            statement.exchange(soci::use(tokens[i]));
          }
        },
        [&] { matched.insert(run_id); });
  };
  guarded(database_, "committing steps", commits.front().run_id, [&](soci::session& session) {
    if (advancing.empty() || finishing.empty()) {
      update(session, advance_set_sql_, advancing, true);
      update(session, finish_set_sql_, finishing, false);
      return;
    }
    WriteTransaction transaction(session, dialect_);
    update(session, advance_set_sql_, advancing, true);
    update(session, finish_set_sql_, finishing, false);
    transaction.commit();
  });
  std::vector<bool> result;
  result.reserve(commits.size());
  for (const StepCommit& commit : commits) result.push_back(matched.count(commit.run_id) > 0);
  return result;
}

bool SqlProgramStore::commit_in_guarded(const StepCommit& commit,
                                        std::chrono::milliseconds expect_within) {
  return guarded_lease(database_, commit.last ? "finishing a program" : "advancing a program",
                       commit.run_id, [&](SessionLease& session) {
                         if (!keep_statements_) return commit_in(session.session(), commit, expect_within);
                         const std::string& query = commit.last ? finish_sql_ : advance_sql_;
                         auto& statement = kept<CommitStatement>(session, query, !commit.last);
                         statement.expect = milliseconds(expect_within);
                         statement.run_id = commit.run_id;
                         statement.step = commit.step;
                         statement.token = commit.token;
                         statement.statement.execute(true);
                         return statement.statement.get_affected_rows() > 0;
                       });
}

bool SqlProgramStore::commit_in(soci::session& session, const StepCommit& commit,
                                std::chrono::milliseconds expect_within) {
  const long long fencing = commit.token;
  if (commit.last) {
    return affected(session, finish_sql_, soci::use(commit.run_id), soci::use(commit.step),
                    soci::use(fencing)) > 0;
  }
  const long long expect = milliseconds(expect_within);
  return affected(session, advance_sql_, soci::use(expect), soci::use(commit.run_id),
                  soci::use(commit.step), soci::use(fencing)) > 0;
}

bool SqlProgramStore::record_retry(const std::string& run_id, int step, std::int64_t token,
                                   std::string_view message,
                                   std::chrono::milliseconds expect_within) {
  return guarded(database_, "recording a retry", run_id, [&](soci::session& session) {
    const std::string text = truncate_error_message(message);
    const long long expect = milliseconds(expect_within);
    const long long fencing = token;
    const long long rows = affected(session, "UPDATE " + table_ +
                                                 " SET step_retry_count = step_retry_count + 1,"
                                                 " error_message = :message, lease_owner = NULL,"
                                                 " lease_until = " + later("expect") +
                                                 ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running_,
                          soci::use(text), soci::use(expect), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return rows > 0;
  });
}

bool SqlProgramStore::record_isolated_crash(const std::string& run_id, int step,
                                            std::int64_t token, std::string_view message,
                                            std::chrono::milliseconds expect_within) {
  return guarded(database_, "recording a crash", run_id, [&](soci::session& session) {
    const std::string text = truncate_error_message(message);
    const long long expect = milliseconds(expect_within);
    const long long fencing = token;
    const long long rows = affected(session, "UPDATE " + table_ +
                                                 " SET step_crash_count = step_crash_count + 1,"
                                                 " step_isolated_crash_count = step_isolated_crash_count + 1,"
                                                 " error_message = :message, lease_owner = NULL,"
                                                 " lease_until = " + later("expect") +
                                                 ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running_,
                          soci::use(text), soci::use(expect), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return rows > 0;
  });
}

void SqlProgramStore::drop_claim(const std::string& run_id, std::int64_t token) {
  guarded(database_, "dropping a claim", run_id, [&](soci::session& session) {
    const long long fencing = token;
    // An ended row keeps no lease at all; a running one keeps the time by
    // which it is expected to move.
    affected(session, "UPDATE " + table_ +
                          " SET lease_owner = NULL, lease_until = CASE WHEN"
                          " COALESCE(finished_at, errored_at) IS NULL THEN lease_until ELSE NULL END"
                          " WHERE run_id = :run_id AND lease_token = :token AND lease_owner IS NOT NULL",
             soci::use(run_id), soci::use(fencing));
  });
}

bool SqlProgramStore::fail(const std::string& run_id, int step, std::int64_t token,
                           std::string_view message) {
  return guarded(database_, "failing a program", run_id, [&](soci::session& session) {
    const std::string text = truncate_error_message(message);
    const long long fencing = token;
    const long long rows = affected(session, "UPDATE " + table_ + " SET errored_at = " + now_ +
                                                 ", error_message = :message, lease_owner = NULL,"
                                                 " lease_until = NULL, updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running_,
                          soci::use(text), soci::use(run_id), soci::use(step), soci::use(fencing));
    return rows > 0;
  });
}

bool SqlProgramStore::cancel(const std::string& run_id, std::string_view message) {
  return guarded(database_, "cancelling a program", run_id, [&](soci::session& session) {
    const std::string text = truncate_error_message(message);
    // The claim is cleared with it: its holder's next renewal fails, it
    // sees the cancel and stops the step without committing it.
    const long long rows = affected(session, "UPDATE " + table_ + " SET errored_at = " + now_ +
                                                 ", cancelled_at = " + now_ +
                                                 ", error_message = :message, lease_owner = NULL,"
                                                 " lease_until = NULL, updated_at = " +
                                                 now_ + " WHERE run_id = :run_id" + running_,
                          soci::use(text), soci::use(run_id));
    return rows > 0;
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
    session << "SELECT id, " + dialect_.json_text("job_data") + ", lease_token, " +
                   dialect_.timestamp_text("COALESCE(finished_at, errored_at)") + " FROM " + table_ +
                   " WHERE run_id = :run_id ORDER BY id LIMIT 1" + dialect_.lock_rows(),
        soci::into(id), soci::into(text, ind), soci::into(current_token, token_ind),
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
                                             : parse_column(text, "job_data");
    if (!all.is_object()) all = nlohmann::json::object();
    const nlohmann::json current =
        all.contains(job_name) ? all[job_name] : nlohmann::json::object();
    nlohmann::json updated = modify(current);
    all[job_name] = updated;
    const std::string stored = all.dump();
    session << "UPDATE " + table_ + " SET job_data = " + dialect_.json_value("job_data") +
                   ", updated_at = " + now_ + " WHERE id = :id",
        soci::use(stored), soci::use(id);
    transaction.commit();
    return updated;
  });
}

std::string SqlProgramStore::overdue_sql() const {
  // A claim that ran out (its worker died); a step this daemon released or
  // moved on, past the time it was expected to move by (plus, where it may be
  // running on a worker that takes no claim, the longer wait for unclaimed
  // steps); a row this daemon never touched, not updated for that long.
  return " AND ((lease_owner IS NOT NULL AND lease_until < " + now_ +
         ") OR (lease_owner IS NULL AND lease_until IS NOT NULL AND lease_until < " +
         later("unclaimed") + ") OR (lease_until IS NULL AND updated_at < " + later("never") +
         "))";
}

std::string SqlProgramStore::recent_sql(bool limited) const {
  if (!limited) return "";
  // lease_until moves with every claim renewal, so a long job counts as moving.
  return " AND COALESCE(lease_until, updated_at) > " + later("max_age");
}

namespace {

// The bound values of SqlProgramStore::overdue_sql() and recent_sql().
struct WindowValues {
  explicit WindowValues(const RecoveryWindow& window)
      : unclaimed(-std::max<long long>(0, (window.unclaimed_after - window.stale_after).count())),
        never(-std::max(window.unclaimed_after, window.stale_after).count()),
        max_age(-window.max_age.count()),
        limited(window.max_age.count() > 0) {}
  long long unclaimed;
  long long never;
  long long max_age;
  bool limited;
};

}  // namespace

std::vector<StaleProgram> SqlProgramStore::overdue(const RecoveryWindow& window, int limit) {
  return guarded(database_, "looking for overdue programs", "", [&](soci::session& session) {
    WindowValues values(window);
    std::vector<StaleProgram> found;
    std::string run_id, jobs, program_data;
    int step = 0;
    long long token = 0;
    soci::indicator step_ind{}, token_ind{}, data_ind{};
    soci::statement st(session);
    st.exchange(soci::into(run_id));
    st.exchange(soci::into(step, step_ind));
    st.exchange(soci::into(token, token_ind));
    st.exchange(soci::into(jobs));
    st.exchange(soci::into(program_data, data_ind));
    st.exchange(soci::use(values.unclaimed));
    st.exchange(soci::use(values.never));
    if (values.limited) st.exchange(soci::use(values.max_age));
    st.exchange(soci::use(limit));
    st.alloc();
    st.prepare("SELECT run_id, step, lease_token, " + dialect_.json_text("jobs") + ", " +
               dialect_.json_text("program_data") + " FROM " + table_ +
               " WHERE finished_at IS NULL AND errored_at IS NULL" + overdue_sql() +
               recent_sql(values.limited) + " ORDER BY updated_at LIMIT :limit");
    st.define_and_bind();
    st.execute();
    while (st.fetch()) {
      StaleProgram program;
      program.run_id = run_id;
      program.step = step_ind == soci::i_null ? 0 : step;
      program.token = token_ind == soci::i_null ? 0 : token;
      program.jobs = job_names(jobs);
      program.program_data = data_ind == soci::i_null ? nlohmann::json::object()
                                                      : parse_column(program_data, "program_data");
      found.push_back(std::move(program));
    }
    return found;
  });
}

long long SqlProgramStore::count_abandoned(const RecoveryWindow& window) {
  WindowValues values(window);
  if (!values.limited) return 0;
  return guarded(database_, "counting abandoned programs", "", [&](soci::session& session) {
    long long count = 0;
    session << "SELECT COUNT(*) FROM " + table_ +
                   " WHERE finished_at IS NULL AND errored_at IS NULL" + overdue_sql() +
                   " AND COALESCE(lease_until, updated_at) <= " + later("max_age"),
        soci::into(count), soci::use(values.unclaimed), soci::use(values.never),
        soci::use(values.max_age);
    return count;
  });
}

bool SqlProgramStore::begin_recovery(const std::string& run_id, int step, std::int64_t token,
                                     const RecoveryWindow& window,
                                     std::chrono::milliseconds expect_within) {
  return guarded(database_, "recovering a program", run_id, [&](soci::session& session) {
    WindowValues values(window);
    const long long expect = milliseconds(expect_within);
    const long long fencing = token;
    // The same overdue condition as overdue(): of several sweepers, one wins.
    // An expired claim that was never released is a worker that died: counted
    // here, and cleared so the republished step can be claimed at once.
    const long long rows = affected(session, "UPDATE " + table_ +
                                                 " SET step_crash_count = step_crash_count +"
                                                 " CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END,"
                                                 " lease_owner = NULL, lease_until = " +
                                                 later("expect") +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running_ + overdue_sql(),
                          soci::use(expect), soci::use(run_id), soci::use(step), soci::use(fencing),
                          soci::use(values.unclaimed), soci::use(values.never));
    return rows > 0;
  });
}

std::string SqlProgramStore::state_condition(const std::string& state) const {
  // Each starts with finished_at IS NULL (but finished), so the unfinished
  // index of migration 5 serves it; the states as ProgramRow::state() decides.
  if (state == "running") return " AND finished_at IS NULL AND errored_at IS NULL";
  if (state == "finished") return " AND finished_at IS NOT NULL";
  if (state == "errored") {
    return " AND finished_at IS NULL AND errored_at IS NOT NULL AND cancelled_at IS NULL";
  }
  if (state == "cancelled") return " AND finished_at IS NULL AND cancelled_at IS NOT NULL";
  throw StoreError("unknown state '" + state + "' (expected running, finished, errored or cancelled)");
}

std::vector<ProgramRow> SqlProgramStore::list(const ProgramFilter& filter) {
  return guarded(database_, "listing programs", "*", [&](soci::session& session) {
    std::string where = " WHERE 1 = 1";
    if (filter.state) where += state_condition(*filter.state);
    // Keyset paging: the rows below the last id of the previous page, by the
    // primary key, so a deep page costs what the first does.
    if (filter.before_id) where += " AND id < :before";
    // The job list is a JSON array of strings: a job appears in it as its
    // JSON string, quotes included (so "a" does not match "ab").
    const std::string pattern = filter.job ? nlohmann::json(*filter.job).dump() : "";
    if (filter.job) where += " AND " + dialect_.job_list_contains("jobs", "pattern");
    const int limit = std::max(filter.limit, 0);
    const int offset = std::max(filter.offset, 0);
    const long long before = filter.before_id.value_or(0);
    RowReader reader;
    std::vector<ProgramRow> rows;
    for_each_row(
        session,
        "SELECT " + row_columns_ + " FROM " + table_ + where +
            " ORDER BY id DESC LIMIT :limit OFFSET :offset",
        [&](soci::statement& statement) {
          reader.bind(statement);
          if (filter.before_id) statement.exchange(soci::use(before));
          if (filter.job) statement.exchange(soci::use(pattern));
          statement.exchange(soci::use(limit));
          statement.exchange(soci::use(offset));
        },
        [&] { rows.push_back(reader.row()); });
    return rows;
  });
}

StateCounts SqlProgramStore::count_by_state() {
  return guarded(database_, "counting programs", "*", [&](soci::session& session) {
    // One pass over the table, the state decided as ProgramRow::state() does.
    StateCounts counts;
    long long running = 0, finished = 0, errored = 0, cancelled = 0;
    session << "SELECT"
               " COALESCE(SUM(CASE WHEN finished_at IS NULL AND errored_at IS NULL THEN 1 ELSE 0 END), 0),"
               " COALESCE(SUM(CASE WHEN finished_at IS NOT NULL THEN 1 ELSE 0 END), 0),"
               " COALESCE(SUM(CASE WHEN finished_at IS NULL AND errored_at IS NOT NULL"
               " AND cancelled_at IS NULL THEN 1 ELSE 0 END), 0),"
               " COALESCE(SUM(CASE WHEN finished_at IS NULL AND cancelled_at IS NOT NULL"
               " THEN 1 ELSE 0 END), 0)"
               " FROM " + table_,
        soci::into(running), soci::into(finished), soci::into(errored), soci::into(cancelled);
    counts.running = running;
    counts.finished = finished;
    counts.errored = errored;
    counts.cancelled = cancelled;
    return counts;
  });
}

bool SqlProgramStore::resume(const std::string& run_id, int from_step,
                             std::chrono::milliseconds expect_within) {
  return guarded(database_, "resuming a program", run_id, [&](soci::session& session) {
    const long long expect = milliseconds(expect_within);
    const long long rows = affected(session, "UPDATE " + table_ +
                                                 " SET errored_at = NULL, cancelled_at = NULL,"
                                                 " error_message = NULL,"
                                                 " step = :step, step_retry_count = 0,"
                                                 " step_crash_count = 0, step_isolated_crash_count = 0,"
                                                 " lease_owner = NULL,"
                                                 " lease_until = " + later("expect") +
                                                 ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND errored_at IS NOT NULL"
                                                 " AND finished_at IS NULL",
                          soci::use(from_step), soci::use(expect), soci::use(run_id));
    return rows > 0;
  });
}

long long SqlProgramStore::delete_ended(std::chrono::milliseconds ended_more_than, int limit) {
  return guarded(database_, "deleting ended programs", "", [&](soci::session& session) {
    const long long before = -milliseconds(ended_more_than);
    const int batch = std::max(limit, 0);
    const std::string ended = " WHERE COALESCE(finished_at, errored_at) < " + later("before");
    // MySQL and MariaDB refuse LIMIT in an IN subquery but take it on a
    // single-table DELETE; PostgreSQL has no DELETE ... LIMIT, and SQLite only
    // when compiled with it. Either way one statement deletes one batch, so
    // locks and the transaction log stay bounded however much is pruned.
    const std::string query =
        dialect_.name() == "mysql"
            ? "DELETE FROM " + table_ + ended + " ORDER BY id LIMIT :limit"
            : "DELETE FROM " + table_ + " WHERE id IN (SELECT id FROM " + table_ + ended +
                  " ORDER BY id LIMIT :limit)";
    return affected(session, query, soci::use(before), soci::use(batch));
  });
}

bool SqlProgramStore::restart_finished(const std::string& run_id, int from_step,
                                       std::chrono::milliseconds expect_within) {
  return guarded(database_, "restarting a finished program", run_id, [&](soci::session& session) {
    const long long expect = milliseconds(expect_within);
    const long long rows = affected(session, "UPDATE " + table_ +
                                                 " SET finished_at = NULL, error_message = NULL,"
                                                 " step = :step, step_retry_count = 0,"
                                                 " step_crash_count = 0, lease_owner = NULL,"
                                                 " lease_until = " + later("expect") +
                                                 ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND finished_at IS NOT NULL"
                                                 " AND errored_at IS NULL",
                          soci::use(from_step), soci::use(expect), soci::use(run_id));
    return rows > 0;
  });
}

}  // namespace program_executor::store
