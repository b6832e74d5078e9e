// Reading job parameters from job data, with defaults and clear errors.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <program_executor/sdk/sdk.hpp>

namespace program_executor::demo {

/// Integer `key` of `data`, or `fallback` when absent. Throws std::runtime_error
/// naming the job and key when it is not a non-negative integer: a bad
/// parameter fails the program rather than running with a guess.
std::int64_t count_parameter(const nlohmann::json& data, std::string_view job, const char* key,
                             std::int64_t fallback);

/// String `key` of `data`, or `fallback` when absent; throws like count_parameter.
std::string string_parameter(const nlohmann::json& data, std::string_view job, const char* key,
                             const std::string& fallback);

/// Object `key` of `data`, or an empty object when absent; throws like count_parameter.
nlohmann::json object_parameter(const nlohmann::json& data, std::string_view job, const char* key);

/// Sleeps `duration` in short slices, returning false as soon as the daemon
/// asks to stop (a long sleep must not hold up a shutdown), true otherwise.
bool sleep_unless_stopped(std::chrono::milliseconds duration, sdk::JobContext& context);

}  // namespace program_executor::demo
