#include "parameters.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace program_executor::demo {
namespace {

[[noreturn]] void bad_parameter(std::string_view job, const char* key, const char* expected) {
  throw std::runtime_error(std::string(job) + ": job data '" + key + "' must be " + expected);
}

}  // namespace

std::int64_t count_parameter(const nlohmann::json& data, std::string_view job, const char* key,
                             std::int64_t fallback) {
  auto found = data.find(key);
  if (found == data.end()) return fallback;
  if (!found->is_number_integer() || found->get<std::int64_t>() < 0) {
    bad_parameter(job, key, "a non-negative integer");
  }
  return found->get<std::int64_t>();
}

std::string string_parameter(const nlohmann::json& data, std::string_view job, const char* key,
                             const std::string& fallback) {
  auto found = data.find(key);
  if (found == data.end()) return fallback;
  if (!found->is_string()) bad_parameter(job, key, "a string");
  return found->get<std::string>();
}

nlohmann::json object_parameter(const nlohmann::json& data, std::string_view job,
                                const char* key) {
  auto found = data.find(key);
  if (found == data.end()) return nlohmann::json::object();
  if (!found->is_object()) bad_parameter(job, key, "an object");
  return *found;
}

bool sleep_unless_stopped(std::chrono::milliseconds duration, sdk::JobContext& context) {
  // 50 ms slices: shutdown is noticed quickly, and the loop costs nothing.
  constexpr std::chrono::milliseconds slice{50};
  const auto deadline = std::chrono::steady_clock::now() + duration;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    if (context.stop_requested()) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(slice, deadline - now));
  }
}

}  // namespace program_executor::demo
