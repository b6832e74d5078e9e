// Runs one store operation on a leased session and turns SOCI errors into
// StoreError, noting a lost connection so the session is re-established.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <soci/soci.h>

#include "program_executor/store/database.hpp"

namespace program_executor::store::detail {

template <class F>
auto guarded(Database& database, std::string_view what, std::string_view run_id, F&& work)
    -> decltype(work(std::declval<soci::session&>())) {
  SessionLease lease(database);
  try {
    return work(lease.session());
  } catch (const soci::soci_error& e) {
    // Any transaction of `work` has been rolled back by now (RAII guards).
    bool lost = e.get_error_category() == soci::soci_error::connection_error;
    if (lost) {
      lease.mark_lost();
    } else {
      lost = lease.connection_lost();
    }
    std::string message = "database error while " + std::string(what);
    if (!run_id.empty()) message += " (run id " + std::string(run_id) + ")";
    if (lost) message += " (connection lost; re-established on next use)";
    throw StoreError(message + ": " + e.what());
  }
}

}  // namespace program_executor::store::detail
