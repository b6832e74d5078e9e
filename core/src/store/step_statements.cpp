#include "step_statements.hpp"

#include "program_executor/store/dialect.hpp"
#include "row_reader.hpp"

namespace program_executor::store::detail {
namespace {

// "(<first>) OR (<second>) ..." for `count` conditions built by `condition(n)`
// from each one's parameter suffix n.
template <class Condition>
std::string any_of(std::size_t count, Condition&& condition) {
  std::string text;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) text += " OR ";
    text += "(" + condition(std::to_string(i)) + ")";
  }
  return text;
}

}  // namespace

std::string lease_fence(std::string_view suffix) {
  const std::string n(suffix);
  return "run_id = :run_id" + n + " AND step = :step" + n + " AND lease_token = :token" + n;
}

StepStatements::StepStatements(const Dialect& dialect, const std::string& quoted_table)
    : batch_statements(dialect.update_returning()),
      keep_prepared(dialect.prepares_on_server()),
      dialect_(dialect),
      table_(quoted_table),
      jobs_count_(batch_statements ? dialect.json_array_length("jobs") : std::string()) {
  const std::string now = dialect.now();
  const std::string expected = dialect.now_plus("expect");
  // Released, and expected to move again within :expect ms.
  const std::string released = "lease_owner = NULL, lease_until = " + expected + ", updated_at = " + now;
  const std::string rows = RowReader::columns(dialect, RowReader::Data::read);

  // (MySQL evaluates SET left to right: the crash count reads the old owner.)
  // An unreleased claim whose lease ran out means its worker died (or lost
  // the database for longer than the lease): that is counted as a crash.
  claim_set_ = "UPDATE " + table_ +
               " SET step_crash_count = step_crash_count +"
               " CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END,"
               " lease_owner = :owner, lease_token = lease_token + 1, claimed_at = " + now +
               ", lease_until = " + dialect.now_plus("lease");
  claim_free_ = " AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < " + now + ")";
  advance_set_ =
      "step = step + 1, step_retry_count = 0, step_crash_count = 0, step_isolated_crash_count = 0, " +
      released;
  finish_set_ = "finished_at = " + now +
                ", step_retry_count = 0, lease_owner = NULL, lease_until = NULL, updated_at = " + now;

  insert = "INSERT INTO " + table_ +
           " (run_id, jobs, step, step_retry_count, job_data, program_data,"
           " created_at, updated_at, lease_until) SELECT :run_id, " +
           dialect.json_value("jobs") + ", 0, 0, " + dialect.json_value("job_data") + ", " +
           dialect.json_value("program_data") + ", " + now + ", " + now + ", " + expected +
           dialect.from_dual() + " WHERE NOT EXISTS (SELECT 1 FROM " + table_ +
           " WHERE run_id = :existing)";
  find = "SELECT " + rows + " FROM " + table_ + " WHERE run_id = :run_id ORDER BY id LIMIT 1";
  claim = claim_set_ + " WHERE run_id = :run_id AND step = :step" + std::string(still_running) +
          claim_free_;
  claim_read = "SELECT lease_token, step_crash_count, step_isolated_crash_count FROM " + table_ +
               " WHERE run_id = :run_id ORDER BY id LIMIT 1";
  advance = fenced(advance_set_);
  finish = fenced(finish_set_);
  renew = "UPDATE " + table_ + " SET lease_until = " + dialect.now_plus("lease") + " WHERE " +
          lease_fence() + " AND lease_owner IS NOT NULL" + std::string(still_running);
  release = fenced(released);
  record_retry = fenced("step_retry_count = step_retry_count + 1, error_message = :message, " + released);
  record_isolated_crash = fenced(
      "step_crash_count = step_crash_count + 1,"
      " step_isolated_crash_count = step_isolated_crash_count + 1, error_message = :message, " +
      released);
  fail = fenced("errored_at = " + now +
                ", error_message = :message, lease_owner = NULL, lease_until = NULL, updated_at = " + now);
  // An ended row keeps no lease at all; a running one keeps the time by
  // which it is expected to move.
  drop_claim = "UPDATE " + table_ +
               " SET lease_owner = NULL, lease_until = CASE WHEN"
               " COALESCE(finished_at, errored_at) IS NULL THEN lease_until ELSE NULL END"
               " WHERE run_id = :run_id AND lease_token = :token AND lease_owner IS NOT NULL";
  read_job_data = "SELECT id, " + dialect.json_text("job_data") + ", lease_token, " +
                  dialect.timestamp_text("COALESCE(finished_at, errored_at)") + " FROM " + table_ +
                  " WHERE run_id = :run_id ORDER BY id LIMIT 1" + dialect.lock_rows();
  write_job_data = "UPDATE " + table_ + " SET job_data = " + dialect.json_value("job_data") +
                   ", updated_at = " + now + " WHERE id = :id";
  find_many_prefix_ = "SELECT " + rows + " FROM " + table_ + " WHERE run_id IN (";
  claimed_columns_ = RowReader::columns(dialect, RowReader::Data::left_out);
}

std::string StepStatements::fenced(const std::string& set) const {
  return "UPDATE " + table_ + " SET " + set + " WHERE " + lease_fence() + std::string(still_running);
}

std::string StepStatements::fenced_many(const std::string& set, std::size_t count) const {
  return dialect_.update_returning_rows(
      "UPDATE " + table_ + " SET " + set + " WHERE (" +
      any_of(count, [](const std::string& n) { return lease_fence(n); }) + ")" +
      std::string(still_running) + " RETURNING run_id");
}

std::string StepStatements::advance_from(std::string_view source) const {
  return fenced_from(advance_set_, source, false);
}

std::string StepStatements::finish_from(std::string_view source) const {
  return fenced_from(finish_set_, source, true);
}

std::string StepStatements::fenced_from(const std::string& set, std::string_view source, bool last) const {
  // Not UPDATE ... FROM the source: the planner takes the source for 100
  // rows (a function's default) and, on a table without statistics yet (a
  // new one, or one autovacuum has not analysed), joins it by hash to a
  // sequential scan of the whole table, on every batch. `run_id = ANY(...)`
  // is an index condition whatever the statistics; the fence is then
  // checked on the rows it found.
  const std::string rows = std::string(" FROM ") + std::string(source) + " WHERE " + (last ? "" : "NOT ") + "l";
  return "UPDATE " + table_ + " SET " + set + " WHERE run_id = ANY(ARRAY(SELECT r" + rows +
         ")) AND (run_id, step, lease_token) IN (SELECT r, s, t" + rows + ")" + std::string(still_running) +
         " RETURNING run_id";
}

std::string StepStatements::find_many(std::size_t count) const {
  std::string list;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) list += ", ";
    list += ":run_id" + std::to_string(i);
  }
  return find_many_prefix_ + list + ") ORDER BY id";
}

std::string StepStatements::requested(std::size_t count) const {
  return any_of(count, [](const std::string& n) { return "run_id = :run_id" + n + " AND step = :step" + n; });
}

std::string StepStatements::claim_many(std::size_t count) const {
  // A single statement: atomic in autocommit, and one round trip.
  return dialect_.update_returning_rows(
      claim_set_ + " WHERE (" + requested(count) + ")" + std::string(still_running) + claim_free_ +
      " RETURNING run_id, lease_token, step_crash_count, step_isolated_crash_count");
}

std::string StepStatements::claim_unread(std::size_t count, bool free_only) const {
  // A step message names the jobs left, so its step is the job count minus those.
  return dialect_.update_returning_rows(
      claim_set_ + " WHERE (" + any_of(count, [&](const std::string& n) {
        return "run_id = :run_id" + n + " AND step = " + jobs_count_ + " - :jobs_left" + n;
      }) +
      ")" + std::string(still_running) + (free_only ? " AND lease_owner IS NULL" : claim_free_) +
      " RETURNING " + claimed_columns_);
}

std::string StepStatements::advance_many(std::size_t count) const {
  return fenced_many(advance_set_, count);
}

std::string StepStatements::finish_many(std::size_t count) const {
  return fenced_many(finish_set_, count);
}

}  // namespace program_executor::store::detail
