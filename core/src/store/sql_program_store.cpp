#include "program_executor/store/sql_program_store.hpp"

#include <soci/soci.h>

#include "program_executor/store/database.hpp"

namespace program_executor::store {
namespace {

constexpr const char* running = " AND finished_at IS NULL AND errored_at IS NULL";

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

}  // namespace

SqlProgramStore::SqlProgramStore(Database& database)
    : database_(database),
      table_("\"" + database.table() + "\""),
      now_("strftime('%Y-%m-%dT%H:%M:%fZ','now')") {}

void SqlProgramStore::insert(const NewProgram& program) {
  guarded("inserting a program", program.run_id, [&] {
    soci::session session(database_.pool());
    const std::string jobs = nlohmann::json(program.jobs).dump();
    const std::string job_data = program.job_data.dump();
    const std::string program_data = program.program_data.dump();
    session << "INSERT INTO " + table_ +
                   " (run_id, jobs, step, step_retry_count, job_data, program_data, created_at,"
                   " updated_at) VALUES (:run_id, :jobs, 0, 0, :job_data, :program_data, " +
                   now_ + ", " + now_ + ")",
        soci::use(program.run_id), soci::use(jobs), soci::use(job_data), soci::use(program_data);
  });
}

std::optional<ProgramRow> SqlProgramStore::find(const std::string& run_id) {
  return guarded("reading a program", run_id, [&]() -> std::optional<ProgramRow> {
    soci::session session(database_.pool());
    ProgramRow row;
    std::string jobs, job_data, program_data, finished_at, errored_at, error_message;
    soci::indicator finished_ind{}, errored_ind{}, message_ind{}, job_data_ind{},
        program_data_ind{};
    int step = 0, retries = 0;
    soci::indicator step_ind{}, retries_ind{};
    session << "SELECT id, run_id, jobs, step, finished_at, errored_at, error_message,"
               " step_retry_count, job_data, program_data, created_at, updated_at FROM " +
                   table_ + " WHERE run_id = :run_id ORDER BY id LIMIT 1",
        soci::into(row.id), soci::into(row.run_id), soci::into(jobs), soci::into(step, step_ind),
        soci::into(finished_at, finished_ind), soci::into(errored_at, errored_ind),
        soci::into(error_message, message_ind), soci::into(retries, retries_ind),
        soci::into(job_data, job_data_ind), soci::into(program_data, program_data_ind),
        soci::into(row.created_at), soci::into(row.updated_at), soci::use(run_id);
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
    return row;
  });
}

bool SqlProgramStore::advance(const std::string& run_id, int step) {
  return guarded("advancing a program", run_id, [&] {
    soci::session session(database_.pool());
    soci::statement st = (session.prepare << "UPDATE " + table_ +
                                                 " SET step = step + 1, step_retry_count = 0,"
                                                 " updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step" +
                                                 running,
                          soci::use(run_id), soci::use(step));
    st.execute(true);
    return st.get_affected_rows() > 0;
  });
}

bool SqlProgramStore::finish(const std::string& run_id, int step) {
  return guarded("finishing a program", run_id, [&] {
    soci::session session(database_.pool());
    soci::statement st = (session.prepare << "UPDATE " + table_ + " SET finished_at = " + now_ +
                                                 ", step_retry_count = 0, updated_at = " + now_ +
                                                 " WHERE run_id = :run_id AND step = :step" +
                                                 running,
                          soci::use(run_id), soci::use(step));
    st.execute(true);
    return st.get_affected_rows() > 0;
  });
}

bool SqlProgramStore::record_retry(const std::string& run_id, int step, std::string_view message) {
  return guarded("recording a retry", run_id, [&] {
    soci::session session(database_.pool());
    const std::string text = truncate_error_message(message);
    soci::statement st = (session.prepare << "UPDATE " + table_ +
                                                 " SET step_retry_count = step_retry_count + 1,"
                                                 " error_message = :message, updated_at = " +
                                                 now_ + " WHERE run_id = :run_id AND step = :step" +
                                                 running,
                          soci::use(text), soci::use(run_id), soci::use(step));
    st.execute(true);
    return st.get_affected_rows() > 0;
  });
}

bool SqlProgramStore::fail(const std::string& run_id, int step, std::string_view message) {
  return guarded("failing a program", run_id, [&] {
    soci::session session(database_.pool());
    const std::string text = truncate_error_message(message);
    soci::statement st = (session.prepare << "UPDATE " + table_ + " SET errored_at = " + now_ +
                                                 ", error_message = :message, updated_at = " +
                                                 now_ + " WHERE run_id = :run_id AND step = :step" +
                                                 running,
                          soci::use(text), soci::use(run_id), soci::use(step));
    st.execute(true);
    return st.get_affected_rows() > 0;
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
    st.execute(true);
    return st.get_affected_rows() > 0;
  });
}

nlohmann::json SqlProgramStore::update_job_data(
    const std::string& run_id, const std::string& job_name,
    const std::function<nlohmann::json(const nlohmann::json&)>& modify) {
  return guarded("updating job data", run_id, [&] {
    soci::session session(database_.pool());
    WriteTransaction transaction(session);
    std::string text;
    soci::indicator ind{};
    session << "SELECT job_data FROM " + table_ + " WHERE run_id = :run_id ORDER BY id LIMIT 1",
        soci::into(text, ind), soci::use(run_id);
    if (!session.got_data()) throw StoreError("no program with run id " + run_id);
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

}  // namespace program_executor::store
