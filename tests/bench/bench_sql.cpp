#include "bench_sql.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <iostream>

#include <nlohmann/json.hpp>

#include "amqp_link.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/migrations.hpp"
#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/throughput_store.hpp"
#include "program_executor/store/write_transaction.hpp"

namespace program_executor::bench {
namespace {

constexpr long long fill_chunk = 100000;
constexpr int insert_chunk = 1000;
// Longer than any bench run: a program waiting in the backlog must not look
// overdue to the recovery sweeper, which would republish its step.
constexpr long long expect_within_ms = 3600LL * 1000;

config::DatabaseSettings settings_of(const std::string& backend, const std::string& connection,
                                     const std::string& table) {
  config::DatabaseSettings settings;
  settings.backend = store::parse_backend(backend);
  settings.connection = connection;
  settings.table = table;
  settings.migrate = true;
  return settings;
}

}  // namespace

BenchTable::BenchTable(const std::string& backend, const std::string& connection,
                       const std::string& table, std::size_t pool_size)
    : table_(table),
      database_(std::make_unique<store::Database>(settings_of(backend, connection, table), pool_size)) {}

BenchTable::~BenchTable() {
  try {
    drop();
  } catch (const std::exception& e) {
    std::cerr << "pe-bench: could not drop table " << table_ << ": " << e.what() << "\n";
  }
}

std::string BenchTable::quoted() const { return database_->dialect().quote(table_); }

void BenchTable::create() {
  created_ = true;  // even half created, it must be dropped
  database_->migrate();
}

void BenchTable::drop() {
  if (!created_) return;
  store::SessionLease lease(*database_);
  const store::Dialect& dialect = database_->dialect();
  lease.session() << "DROP TABLE IF EXISTS " + dialect.quote(table_);
  lease.session() << "DROP TABLE IF EXISTS " + dialect.quote(store::schema_version_table(table_));
  lease.session() << "DROP TABLE IF EXISTS " + dialect.quote(store::throughput_table(table_));
  lease.session() << "DROP TABLE IF EXISTS " + dialect.quote(store::attempts_table(table_));
  created_ = false;
}

void BenchTable::fill_finished(long long rows) {
  const store::Dialect& dialect = database_->dialect();
  const std::string dialect_name(dialect.name());
  const std::string now = dialect.now();
  const std::string columns =
      " (run_id, jobs, step, step_retry_count, job_data, program_data, finished_at, created_at, "
      "updated_at) ";
  const std::string jobs = R"(["demo.noop"])";
  store::SessionLease lease(*database_);
  soci::session& session = lease.session();
  for (long long lo = 1; lo <= rows; lo += fill_chunk) {
    long long hi = std::min(rows, lo + fill_chunk - 1);
    if (dialect_name == "postgresql") {
      session << "INSERT INTO " + quoted() + columns + "SELECT 'filler-' || g, " +
                     dialect.json_value("jobs") + ", 0, 0, CAST('{}' AS jsonb), CAST('{}' AS jsonb), " +
                     now + ", " + now + ", " + now +
                     " FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g",
          soci::use(jobs, "jobs"), soci::use(lo, "lo"), soci::use(hi, "hi");
    } else if (dialect_name == "mysql") {
      // MariaDB's sequence engine: seq_1_to_N is a table of the numbers 1..N.
      session << "INSERT INTO " + quoted() + columns + "SELECT CONCAT('filler-', seq), :jobs, 0, 0, "
                     "'{}', '{}', " + now + ", " + now + ", " + now + " FROM seq_" +
                     std::to_string(lo) + "_to_" + std::to_string(hi),
          soci::use(jobs, "jobs");
    } else {
      session << "WITH RECURSIVE g(x) AS (SELECT :lo UNION ALL SELECT x + 1 FROM g WHERE x < :hi) "
                 "INSERT INTO " + quoted() + columns + "SELECT 'filler-' || x, :jobs, 0, 0, '{}', '{}', " +
                     now + ", " + now + ", " + now + " FROM g",
          soci::use(lo, "lo"), soci::use(hi, "hi"), soci::use(jobs, "jobs");
    }
  }
  // Statistics as a table that grew over time would have them.
  if (dialect_name == "postgresql") session << "ANALYZE " + quoted();
  if (dialect_name == "mysql") session << "ANALYZE TABLE " + quoted();
}

std::int64_t BenchTable::seed_old_attempts(long long rows, int age_days) {
  const store::Dialect& dialect = database_->dialect();
  const std::string dialect_name(dialect.name());
  const std::string table = dialect.quote(store::attempts_table(table_));
  const long long age_ms = -static_cast<long long>(age_days) * 24 * 3600 * 1000;
  const std::string ended = dialect.now_plus("age");
  const std::string columns =
      " (run_id, step, job, attempt, worker, claim_token, started_at, ended_at, duration_ms, outcome, error, "
      "exception_type) ";
  // A finished attempt of a 5-job program: five rows per run id, as steps leave them.
  const auto row = [&](const std::string& n, const std::string& run_id) {
    return "SELECT " + run_id + ", " + n + " % 5, 'demo.noop', 1, 'bench-host:1:0', 1, " + ended + ", " + ended +
           ", 0, 'finished', NULL, NULL";
  };
  store::SessionLease lease(*database_);
  soci::session& session = lease.session();
  for (long long lo = 1; lo <= rows; lo += fill_chunk) {
    long long hi = std::min(rows, lo + fill_chunk - 1);
    if (dialect_name == "postgresql") {
      session << "INSERT INTO " + table + columns + row("g", "'seed-' || (g / 5)") +
                     " FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g",
          soci::use(age_ms, "age"), soci::use(lo, "lo"), soci::use(hi, "hi");
    } else if (dialect_name == "mysql") {
      session << "INSERT INTO " + table + columns + row("seq", "CONCAT('seed-', seq DIV 5)") + " FROM seq_" +
                     std::to_string(lo) + "_to_" + std::to_string(hi),
          soci::use(age_ms, "age");
    } else {
      session << "WITH RECURSIVE g(x) AS (SELECT :lo UNION ALL SELECT x + 1 FROM g WHERE x < :hi) "
                 "INSERT INTO " + table + columns + row("x", "'seed-' || (x / 5)") + " FROM g",
          soci::use(lo, "lo"), soci::use(hi, "hi"), soci::use(age_ms, "age");
    }
  }
  if (dialect_name == "postgresql") session << "ANALYZE " + table;
  if (dialect_name == "mysql") session << "ANALYZE TABLE " + table;
  // The seeding's pages out of SQLite's write-ahead log into the file now,
  // not by the daemons' first commits: that checkpoint is the bench's cost.
  if (dialect_name == "sqlite3") session << "PRAGMA wal_checkpoint(TRUNCATE)";
  long long highest = 0;
  soci::indicator ind{};
  session << "SELECT MAX(id) FROM " + table, soci::into(highest, ind);
  return ind == soci::i_null ? 0 : highest;
}

long long BenchTable::count_attempts_up_to(std::int64_t id) {
  const store::Dialect& dialect = database_->dialect();
  store::SessionLease lease(*database_);
  long long count = 0;
  const long long highest = id;
  lease.session() << "SELECT COUNT(*) FROM " + dialect.quote(store::attempts_table(table_)) + " WHERE id <= :id",
      soci::into(count), soci::use(highest, "id");
  return count;
}

std::string BenchTable::mixed_job(int index) { return "bench.job" + std::to_string(index); }

void BenchTable::fill_mixed(long long rows) {
  const store::Dialect& dialect = database_->dialect();
  const std::string dialect_name(dialect.name());
  const bool mysql = dialect_name == "mysql";
  // The series variable of each dialect's row generator.
  const std::string g = dialect_name == "postgresql" ? "g" : mysql ? "seq" : "x";
  const auto concat = [mysql](const std::vector<std::string>& parts) {
    std::string text;
    for (const auto& part : parts) text += (text.empty() ? "" : mysql ? ", " : " || ") + part;
    return mysql ? "CONCAT(" + text + ")" : "(" + text + ")";
  };
  const std::string kind = "(" + g + " % 200)";
  const std::string finished = "(" + kind + " = 0 OR " + kind + " > 6)";
  const std::string errored = "(" + kind + " BETWEEN 1 AND 5)";
  const std::string now = dialect.now();
  std::string jobs = concat({"'[\"bench.job'", "(" + g + " % 20)", "'\"'",
                             "CASE WHEN " + g + " % 3 = 0 THEN ', \"bench.load\"' ELSE '' END",
                             "CASE WHEN " + g + " % 10000 = 1 THEN ', \"" + rare_job() + "\"' ELSE '' END", "']'"});
  if (dialect_name == "postgresql") jobs = "CAST(" + jobs + " AS jsonb)";
  const std::string empty = dialect_name == "postgresql" ? "CAST('{}' AS jsonb)" : "'{}'";
  const std::string when_cancelled = "CASE WHEN " + kind + " = 5 THEN ";
  const std::string select = "SELECT " + concat({"'filler-'", g}) + ", " + jobs + ", 0, 0, " + empty + ", " +
                             empty + ", CASE WHEN " + finished + " THEN " + now + " END, CASE WHEN " + errored +
                             " THEN " + now + " END, " + when_cancelled + now + " END, " + when_cancelled +
                             "'cancelled' WHEN " + errored + " THEN 'bench: the job failed' END, CASE WHEN " + kind +
                             " = 6 THEN " + dialect.now_plus("expect") + " END, " + now + ", " + now;
  const std::string insert = "INSERT INTO " + quoted() +
                             " (run_id, jobs, step, step_retry_count, job_data, program_data, finished_at, "
                             "errored_at, cancelled_at, error_message, lease_until, created_at, updated_at) ";
  const long long expect = expect_within_ms;
  store::SessionLease lease(*database_);
  soci::session& session = lease.session();
  for (long long lo = 1; lo <= rows; lo += fill_chunk) {
    long long hi = std::min(rows, lo + fill_chunk - 1);
    if (dialect_name == "postgresql") {
      session << insert + select + " FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g",
          soci::use(expect, "expect"), soci::use(lo, "lo"), soci::use(hi, "hi");
    } else if (mysql) {
      session << insert + select + " FROM seq_" + std::to_string(lo) + "_to_" + std::to_string(hi),
          soci::use(expect, "expect");
    } else {
      session << "WITH RECURSIVE g(x) AS (SELECT :lo UNION ALL SELECT x + 1 FROM g WHERE x < :hi) " + insert +
                     select + " FROM g",
          soci::use(lo, "lo"), soci::use(hi, "hi"), soci::use(expect, "expect");
    }
  }
  if (dialect_name == "postgresql") session << "ANALYZE " + quoted();
  if (mysql) session << "ANALYZE TABLE " + quoted();
}

std::vector<std::string> BenchTable::insert_programs(int count, const std::vector<std::string>& jobs,
                                                     const std::function<std::string(int)>& job_data) {
  const store::Dialect& dialect = database_->dialect();
  const std::string jobs_text = nlohmann::json(jobs).dump();
  const std::string empty = "{}";
  std::string data = empty;
  const long long expect = expect_within_ms;
  std::string run_id;
  store::SessionLease lease(*database_);
  soci::session& session = lease.session();
  soci::statement insert =
      (session.prepare << "INSERT INTO " + quoted() +
                              " (run_id, jobs, step, step_retry_count, job_data, program_data, "
                              "created_at, updated_at, lease_until) VALUES (:run_id, " +
                              dialect.json_value("jobs") + ", 0, 0, " + dialect.json_value("job_data") +
                              ", " + dialect.json_value("program_data") + ", " + dialect.now() + ", " +
                              dialect.now() + ", " + dialect.now_plus("expect") + ")",
       soci::use(run_id, "run_id"), soci::use(jobs_text, "jobs"), soci::use(data, "job_data"),
       soci::use(empty, "program_data"), soci::use(expect, "expect"));
  std::vector<std::string> run_ids;
  run_ids.reserve(static_cast<std::size_t>(count));
  for (int done = 0; done < count;) {
    store::WriteTransaction transaction(session, dialect);
    for (int i = 0; i < insert_chunk && done < count; ++i, ++done) {
      run_id = executor::new_run_id();
      if (job_data) data = job_data(done);
      insert.execute(true);
      run_ids.push_back(run_id);
    }
    transaction.commit();
  }
  return run_ids;
}

std::int64_t BenchTable::max_id() {
  store::SessionLease lease(*database_);
  long long id = 0;
  lease.session() << "SELECT COALESCE(MAX(id), 0) FROM " + quoted(), soci::into(id);
  return id;
}

long long BenchTable::rows_after(std::int64_t after) {
  store::SessionLease lease(*database_);
  long long from = after;
  long long rows = 0;
  lease.session() << "SELECT COUNT(*) FROM " + quoted() + " WHERE id > :after", soci::into(rows),
      soci::use(from, "after");
  return rows;
}

BenchTable::Ended BenchTable::ended_after(std::int64_t after) {
  store::SessionLease lease(*database_);
  long long from = after;
  Ended ended;
  lease.session() << "SELECT COUNT(*) FROM " + quoted() + " WHERE id > :after AND finished_at IS NOT NULL",
      soci::into(ended.finished), soci::use(from, "after");
  lease.session() << "SELECT COUNT(*) FROM " + quoted() + " WHERE id > :after AND errored_at IS NOT NULL",
      soci::into(ended.errored), soci::use(from, "after");
  return ended;
}

// ---- EndWatcher ---------------------------------------------------------------

struct EndWatcher::State {
  store::SessionLease lease;
  long long low = 0;    ///< every program with id <= low has ended
  long long found = 0;
  soci::statement first_running;

  State(BenchTable& table, std::int64_t after)
      : lease(table.database()),
        low(after),
        first_running((lease.session().prepare << "SELECT id FROM " + table.quoted() +
                                                       " WHERE id > :low AND finished_at IS NULL AND "
                                                       "errored_at IS NULL ORDER BY id LIMIT 1",
                       soci::into(found), soci::use(low, "low"))) {}
};

EndWatcher::EndWatcher(BenchTable& table, std::int64_t after)
    : state_(std::make_unique<State>(table, after)) {}

EndWatcher::~EndWatcher() = default;

bool EndWatcher::all_ended() {
  state_->first_running.execute(true);
  if (!state_->first_running.got_data()) return true;
  state_->low = state_->found - 1;
  // Step past the only row: SQLite ends the statement's read transaction only
  // then; left open between polls it would hold back the daemon's checkpoints.
  state_->first_running.fetch();
  return false;
}

// ---- FinishPoller -------------------------------------------------------------

struct FinishPoller::State {
  store::SessionLease lease;
  std::string run_id;
  long long count = 0;
  soci::statement query;

  explicit State(BenchTable& table)
      : lease(table.database()),
        query((lease.session().prepare << "SELECT COUNT(*) FROM " + table.quoted() +
                                              " WHERE run_id = :run_id AND finished_at IS NOT NULL",
               soci::into(count), soci::use(run_id, "run_id"))) {}
};

FinishPoller::FinishPoller(BenchTable& table) : state_(std::make_unique<State>(table)) {}

FinishPoller::~FinishPoller() = default;

bool FinishPoller::finished(const std::string& run_id) {
  state_->run_id = run_id;
  state_->query.execute(true);
  const bool finished = state_->count > 0;
  state_->query.fetch();  // ends the read transaction on SQLite (see EndWatcher)
  return finished;
}

}  // namespace program_executor::bench
