#include "attempt_log.hpp"

#include <algorithm>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"

#include "one_time_statement.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/program_store.hpp"
#include "step_statements.hpp"

namespace program_executor::store {

std::string attempts_table(const std::string& table) { return table + "_attempts"; }

std::string truncate_attempt_error(std::string_view message) {
  if (message.size() <= attempt_error_limit) return std::string(message);
  // Back to the start of the character the limit falls in (never inside a
  // UTF-8 sequence: a continuation byte is 10xxxxxx).
  std::size_t cut = attempt_error_limit;
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  return std::string(message.substr(0, cut)) + "\u2026 [truncated, " + std::to_string(message.size()) +
         " bytes]";
}

namespace detail {

// The buffers of one attempt of a statement.
struct AttemptValues {
  void assign(const AttemptWrite& write) {
    run_id = write.run_id;
    step = write.step;
    job = write.ending.job;
    attempt = write.ending.attempt;
    worker = write.ending.worker;
    token = write.token;
    duration = std::max(0LL, write.ending.duration_ms);
    back = -duration;
    outcome = write.ending.outcome;
    error = truncate_attempt_error(write.ending.error);
    exception_type = write.ending.exception_type;
    error_ind = error.empty() ? soci::i_null : soci::i_ok;
    type_ind = exception_type.empty() ? soci::i_null : soci::i_ok;
  }

  // In the order of the INSERT's placeholders (values()).
  void bind(soci::statement& statement) {
    statement.exchange(soci::use(run_id));
    statement.exchange(soci::use(step));
    statement.exchange(soci::use(job));
    statement.exchange(soci::use(attempt));
    statement.exchange(soci::use(worker));
    statement.exchange(soci::use(token));
    statement.exchange(soci::use(back));
    statement.exchange(soci::use(duration));
    statement.exchange(soci::use(outcome));
    statement.exchange(soci::use(error, error_ind));
    statement.exchange(soci::use(exception_type, type_ind));
  }

  std::string run_id;
  int step = 0;
  std::string job;
  int attempt = 0;
  std::string worker;
  long long token = 0;
  long long back = 0;  // -duration: started_at = now_plus(back)
  long long duration = 0;
  std::string outcome;
  std::string error;
  std::string exception_type;
  soci::indicator error_ind = soci::i_null;
  soci::indicator type_ind = soci::i_null;
};

AttemptRows::AttemptRows(std::size_t count) : rows_(count) {}
AttemptRows::~AttemptRows() = default;

void AttemptRows::bind(soci::statement& statement) {
  for (AttemptValues& row : rows_) row.bind(statement);
}

void AttemptRows::assign(const std::vector<AttemptWrite>& writes) {
  for (std::size_t i = 0; i < rows_.size() && i < writes.size(); ++i) rows_[i].assign(writes[i]);
}

namespace {

// The INSERT kept on a session for `count` attempts, with its values (the
// statement refers to them, so it is declared last: destroyed first).
struct KeptInsert {
  KeptInsert(soci::session& session, const std::string& query, std::size_t count)
      : rows(count), statement(session) {
    rows.bind(statement);
    statement.alloc();
    statement.prepare(query, soci::details::st_repeatable_query);
    statement.define_and_bind();
  }
  AttemptRows rows;
  soci::statement statement;
};

// The batches whose INSERT a session keeps: a lone step's and small
// batches'. A larger batch is rare (a backlog drained many at once) and
// amortises its parse; keeping every size would keep dozens of statements.
constexpr std::size_t kept_insert_rows = 4;

template <class Bind>
long long run(soci::session& session, const std::string& query, Bind&& bind) {
  soci::statement statement(session);
  bind(statement);
  statement.alloc();
  statement.prepare(query, soci::details::st_one_time_query);
  statement.define_and_bind();
  statement.execute(true);
  return statement.get_affected_rows();
}

}  // namespace

AttemptLog::AttemptLog(const Dialect& dialect, const std::string& table, bool enabled)
    : dialect_(dialect),
      programs_(dialect.quote(table)),
      table_(dialect.quote(attempts_table(table))),
      enabled_(enabled),
      columns_(" (run_id, step, job, attempt, worker, claim_token, started_at, ended_at, duration_ms,"
               " outcome, error, exception_type)") {}

std::string AttemptLog::values(std::size_t count, bool typed) const {
  // Typed for a VALUES list on PostgreSQL, whose parameters have no type of
  // their own there (the INSERT's columns do not reach into it).
  const auto as = [typed](const std::string& parameter, const char* type) {
    return typed ? "CAST(" + parameter + " AS " + type + ")" : parameter;
  };
  const std::string now = dialect_.now();
  std::string list;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string n = std::to_string(i);
    if (i > 0) list += ", ";
    list += "(" + as(":a_run_id" + n, "TEXT") + ", " + as(":a_step" + n, "INTEGER") + ", " +
            as(":a_job" + n, "TEXT") + ", " + as(":a_attempt" + n, "INTEGER") + ", " +
            as(":a_worker" + n, "TEXT") + ", " + as(":a_token" + n, "BIGINT") + ", " +
            dialect_.now_plus("a_back" + n) + ", " + now + ", " + as(":a_duration" + n, "BIGINT") + ", " +
            as(":a_outcome" + n, "TEXT") + ", " + as(":a_error" + n, "TEXT") + ", " +
            as(":a_type" + n, "TEXT") + ")";
  }
  return list;
}

std::string AttemptLog::insert_of(std::size_t count) const {
  return "INSERT INTO " + table_ + columns_ + " VALUES " + values(count, false);
}

void AttemptLog::insert(soci::session& session, const std::vector<AttemptWrite>& writes) const {
  if (!enabled_ || writes.empty()) return;
  AttemptRows rows(writes.size());
  rows.assign(writes);
  run(session, insert_of(writes.size()), [&](soci::statement& statement) { rows.bind(statement); });
}

void AttemptLog::insert(SessionLease& lease, const std::vector<AttemptWrite>& writes) const {
  if (!enabled_ || writes.empty()) return;
  const auto kept_for = [&](std::size_t rows) -> KeptInsert& {
    const std::string query = insert_of(rows);
    std::shared_ptr<void>& slot = lease.kept(query);
    if (!slot) slot = std::make_shared<KeptInsert>(lease.session(), query, rows);
    return *static_cast<KeptInsert*>(slot.get());
  };
  if (dialect_.in_process()) {
    KeptInsert& one = kept_for(1);
    for (const AttemptWrite& write : writes) {
      one.rows.assign({write});
      one.statement.execute(true);
    }
    return;
  }
  if (!dialect_.prepares_on_server() || writes.size() > kept_insert_rows) {
    insert(lease.session(), writes);
    return;
  }
  KeptInsert& kept = kept_for(writes.size());
  kept.rows.assign(writes);
  kept.statement.execute(true);
}

std::string AttemptLog::with_changes(const std::vector<std::string>& changes, std::size_t count) const {
  std::string query = "WITH ";
  std::string moved;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const std::string name = "changed" + std::to_string(i);
    query += name + " AS (" + changes[i] + "), ";
    if (i > 0) moved += " UNION ALL ";
    moved += "SELECT run_id FROM " + name;
  }
  return query + "moved AS (" + moved + "), written AS (INSERT INTO " + table_ + columns_ +
         " SELECT * FROM (VALUES " + values(count, true) + ") AS attempt" + columns_ +
         " WHERE attempt.run_id IN (SELECT run_id FROM moved)) SELECT run_id FROM moved";
}

std::string AttemptLog::batch_commit(const StepStatements& steps) const {
  // The batch is a JSON array read by jsonb_to_recordset: one parameter
  // whatever its size. Its columns are named apart from the tables'. The
  // CTE is read several times and materialised once.
  const std::string batch =
      "batch AS (SELECT * FROM jsonb_to_recordset(CAST(:batch AS jsonb)) AS b(r text, s integer, t bigint,"
      " l boolean, j text, a integer, w text, d bigint, o text, e text, x text))";
  return "WITH " + batch + ", advanced AS (" + steps.advance_from("batch") + "), finished AS (" +
         steps.finish_from("batch") +
         "), moved AS (SELECT run_id FROM advanced UNION ALL SELECT run_id FROM finished),"
         " written AS (INSERT INTO " + table_ + columns_ +
         " SELECT r, s, j, a, w, t, now() - d * INTERVAL '1 millisecond', now(), d, o, e, x FROM batch"
         " WHERE j IS NOT NULL AND r IN (SELECT run_id FROM moved)) SELECT run_id FROM moved";
}

std::string AttemptLog::batch_document(const std::vector<StepCommit>& commits) {
  nlohmann::json rows = nlohmann::json::array();
  std::set<std::string_view> with_attempt;
  for (const StepCommit& commit : commits) {
    nlohmann::json row = {{"r", commit.run_id}, {"s", commit.step}, {"t", commit.token}, {"l", commit.last}};
    if (commit.attempt && with_attempt.insert(commit.run_id).second) {
      const AttemptEnding& ending = *commit.attempt;
      row["j"] = ending.job;
      row["a"] = ending.attempt;
      row["w"] = ending.worker;
      row["d"] = std::max(0LL, ending.duration_ms);
      row["o"] = ending.outcome;
      // PostgreSQL's text holds no NUL character (jsonb refuses \u0000).
      const auto text = [](std::string value) {
        std::erase(value, '\0');
        return value;
      };
      if (!ending.error.empty()) row["e"] = text(truncate_attempt_error(ending.error));
      if (!ending.exception_type.empty()) row["x"] = text(ending.exception_type);
    }
    rows.push_back(std::move(row));
  }
  // Bytes that are not UTF-8 (a job's message may hold any) become U+FFFD
  // rather than failing the commit.
  return rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AttemptLog::supersede(soci::session& session, const AttemptWrite& write) const {
  if (!enabled_) return;
  AttemptValues row;
  row.assign(write);
  const std::string now = dialect_.now();
  const long long changed = run(session,
      "UPDATE " + table_ + " SET outcome = :outcome, started_at = " + dialect_.now_plus("back") +
          ", ended_at = " + now + ", duration_ms = :duration, error = :error, exception_type = :type"
          " WHERE run_id = :run_id AND claim_token = :token AND outcome = '" +
          std::string(attempt_outcome::crashed) + "'",
      [&](soci::statement& statement) {
        statement.exchange(soci::use(row.outcome));
        statement.exchange(soci::use(row.back));
        statement.exchange(soci::use(row.duration));
        statement.exchange(soci::use(row.error, row.error_ind));
        statement.exchange(soci::use(row.exception_type, row.type_ind));
        statement.exchange(soci::use(row.run_id));
        statement.exchange(soci::use(row.token));
      });
  if (changed == 0) insert(session, {write});
}

std::string AttemptLog::crashed_insert(const std::string& condition) const {
  const std::string now = dialect_.now();
  const std::string started = "COALESCE(claimed_at, " + now + ")";
  return "INSERT INTO " + table_ + columns_ + " SELECT run_id, step, COALESCE(" +
         dialect_.json_array_text_at("jobs", "step") + ", ''), COALESCE(step_retry_count, 0) + 1," +
         " lease_owner, lease_token, " + started + ", " + now + ", " +
         dialect_.milliseconds_between(started, now) + ", '" + std::string(attempt_outcome::crashed) +
         "', NULL, NULL FROM " + programs_ + " WHERE (" + condition + ")" + std::string(still_running) +
         " AND lease_owner IS NOT NULL AND (lease_until IS NULL OR lease_until < " + now + ")" +
         dialect_.lock_rows();
}

std::vector<AttemptRecord> AttemptLog::read(soci::session& session, const std::string& run_id) const {
  std::vector<AttemptRecord> attempts;
  AttemptRecord row;
  long long token = 0;
  std::string error, type;
  soci::indicator error_ind{}, type_ind{};
  for_each_row(
      session,
      "SELECT id, run_id, step, job, attempt, worker, claim_token, " +
          dialect_.timestamp_text("started_at") + ", " + dialect_.timestamp_text("ended_at") +
          ", duration_ms, outcome, error, exception_type FROM " + table_ +
          " WHERE run_id = :run_id ORDER BY id",
      [&](soci::statement& statement) {
        statement.exchange(soci::into(row.id));
        statement.exchange(soci::into(row.run_id));
        statement.exchange(soci::into(row.step));
        statement.exchange(soci::into(row.job));
        statement.exchange(soci::into(row.attempt));
        statement.exchange(soci::into(row.worker));
        statement.exchange(soci::into(token));
        statement.exchange(soci::into(row.started_at));
        statement.exchange(soci::into(row.ended_at));
        statement.exchange(soci::into(row.duration_ms));
        statement.exchange(soci::into(row.outcome));
        statement.exchange(soci::into(error, error_ind));
        statement.exchange(soci::into(type, type_ind));
        statement.exchange(soci::use(run_id));
      },
      [&] {
        AttemptRecord record = row;
        record.token = token;
        if (error_ind != soci::i_null) record.error = error;
        if (type_ind != soci::i_null) record.exception_type = type;
        attempts.push_back(std::move(record));
      });
  return attempts;
}

long long AttemptLog::prune(soci::session& session, long long older_than_ms, int limit) const {
  const long long before = -std::max(0LL, older_than_ms);
  const int batch = std::max(limit, 0);
  // The oldest `limit` rows by id, those of them that ended before the
  // cutoff: ids grow with ended_at (each attempt is written as it ends, by
  // the database's clock), so these are the oldest attempts, found on the
  // primary key without an index on ended_at, which every step would pay
  // for. The window keeps a batch's work bounded even when nothing is old.
  // (A crashed attempt superseded later ends after its id's neighbours: it
  // goes once it is old itself.) The LIMIT is in a derived table, which
  // MySQL materialises, so it takes it in an IN subquery as well.
  const std::string query = "DELETE FROM " + table_ + " WHERE id IN (SELECT id FROM (SELECT id, ended_at FROM " +
                            table_ + " ORDER BY id LIMIT :limit) oldest WHERE ended_at < " +
                            dialect_.now_plus("before") + ")";
  return affected(session, query, soci::use(batch), soci::use(before));
}

std::string AttemptLog::delete_of(const std::string& run_ids) const {
  return "DELETE FROM " + table_ + " WHERE run_id IN (" + run_ids + ")";
}

}  // namespace detail
}  // namespace program_executor::store
