#include "program_executor/executor/job_execution.hpp"

#include <cxxabi.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <typeinfo>

#include "program_executor/executor/crash_point.hpp"
#include "program_executor/sdk/errors.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {
namespace {

constexpr std::array<std::pair<JobResult::Kind, std::string_view>, 8> kind_names{{
    {JobResult::Kind::succeeded, "succeeded"},
    {JobResult::Kind::yielded, "yielded"},
    {JobResult::Kind::retryable, "retryable"},
    {JobResult::Kind::ignorable, "ignorable"},
    {JobResult::Kind::failed, "failed"},
    {JobResult::Kind::cancelled, "cancelled"},
    {JobResult::Kind::infrastructure, "infrastructure"},
    {JobResult::Kind::crashed, "crashed"},
}};

// The dynamic type of `e`, demangled ("program_executor::sdk::RetryableError").
std::string type_name(const std::exception& e) {
  const char* mangled = typeid(e).name();
  int status = 0;
  const std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(mangled);
}

}  // namespace

std::string_view to_string(JobResult::Kind kind) {
  for (const auto& [k, name] : kind_names) {
    if (k == kind) return name;
  }
  return "unknown";
}

nlohmann::json JobResult::to_json() const {
  nlohmann::json json{{"kind", std::string(to_string(kind))}, {"message", message}};
  if (!exception_type.empty()) json["exceptionType"] = exception_type;
  return json;
}

JobResult JobResult::from_json(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("kind") || !json["kind"].is_string() ||
      !json.contains("message") || !json["message"].is_string()) {
    throw std::invalid_argument("a job result must be {\"kind\": string, \"message\": string}");
  }
  const std::string kind = json["kind"].get<std::string>();
  for (const auto& [k, name] : kind_names) {
    if (name != kind) continue;
    JobResult result{k, json["message"].get<std::string>()};
    if (json.contains("exceptionType") && json["exceptionType"].is_string()) {
      result.exception_type = json["exceptionType"].get<std::string>();
    }
    return result;
  }
  throw std::invalid_argument("unknown job result kind '" + kind + "'");
}

JobResult execute_job(const plugin::JobRegistry& jobs, const StepMessage& message,
                      sdk::JobDataHandler& data, sdk::JobContext& context) {
  using Kind = JobResult::Kind;
  try {
    std::shared_ptr<sdk::Job> job = jobs.create(message.current_job(), message.program_data());
    job->execute(message.body, data, context);
    PE_CRASH_POINT("after_job");
    return JobResult{Kind::succeeded, {}};
  } catch (const sdk::ExecutionTimeExceeded& e) {
    return JobResult{Kind::yielded, e.what()};
  } catch (const sdk::RetryableError& e) {
    return JobResult{Kind::retryable, e.what(), type_name(e)};
  } catch (const sdk::IgnorableError& e) {
    return JobResult{Kind::ignorable, e.what(), type_name(e)};
  } catch (const store::ProgramEnded& e) {
    return JobResult{Kind::cancelled, e.what()};
  } catch (const store::StoreError& e) {
    return JobResult{Kind::infrastructure, e.what()};
  } catch (const std::exception& e) {
    return JobResult{Kind::failed, e.what(), type_name(e)};
  } catch (...) {
    return JobResult{Kind::failed, "unknown exception (not derived from std::exception)"};
  }
}

}  // namespace program_executor::executor
