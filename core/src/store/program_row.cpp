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
  };
}

std::string truncate_error_message(std::string_view message) {
  constexpr std::size_t limit = 255;
  if (message.size() <= limit) return std::string(message);
  std::size_t cut = limit;
  // Never split a UTF-8 sequence: back up over continuation bytes (10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  return std::string(message.substr(0, cut));
}

}  // namespace program_executor::store
