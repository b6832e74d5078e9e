#include "operator_queries.hpp"

#include <algorithm>
#include <optional>

#include <soci/soci.h>

#include "attempt_log.hpp"
#include "guarded.hpp"
#include "one_time_statement.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/write_transaction.hpp"
#include "row_reader.hpp"
#include "step_statements.hpp"

namespace program_executor::store::detail {
namespace {

long long milliseconds(std::chrono::milliseconds duration) { return duration.count(); }

// The bound values of OperatorQueries::overdue_sql() and recent_sql().
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

OperatorQueries::OperatorQueries(Database& database, const AttemptLog& history)
    : database_(database),
      history_(history),
      dialect_(database.dialect()),
      table_(dialect_.quote(database.table())),
      now_(dialect_.now()),
      row_columns_(RowReader::columns(dialect_, RowReader::Data::read)),
      resume_sql_(restart_sql("errored_at = NULL, cancelled_at = NULL",
                              "errored_at IS NOT NULL AND finished_at IS NULL")),
      restart_finished_sql_(
          restart_sql("finished_at = NULL", "finished_at IS NOT NULL AND errored_at IS NULL")) {}

std::string OperatorQueries::later(const char* name) const { return dialect_.now_plus(name); }

std::string OperatorQueries::state_condition(const std::string& state) const {
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

std::vector<ProgramRow> OperatorQueries::list(const ProgramFilter& filter) {
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
    // Errored since a moment: finished_at IS NULL first, as state_condition's.
    if (filter.errored_within) {
      where += " AND finished_at IS NULL AND cancelled_at IS NULL AND errored_at >= " + later("errored_since");
    }
    const long long errored_since = filter.errored_within ? -filter.errored_within->count() : 0;
    // "host" matches "host:pid:worker" but not "hostess:...": the owner itself
    // or its parts up to a ':'. LIKE's wildcards in a host name are escaped.
    std::string worker_parts;
    if (filter.worker) {
      for (const char c : *filter.worker) {
        if (c == '!' || c == '%' || c == '_') worker_parts += '!';
        worker_parts += c;
      }
      worker_parts += ":%";
      where += " AND (lease_owner = :worker OR lease_owner LIKE :worker_parts ESCAPE '!')";
    }
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
          if (filter.errored_within) statement.exchange(soci::use(errored_since));
          if (filter.worker) {
            statement.exchange(soci::use(*filter.worker));
            statement.exchange(soci::use(worker_parts));
          }
          statement.exchange(soci::use(limit));
          statement.exchange(soci::use(offset));
        },
        [&] { rows.push_back(reader.row()); });
    return rows;
  });
}

StateCounts OperatorQueries::count_by_state() {
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

bool OperatorQueries::cancel(const std::string& run_id, std::string_view message) {
  return guarded(database_, "cancelling a program", run_id, [&](soci::session& session) {
    const std::string text = truncate_error_message(message);
    // The claim is cleared with it: its holder's next renewal fails, it
    // sees the cancel and stops the step without committing it.
    const long long rows = affected(session, "UPDATE " + table_ + " SET errored_at = " + now_ +
                                                 ", cancelled_at = " + now_ +
                                                 ", error_message = :message, lease_owner = NULL,"
                                                 " lease_until = NULL, updated_at = " +
                                                 now_ + " WHERE run_id = :run_id" +
                                                 std::string(still_running),
                          soci::use(text), soci::use(run_id));
    return rows > 0;
  });
}

std::string OperatorQueries::restart_sql(const std::string& cleared, const std::string& ended) const {
  return "UPDATE " + table_ + " SET " + cleared +
         ", error_message = NULL, step = :step, step_retry_count = 0,"
         " step_crash_count = 0, step_isolated_crash_count = 0, lease_owner = NULL,"
         " lease_until = " + later("expect") + ", updated_at = " + now_ +
         " WHERE run_id = :run_id AND " + ended;
}

bool OperatorQueries::restart(const char* what, const std::string& query, const std::string& run_id,
                              int from_step, std::chrono::milliseconds expect_within) {
  return guarded(database_, what, run_id, [&](soci::session& session) {
    const long long expect = milliseconds(expect_within);
    return affected(session, query, soci::use(from_step), soci::use(expect), soci::use(run_id)) > 0;
  });
}

bool OperatorQueries::resume(const std::string& run_id, int from_step,
                             std::chrono::milliseconds expect_within) {
  return restart("resuming a program", resume_sql_, run_id, from_step, expect_within);
}

bool OperatorQueries::restart_finished(const std::string& run_id, int from_step,
                                       std::chrono::milliseconds expect_within) {
  return restart("restarting a finished program", restart_finished_sql_, run_id, from_step,
                 expect_within);
}

std::string OperatorQueries::overdue_sql() const {
  // A claim that ran out (its worker died); a step this daemon released or
  // moved on, past the time it was expected to move by (plus, where it may be
  // running on a worker that takes no claim, the longer wait for unclaimed
  // steps); a row this daemon never touched, not updated for that long.
  return " AND ((lease_owner IS NOT NULL AND lease_until < " + now_ +
         ") OR (lease_owner IS NULL AND lease_until IS NOT NULL AND lease_until < " +
         later("unclaimed") + ") OR (lease_until IS NULL AND updated_at < " + later("never") +
         "))";
}

std::string OperatorQueries::recent_sql(bool limited) const {
  if (!limited) return "";
  // lease_until moves with every claim renewal, so a long job counts as moving.
  return " AND COALESCE(lease_until, updated_at) > " + later("max_age");
}

std::vector<StaleProgram> OperatorQueries::overdue(const RecoveryWindow& window, int limit) {
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

long long OperatorQueries::count_abandoned(const RecoveryWindow& window) {
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

bool OperatorQueries::begin_recovery(const std::string& run_id, int step, std::int64_t token,
                                     const RecoveryWindow& window,
                                     std::chrono::milliseconds expect_within) {
  return guarded(database_, "recovering a program", run_id, [&](soci::session& session) {
    WindowValues values(window);
    const long long expect = milliseconds(expect_within);
    const long long fencing = token;
    // The same overdue condition as overdue(): of several sweepers, one wins.
    // An expired claim that was never released is a worker that died: counted
    // here, and cleared so the republished step can be claimed at once. With
    // the history on, its `crashed` attempt is written in the same
    // transaction (and rolled back with it when another sweeper won).
    std::optional<WriteTransaction> transaction;
    if (history_.enabled()) {
      transaction.emplace(session, dialect_);
      affected(session, history_.crashed_insert(lease_fence()), soci::use(run_id), soci::use(step),
               soci::use(fencing));
    }
    const long long rows = affected(session, "UPDATE " + table_ +
                                                 " SET step_crash_count = step_crash_count +"
                                                 " CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END,"
                                                 " lease_owner = NULL, lease_until = " +
                                                 later("expect") + " WHERE " + lease_fence() +
                                                 std::string(still_running) + overdue_sql(),
                          soci::use(expect), soci::use(run_id), soci::use(step), soci::use(fencing),
                          soci::use(values.unclaimed), soci::use(values.never));
    if (transaction && rows > 0) transaction->commit();
    return rows > 0;
  });
}

long long OperatorQueries::delete_ended(std::chrono::milliseconds ended_more_than, int limit) {
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
    // The attempts of the programs of this batch go with them, in the same
    // transaction (MySQL: LIMIT only in a derived table of an IN subquery).
    const std::string batch_run_ids = "SELECT run_id FROM " + table_ + ended + " ORDER BY id LIMIT :limit";
    WriteTransaction transaction(session, dialect_);
    affected(session,
             history_.delete_of(dialect_.name() == "mysql"
                                    ? "SELECT run_id FROM (" + batch_run_ids + ") AS batch"
                                    : batch_run_ids),
             soci::use(before), soci::use(batch));
    const long long deleted = affected(session, query, soci::use(before), soci::use(batch));
    transaction.commit();
    return deleted;
  });
}

}  // namespace program_executor::store::detail
