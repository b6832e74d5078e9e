#include "row_reader.hpp"

#include "program_executor/store/dialect.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::store::detail {

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

std::string RowReader::columns(const Dialect& d, Data data) {
  const bool read = data == Data::read;
  const std::string job_data = read ? d.json_text("job_data") : "NULL";
  const std::string program_data = read ? d.json_text("program_data") : "NULL";
  return "id, run_id, " + d.json_text("jobs") + ", step, " + d.timestamp_text("finished_at") +
         ", " + d.timestamp_text("errored_at") + ", " + d.varchar_text("error_message") +
         ", step_retry_count, " +
         job_data + ", " + program_data + ", " + d.timestamp_text("created_at") + ", " +
         d.timestamp_text("updated_at") + ", lease_owner, lease_token, " +
         d.timestamp_text("lease_until") + ", step_crash_count, step_isolated_crash_count, " +
         d.timestamp_text("cancelled_at");
}

void RowReader::bind(soci::statement& statement) {
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

ProgramRow RowReader::row() const {
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

}  // namespace program_executor::store::detail
