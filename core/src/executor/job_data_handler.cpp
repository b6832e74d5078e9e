#include "program_executor/executor/job_data_handler.hpp"

#include <stdexcept>

#include "program_executor/sdk/errors.hpp"

namespace program_executor::executor {
namespace {

void require_object(const nlohmann::json& value, const char* what) {
  if (!value.is_object()) {
    throw std::invalid_argument(std::string("job data ") + what + " expects a JSON object");
  }
}

}  // namespace

StoreJobDataHandler::StoreJobDataHandler(store::ProgramStore& store, std::string run_id,
                                         std::string job_name, std::int64_t token,
                                         std::chrono::steady_clock::time_point started)
    : store_(store),
      run_id_(std::move(run_id)),
      job_name_(std::move(job_name)),
      token_(token),
      started_(started) {}

nlohmann::json StoreJobDataHandler::get() {
  auto row = store_.find(run_id_);
  if (!row) throw store::StoreError("no program with run id " + run_id_);
  auto it = row->job_data.find(job_name_);
  // Job data that is not an object (written by --job-data '{"job": 5}' or by
  // another program sharing the table) counts as none, as merge() already
  // treats it: the SDK promises an object (found by tests/fuzz/job_data_fuzz.cpp).
  return it == row->job_data.end() || !it->is_object() ? nlohmann::json::object() : *it;
}

void StoreJobDataHandler::set(const nlohmann::json& data) {
  require_object(data, "set()");
  store_.update_job_data(run_id_, job_name_, token_, [&](const nlohmann::json&) { return data; });
}

void StoreJobDataHandler::merge(const nlohmann::json& partial) {
  require_object(partial, "merge()");
  store_.update_job_data(run_id_, job_name_, token_, [&](const nlohmann::json& current) {
    nlohmann::json merged = current.is_object() ? current : nlohmann::json::object();
    for (const auto& [key, value] : partial.items()) merged[key] = value;  // shallow, as the original
    return merged;
  });
}

void StoreJobDataHandler::checkpoint(const nlohmann::json& partial,
                                     std::chrono::milliseconds max_execution_time) {
  merge(partial);
  if (max_execution_time.count() > 0 &&
      std::chrono::steady_clock::now() - started_ > max_execution_time) {
    throw sdk::ExecutionTimeExceeded("execution time exceeded");
  }
}

}  // namespace program_executor::executor
