#include "program_executor/executor/program_status.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace program_executor::executor {

std::string program_state(const store::ProgramRow& row) { return row.state(); }

std::optional<std::string> current_error(const store::ProgramRow& row) {
  if (row.finished_at) return std::nullopt;
  // Errored or cancelled: the message says why it stopped. Running with
  // retries counted at this step: the message is that step's latest failure.
  if (row.errored_at || row.step_retry_count > 0) return row.error_message;
  return std::nullopt;
}

std::string format_status(const store::ProgramRow& row) {
  const std::string state = program_state(row);
  std::string out;
  out += fmt::format("run id        {}\n", row.run_id);
  out += fmt::format("state         {}\n", state);
  const int total = static_cast<int>(row.jobs.size());
  out += fmt::format("step          {} of {}\n", std::min(row.step + 1, total), total);
  out += "jobs\n";
  for (int i = 0; i < total; ++i) {
    std::string mark;
    if (i < row.step || (i == row.step && state == "finished")) {
      mark = "done";
    } else if (i == row.step) {
      mark = state == "running" ? "current" : state;
    }
    out += fmt::format("  {:>3}. {:<40} {}\n", i + 1, row.jobs[static_cast<std::size_t>(i)], mark);
  }
  out += fmt::format("retries       {}\n", row.step_retry_count);
  // Which host, process and worker thread holds the step (worker_identity):
  // in a fleet, where to look for its logs.
  if (state == "running" && row.lease_owner) {
    out += fmt::format("claimed by    {} (host:pid:worker){}\n", *row.lease_owner,
                       row.lease_until ? ", until " + *row.lease_until : "");
  }
  if (const std::optional<std::string> error = current_error(row)) {
    out += fmt::format("error         {}\n", *error);
  } else if (row.error_message) {
    // The column keeps the last retryable error after the step got past it:
    // history, not the program's state.
    out += fmt::format("past retry    {} ({})\n", *row.error_message,
                       state == "finished" ? "overcome; the program finished"
                                           : "overcome; not the current step's");
  } else {
    out += "error         -\n";
  }
  out += fmt::format("created at    {}\n", row.created_at);
  out += fmt::format("updated at    {}\n", row.updated_at);
  if (row.finished_at) out += fmt::format("finished at   {}\n", *row.finished_at);
  if (row.errored_at) out += fmt::format("errored at    {}\n", *row.errored_at);
  out += fmt::format("program data  {}\n", row.program_data.dump());
  out += fmt::format("job data      {}\n", row.job_data.dump());
  return out;
}

std::string format_list(const std::vector<store::ProgramRow>& rows) {
  if (rows.empty()) return "no programs\n";
  // WORKER last: host names have any length.
  std::string out = fmt::format("{:<36}  {:<9}  {:>7}  {:<28}  {:>7}  {:<19}  {}\n", "RUN ID", "STATE",
                                "STEP", "JOB", "RETRIES", "UPDATED (UTC)", "WORKER");
  for (const auto& row : rows) {
    const int total = static_cast<int>(row.jobs.size());
    const int at = std::min(row.step, total - 1);
    std::string job = at >= 0 ? row.jobs[static_cast<std::size_t>(at)] : "-";
    if (job.size() > 28) job = job.substr(0, 27) + "~";
    // "2026-11-27T18:29:41.059Z" -> "2026-11-27 18:29:41": enough to tell them apart.
    std::string updated = row.updated_at.substr(0, 19);
    if (updated.size() > 10 && updated[10] == 'T') updated[10] = ' ';
    // The claim's owner while a worker holds the running step (host:pid:worker).
    const std::string state = program_state(row);
    const std::string worker = state == "running" && row.lease_owner ? *row.lease_owner : "-";
    out += fmt::format("{:<36}  {:<9}  {:>7}  {:<28}  {:>7}  {:<19}  {}\n", row.run_id, state,
                       fmt::format("{}/{}", std::min(row.step + 1, total), total), job,
                       row.step_retry_count, updated, worker);
  }
  return out;
}

std::string status_json(const store::ProgramRow& row) {
  nlohmann::json j = row.to_json();
  j["state"] = program_state(row);
  // error_message is the raw column (it keeps a retry's error after the step
  // got past it); "error" is only what describes the program now.
  const std::optional<std::string> error = current_error(row);
  j["error"] = error ? nlohmann::json(*error) : nlohmann::json(nullptr);
  return j.dump(2);
}

}  // namespace program_executor::executor
