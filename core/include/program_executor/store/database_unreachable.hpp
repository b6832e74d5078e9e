// Telling a database server that is not there (yet) from one that answers and
// refuses: the daemon waits at start for the first, and fails at once on the
// second, which waiting would not fix.
#pragma once

#include <string_view>

#include "program_executor/store/program_store.hpp"

namespace program_executor::store {

/// The database server could not be reached when opening a connection: it is
/// down, restarting, still starting, or the network is not up yet. The
/// message is that of StoreError ("cannot open database (...): ...").
class DatabaseUnreachableError : public StoreError {
 public:
  using StoreError::StoreError;
};

/// True when `message`, the error of a failed connection attempt, says the
/// server did not answer or is not accepting connections for now; false for a
/// server that answered and refused (password, missing database, TLS) and for
/// a configuration error. `connection_category`: the driver classed it as a
/// connection error (SOCI's category: MySQL/MariaDB set it for these
/// failures only; libpq never does; ODBC does for any failed connection, so
/// the caller passes it only for MySQL).
bool database_unreachable(std::string_view message, bool connection_category);

}  // namespace program_executor::store
