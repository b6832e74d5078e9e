#include "program_executor/config/job_name.hpp"

#include <algorithm>

namespace program_executor::config {

bool is_valid_job_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == ':' || c == '-';
  });
}

}  // namespace program_executor::config
