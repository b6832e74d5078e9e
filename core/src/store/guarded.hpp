// Runs one store operation on a leased session and turns SOCI errors into
// StoreError, noting a lost connection so the session is re-established.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <soci/soci.h>

#include "program_executor/store/database.hpp"

namespace program_executor::store::detail {

/// guarded() for work that needs the lease itself (its kept statements).
template <class F>
auto guarded_lease(Database& database, std::string_view what, std::string_view run_id, F&& work)
    -> decltype(work(std::declval<SessionLease&>())) {
  SessionLease lease(database);
  try {
    return work(lease);
  } catch (const soci::soci_error& e) {
    // Any transaction of `work` has been rolled back by now (RAII guards).
    // A statement that failed may be in any state: the session's kept
    // statements are prepared again when next needed.
    lease.drop_kept();
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

template <class F>
auto guarded(Database& database, std::string_view what, std::string_view run_id, F&& work)
    -> decltype(work(std::declval<soci::session&>())) {
  return guarded_lease(database, what, run_id,
                       [&](SessionLease& lease) { return work(lease.session()); });
}

}  // namespace program_executor::store::detail
