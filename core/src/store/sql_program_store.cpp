#include "program_executor/store/sql_program_store.hpp"

#include <fmt/format.h>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"

namespace program_executor::store {
namespace {

constexpr const char* running = " AND finished_at IS NULL AND errored_at IS NULL";
constexpr const char* utc_format = "'%Y-%m-%dT%H:%M:%fZ'";

// SQLite's plain BEGIN takes a read lock first and fails with "database is
// locked" when two such transactions both upgrade; BEGIN IMMEDIATE takes the
// write lock up front and waits on the busy timeout instead.
class WriteTransaction {
 public:
  explicit WriteTransaction(soci::session& session) : session_(session) {
    session_ << "BEGIN IMMEDIATE";
  }
  ~WriteTransaction() {
    if (!committed_) {
      try {
        session_ << "ROLLBACK";
      } catch (...) {
        // Nothing more to do: the session is returned to the pool either way.
      }
    }
  }
  void commit() {
    session_ << "COMMIT";
    committed_ = true;
  }

 private:
  soci::session& session_;
  bool committed_ = false;
};

template <class F>
auto guarded(const char* what, const std::string& run_id, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const soci::soci_error& e) {
    throw StoreError(std::string("database error while ") + what + " (run id " + run_id +
                     "): " + e.what());
  }
}

nlohmann::json parse_column(const std::string& text, const char* column) {
  if (text.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw StoreError(std::string("column ") + column + " does not hold JSON: " + e.what());
  }
}

// A duration as an SQLite date modifier: "+1.500 seconds".
std::string duration_modifier(std::chrono::milliseconds duration) {
  return fmt::format("{:+.3f} seconds", static_cast<double>(duration.count()) / 1000.0);
}

// Runs a prepared UPDATE and tells whether it matched a row.
bool matched(soci::statement& statement) {
  statement.execute(true);
  return statement.get_affected_rows() > 0;
}

}  // namespace

SqlProgramStore::SqlProgramStore(Database& database)
    : database_(database),
      table_("\"" + database.table() + "\""),
      now_(std::string("strftime(") + utc_format + ",'now')") {}

std::string SqlProgramStore::later(const char* name) const {
  return std::string("strftime(") + utc_format + ",'now',:" + name + ")";
}

void SqlProgramStore::insert(const NewProgram& program, std::chrono::milliseconds expect_within) {
  guarded("inserting a program", program.run_id, [&] {
    soci::session session(database_.pool());
    const std::string jobs = nlohmann::json(program.jobs).dump();
    const std::string job_data = program.job_data.dump();
    const std::string program_data = program.program_data.dump();
    const std::string expect = duration_modifier(expect_within);
    session << "INSERT INTO " + table_ +
                   " (run_id, jobs, step, step_retry_count, job_data, program_data, created_at,"
                   " updated_at, lease_until) VALUES (:run_id, :jobs, 0, 0, :job_data, :program_data, " +
                   now_ + ", " + now_ + ", " + later("expect") + ")",
        soci::use(program.run_id), soci::use(jobs), soci::use(job_data), soci::use(program_data),
        soci::use(expect);
  });
}

std::optional<ProgramRow> SqlProgramStore::find(const std::string& run_id) {
  return guarded("reading a program", run_id, [&]() -> std::optional<ProgramRow> {
    soci::session session(database_.pool());
    ProgramRow row;
    std::string jobs, job_data, program_data, finished_at, errored_at, error_message, lease_owner,
        lease_until;
    soci::indicator finished_ind{}, errored_ind{}, message_ind{}, job_data_ind{},
        program_data_ind{}, owner_ind{}, until_ind{};
    int step = 0, retries = 0, crashes = 0;
    long long token = 0;
    soci::indicator step_ind{}, retries_ind{}, crashes_ind{}, token_ind{};
    session << "SELECT id, run_id, jobs, step, finished_at, errored_at, error_message,"
               " step_retry_count, job_data, program_data, created_at, updated_at,"
               " lease_owner, lease_token, lease_until, step_crash_count FROM " +
                   table_ + " WHERE run_id = :run_id ORDER BY id LIMIT 1",
        soci::into(row.id), soci::into(row.run_id), soci::into(jobs), soci::into(step, step_ind),
        soci::into(finished_at, finished_ind), soci::into(errored_at, errored_ind),
        soci::into(error_message, message_ind), soci::into(retries, retries_ind),
        soci::into(job_data, job_data_ind), soci::into(program_data, program_data_ind),
        soci::into(row.created_at), soci::into(row.updated_at), soci::into(lease_owner, owner_ind),
        soci::into(token, token_ind), soci::into(lease_until, until_ind),
        soci::into(crashes, crashes_ind), soci::use(run_id);
    if (!session.got_data()) return std::nullopt;
    const nlohmann::json job_list = parse_column(jobs, "jobs");
    if (!job_list.is_array()) throw StoreError("column jobs is not a JSON array");
    for (const auto& job : job_list) row.jobs.push_back(job.is_string() ? job.get<std::string>() : job.dump());
    row.step = step_ind == soci::i_null ? 0 : step;
    row.step_retry_count = retries_ind == soci::i_null ? 0 : retries;
    if (finished_ind != soci::i_null) row.finished_at = finished_at;
    if (errored_ind != soci::i_null) row.errored_at = errored_at;
    if (message_ind != soci::i_null) row.error_message = error_message;
    row.job_data = job_data_ind == soci::i_null ? nlohmann::json::object()
                                                : parse_column(job_data, "job_data");
    row.program_data = program_data_ind == soci::i_null
                           ? nlohmann::json::object()
                           : parse_column(program_data, "program_data");
    if (owner_ind != soci::i_null) row.lease_owner = lease_owner;
    row.lease_token = token_ind == soci::i_null ? 0 : token;
    if (until_ind != soci::i_null) row.lease_until = lease_until;
    row.step_crash_count = crashes_ind == soci::i_null ? 0 : crashes;
    return row;
  });
}

std::optional<StepClaim> SqlProgramStore::claim(const std::string& run_id, int step,
                                                const std::string& owner,
                                                std::chrono::milliseconds lease) {
  return guarded("claiming a step", run_id, [&]() -> std::optional<StepClaim> {
    soci::session session(database_.pool());
    WriteTransaction transaction(session);
    const std::string lease_for = duration_modifier(lease);
    // An unreleased claim whose lease ran out means its worker died (or lost
    // the database for longer than the lease): that is counted as a crash.
    soci::statement update =
        (session.prepare << "UPDATE " + table_ +
                                " SET step_crash_count = step_crash_count +"
                                " CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END,"
                                " lease_owner = :owner, lease_token = lease_token + 1,"
                                " lease_until = " + later("lease") +
                                " WHERE run_id = :run_id AND step = :step" + running +
                                " AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < " +
                                now_ + ")",
         soci::use(owner), soci::use(lease_for), soci::use(run_id), soci::use(step));
    if (!matched(update)) return std::nullopt;
    StepClaim claim;
    long long token = 0;
    session << "SELECT lease_token, step_crash_count FROM " + table_ +
                   " WHERE run_id = :run_id ORDER BY id LIMIT 1",
        soci::into(token), soci::into(claim.crashes), soci::use(run_id);
    transaction.commit();
    claim.token = token;
    return claim;
  });
}

bool SqlProgramStore::renew(const std::string& run_id, int step, std::int64_t token,
                            std::chrono::milliseconds lease) {
  return guarded("renewing a claim", run_id, [&] {
    soci::session session(database_.pool());
    const std::string lease_for = duration_modifier(lease);
    const long long fencing = token;
    soci::statement st = (session.prepare << "UPDATE " + table_ + " SET lease_until = " +
                                                 later("lease") +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token AND lease_owner IS NOT NULL" +
                                                 running,
                          soci::use(lease_for), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return matched(st);
  });
}

bool SqlProgramStore::release(const std::string& run_id, int step, std::int64_t token,
                              std::chrono::milliseconds expect_within) {
  return guarded("releasing a claim", run_id, [&] {
    soci::session session(database_.pool());
    const std::string expect = duration_modifier(expect_within);
    const long long fencing = token;
    soci::statement st = (session.prepare << "UPDATE " + table_ +
                                                 " SET lease_owner = NULL, lease_until = " +
                                                 later("expect") + ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running,
                          soci::use(expect), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return matched(st);
  });
}

bool SqlProgramStore::advance(const std::string& run_id, int step, std::int64_t token,
                              std::chrono::milliseconds expect_within) {
  return guarded("advancing a program", run_id, [&] {
    soci::session session(database_.pool());
    const std::string expect = duration_modifier(expect_within);
    const long long fencing = token;
    soci::statement st = (session.prepare << "UPDATE " + table_ +
                                                 " SET step = step + 1, step_retry_count = 0,"
                                                 " step_crash_count = 0, lease_owner = NULL,"
                                                 " lease_until = " + later("expect") +
                                                 ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running,
                          soci::use(expect), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return matched(st);
  });
}

bool SqlProgramStore::finish(const std::string& run_id, int step, std::int64_t token) {
  return guarded("finishing a program", run_id, [&] {
    soci::session session(database_.pool());
    const long long fencing = token;
    soci::statement st = (session.prepare << "UPDATE " + table_ + " SET finished_at = " + now_ +
                                                 ", step_retry_count = 0, lease_owner = NULL,"
                                                 " lease_until = NULL, updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running,
                          soci::use(run_id), soci::use(step), soci::use(fencing));
    return matched(st);
  });
}

bool SqlProgramStore::record_retry(const std::string& run_id, int step, std::int64_t token,
                                   std::string_view message,
                                   std::chrono::milliseconds expect_within) {
  return guarded("recording a retry", run_id, [&] {
    soci::session session(database_.pool());
    const std::string text = truncate_error_message(message);
    const std::string expect = duration_modifier(expect_within);
    const long long fencing = token;
    soci::statement st = (session.prepare << "UPDATE " + table_ +
                                                 " SET step_retry_count = step_retry_count + 1,"
                                                 " error_message = :message, lease_owner = NULL,"
                                                 " lease_until = " + later("expect") +
                                                 ", updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running,
                          soci::use(text), soci::use(expect), soci::use(run_id), soci::use(step),
                          soci::use(fencing));
    return matched(st);
  });
}

bool SqlProgramStore::fail(const std::string& run_id, int step, std::int64_t token,
                           std::string_view message) {
  return guarded("failing a program", run_id, [&] {
    soci::session session(database_.pool());
    const std::string text = truncate_error_message(message);
    const long long fencing = token;
    soci::statement st = (session.prepare << "UPDATE " + table_ + " SET errored_at = " + now_ +
                                                 ", error_message = :message, lease_owner = NULL,"
                                                 " lease_until = NULL, updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running,
                          soci::use(text), soci::use(run_id), soci::use(step), soci::use(fencing));
    return matched(st);
  });
}

bool SqlProgramStore::cancel(const std::string& run_id, std::string_view message) {
  return guarded("cancelling a program", run_id, [&] {
    soci::session session(database_.pool());
    const std::string text = truncate_error_message(message);
    soci::statement st = (session.prepare << "UPDATE " + table_ + " SET errored_at = " + now_ +
                                                 ", error_message = :message, updated_at = " +
                                                 now_ + " WHERE run_id = :run_id" + running,
                          soci::use(text), soci::use(run_id));
    return matched(st);
  });
}

nlohmann::json SqlProgramStore::update_job_data(
    const std::string& run_id, const std::string& job_name, std::int64_t token,
    const std::function<nlohmann::json(const nlohmann::json&)>& modify) {
  return guarded("updating job data", run_id, [&] {
    soci::session session(database_.pool());
    WriteTransaction transaction(session);
    std::string text;
    soci::indicator ind{};
    long long current_token = 0;
    session << "SELECT job_data, lease_token FROM " + table_ +
                   " WHERE run_id = :run_id ORDER BY id LIMIT 1",
        soci::into(text, ind), soci::into(current_token), soci::use(run_id);
    if (!session.got_data()) throw StoreError("no program with run id " + run_id);
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
    session << "UPDATE " + table_ + " SET job_data = :job_data, updated_at = " + now_ +
                   " WHERE run_id = :run_id",
        soci::use(stored), soci::use(run_id);
    transaction.commit();
    return updated;
  });
}

std::vector<StaleProgram> SqlProgramStore::overdue(std::chrono::milliseconds stale_after,
                                                   int limit) {
  return guarded("looking for overdue programs", "*", [&] {
    soci::session session(database_.pool());
    const std::string before = duration_modifier(-stale_after);
    std::vector<StaleProgram> found;
    soci::rowset<soci::row> rows =
        (session.prepare << "SELECT run_id, step, lease_token, jobs, program_data FROM " + table_ +
                                " WHERE finished_at IS NULL AND errored_at IS NULL AND"
                                " ((lease_until IS NOT NULL AND lease_until < " + now_ +
                                ") OR (lease_until IS NULL AND updated_at < " + later("before") +
                                ")) ORDER BY updated_at LIMIT :limit",
         soci::use(before), soci::use(limit));
    for (const soci::row& r : rows) {
      StaleProgram program;
      program.run_id = r.get<std::string>(0);
      program.step = r.get_indicator(1) == soci::i_null ? 0 : r.get<int>(1);
      program.token = r.get_indicator(2) == soci::i_null ? 0 : r.get<long long>(2);
      const nlohmann::json jobs = parse_column(r.get<std::string>(3), "jobs");
      for (const auto& job : jobs) program.jobs.push_back(job.is_string() ? job.get<std::string>() : job.dump());
      program.program_data = r.get_indicator(4) == soci::i_null
                                 ? nlohmann::json::object()
                                 : parse_column(r.get<std::string>(4), "program_data");
      found.push_back(std::move(program));
    }
    return found;
  });
}

bool SqlProgramStore::begin_recovery(const std::string& run_id, int step, std::int64_t token,
                                     std::chrono::milliseconds stale_after,
                                     std::chrono::milliseconds expect_within) {
  return guarded("recovering a program", run_id, [&] {
    soci::session session(database_.pool());
    const std::string expect = duration_modifier(expect_within);
    const std::string before = duration_modifier(-stale_after);
    const long long fencing = token;
    // The same overdue condition as overdue(): of several sweepers, one wins.
    // An expired claim that was never released is a worker that died: counted
    // here, and cleared so the republished step can be claimed at once.
    soci::statement st = (session.prepare << "UPDATE " + table_ +
                                                 " SET step_crash_count = step_crash_count +"
                                                 " CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END,"
                                                 " lease_owner = NULL, lease_until = " +
                                                 later("expect") +
                                                 " WHERE run_id = :run_id AND step = :step AND"
                                                 " lease_token = :token" + running +
                                                 " AND ((lease_until IS NOT NULL AND lease_until < " +
                                                 now_ + ") OR (lease_until IS NULL AND updated_at < " +
                                                 later("before") + "))",
                          soci::use(expect), soci::use(run_id), soci::use(step), soci::use(fencing),
                          soci::use(before));
    return matched(st);
  });
}

}  // namespace program_executor::store
