// How a program is shown to an operator.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "program_executor/store/program_row.hpp"

namespace program_executor::executor {

/// The message `cancel` stores in error_message; it tells cancelled from errored.
inline constexpr const char* cancelled_message = "cancelled";

/// running, finished, errored or cancelled.
std::string program_state(const store::ProgramRow& row);

/// The error that describes the program now: why an errored or cancelled
/// program stopped, or the latest failure of the step a running program is
/// retrying. nullopt otherwise, also when error_message still holds the
/// error of a retry the program has since got past (the column keeps it).
std::optional<std::string> current_error(const store::ProgramRow& row);

/// A readable, terminal-sized description: state, every job with where the
/// program stands, retries, the last error, timestamps and the data.
std::string format_status(const store::ProgramRow& row);

/// One line per program (run id, state, step, current job, retries, last
/// update), under a header; "no programs" when there are none.
std::string format_list(const std::vector<store::ProgramRow>& rows);

/// The row with the table's column names plus "state" and "error"
/// (current_error(), or null), for --json.
std::string status_json(const store::ProgramRow& row);

}  // namespace program_executor::executor
