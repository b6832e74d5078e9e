#include "program_executor/store/program_row.hpp"

namespace program_executor::store {

nlohmann::json ProgramRow::to_json() const {
  auto nullable = [](const std::optional<std::string>& v) -> nlohmann::json {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  return nlohmann::json{
      {"id", id},
      {"run_id", run_id},
      {"jobs", jobs},
      {"step", step},
      {"finished_at", nullable(finished_at)},
      {"errored_at", nullable(errored_at)},
      {"error_message", nullable(error_message)},
      {"step_retry_count", step_retry_count},
      {"job_data", job_data},
      {"program_data", program_data},
      {"created_at", created_at},
      {"updated_at", updated_at},
      {"lease_owner", nullable(lease_owner)},
      {"lease_token", lease_token},
      {"lease_until", nullable(lease_until)},
      {"step_crash_count", step_crash_count},
      {"step_isolated_crash_count", step_isolated_crash_count},
      {"cancelled_at", nullable(cancelled_at)},
  };
}

std::string ProgramRow::state() const {
  if (finished_at) return "finished";
  if (cancelled_at) return "cancelled";
  if (errored_at) return "errored";
  return "running";
}

std::string truncate_error_message(std::string_view message) {
  constexpr std::size_t limit = 255;  // characters
  std::size_t characters = 0;
  for (std::size_t i = 0; i < message.size(); ++i) {
    // A character starts at every byte that is not a continuation (10xxxxxx).
    if ((static_cast<unsigned char>(message[i]) & 0xC0) == 0x80) continue;
    if (characters == limit) return std::string(message.substr(0, i));
    ++characters;
  }
  return std::string(message);
}

}  // namespace program_executor::store
