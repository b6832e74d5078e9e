#include "program_executor/executor/step_message.hpp"

namespace program_executor::executor {

const nlohmann::json& StepMessage::program_data() const {
  static const nlohmann::json empty = nlohmann::json::object();
  auto it = body.find("programData");
  return it == body.end() || it->is_null() ? empty : *it;
}

StepMessage parse_step_message(std::string_view body, const MessageLimits& limits) {
  if (body.size() > limits.max_bytes) {
    throw InvalidMessage("message is " + std::to_string(body.size()) + " bytes, more than the " +
                         std::to_string(limits.max_bytes) + " allowed");
  }
  StepMessage message;
  // The callback sees every nesting level before it is built, so absurdly deep
  // input is refused without ever materialising it.
  bool too_deep = false;
  const auto depth_guard = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > limits.max_depth) too_deep = true;
    return !too_deep;
  };
  try {
    message.body = nlohmann::json::parse(body.begin(), body.end(), depth_guard);
  } catch (const nlohmann::json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e400") is an
    // out_of_range, which would escape and have the message retried forever
    // instead of parked (found by tests/fuzz/step_message_fuzz.cpp).
    throw InvalidMessage(std::string("body is not JSON: ") + e.what());
  }
  if (too_deep) {
    throw InvalidMessage("JSON nesting deeper than " + std::to_string(limits.max_depth));
  }
  if (!message.body.is_object()) throw InvalidMessage("body is not a JSON object");
  auto run_id = message.body.find("runId");
  if (run_id == message.body.end() || !run_id->is_string() || run_id->get_ref<const std::string&>().empty()) {
    throw InvalidMessage("runId is missing or not a non-empty string");
  }
  if (run_id->get_ref<const std::string&>().size() > 255) {
    throw InvalidMessage("runId is longer than 255 characters");
  }
  message.run_id = run_id->get<std::string>();
  auto jobs = message.body.find("jobs");
  if (jobs == message.body.end() || !jobs->is_array() || jobs->empty()) {
    throw InvalidMessage("jobs is missing, not an array, or empty");
  }
  for (const auto& job : *jobs) {
    if (!job.is_string()) throw InvalidMessage("jobs holds a value that is not a string");
    message.jobs.push_back(job.get<std::string>());
  }
  auto program_data = message.body.find("programData");
  if (program_data != message.body.end() && !program_data->is_object() && !program_data->is_null()) {
    throw InvalidMessage("programData is not an object");
  }
  return message;
}

std::string next_step_body(const StepMessage& message) {
  nlohmann::json next = message.body;
  next["jobs"].erase(next["jobs"].begin());
  return next.dump();
}

std::string first_step_body(const std::string& run_id, const std::vector<std::string>& jobs,
                            const nlohmann::json& program_data) {
  return nlohmann::json{{"jobs", jobs}, {"programData", program_data}, {"runId", run_id}}.dump();
}

}  // namespace program_executor::executor
