// The rule tying database.connection to database.backend, checked when the
// configuration loads so that `check` refuses what the store would refuse at start.
#pragma once

#include <string>
#include <string_view>

#include "program_executor/config/database_backend.hpp"

namespace program_executor::config {

/// Why `connection` cannot be a connection string for `backend` (a URL of
/// another backend's scheme, a mysql:// URL the store cannot read), or "".
/// Mirrors store::soci_connection_string. Never quotes the string (it may hold
/// a password).
std::string database_connection_problem(DatabaseBackend backend, std::string_view connection);

}  // namespace program_executor::config
