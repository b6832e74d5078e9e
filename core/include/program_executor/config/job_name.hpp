// The rule for job names, the same wherever a name is given: registered by a
// plugin, keyed in retry.jobs, or listed by `program-executor create`.
#pragma once

#include <string_view>

namespace program_executor::config {

/// The rule as the messages state it.
inline constexpr std::string_view job_name_rule = "1 to 255 characters from A-Z a-z 0-9 _ . : -";

/// Whether `name` follows job_name_rule.
bool is_valid_job_name(std::string_view name) noexcept;

}  // namespace program_executor::config
