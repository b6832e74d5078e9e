// Putting a password read from database.password_file into the connection
// string of a server backend, in that backend's own syntax.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "program_executor/config/database_backend.hpp"

namespace program_executor::config {

/// `connection` of `backend` with its password set to `password`, replacing
/// any password the string already names:
/// - postgresql key=value: `password='...'` (libpq quoting: `\` and `'`
///   backslash-escaped); a `postgresql://` or `postgres://` URL: the password
///   percent-encoded into the userinfo (and any `password=` query parameter
///   dropped);
/// - mysql SOCI parameters: `password='...'` (SOCI's quoting, the same as
///   libpq's; `pass=` is dropped too); a `mysql://` or `mariadb://` URL: as a
///   PostgreSQL URL;
/// - odbc: `PWD={...}` with `}` doubled (`PASSWORD=` is dropped too).
/// Throws std::invalid_argument for sqlite3 (no password) or a connection
/// string it cannot take apart; the message never contains the password nor
/// the connection string.
std::string with_database_password(DatabaseBackend backend, std::string_view connection,
                                   std::string_view password);

}  // namespace program_executor::config
