#include "program_executor/executor/program_status.hpp"

#include <fmt/format.h>

namespace program_executor::executor {

std::string program_state(const store::ProgramRow& row) {
  if (row.finished_at) return "finished";
  if (row.errored_at) {
    return row.error_message.value_or("") == cancelled_message ? "cancelled" : "errored";
  }
  return "running";
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
  out += fmt::format("error         {}\n", row.error_message.value_or("-"));
  out += fmt::format("created at    {}\n", row.created_at);
  out += fmt::format("updated at    {}\n", row.updated_at);
  if (row.finished_at) out += fmt::format("finished at   {}\n", *row.finished_at);
  if (row.errored_at) out += fmt::format("errored at    {}\n", *row.errored_at);
  out += fmt::format("program data  {}\n", row.program_data.dump());
  out += fmt::format("job data      {}\n", row.job_data.dump());
  return out;
}

std::string status_json(const store::ProgramRow& row) {
  nlohmann::json j = row.to_json();
  j["state"] = program_state(row);
  return j.dump(2);
}

}  // namespace program_executor::executor
