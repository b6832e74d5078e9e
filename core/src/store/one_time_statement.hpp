// Running a statement once, without preparing it on the server first.
#pragma once

#include <string>
#include <utility>

#include <soci/soci.h>

namespace program_executor::store::detail {

/// Runs a statement once and returns the number of rows it changed. Unlike
/// session.prepare, a one-time statement is not prepared on the server first
/// (PostgreSQL: no PREPARE and DEALLOCATE round trips around each execution).
template <class... Bindings>
long long affected(soci::session& session, const std::string& query, Bindings&&... bindings) {
  soci::statement statement(session);
  (statement.exchange(std::forward<Bindings>(bindings)), ...);
  statement.alloc();
  statement.prepare(query, soci::details::st_one_time_query);
  statement.define_and_bind();
  statement.execute(true);
  return statement.get_affected_rows();
}

}  // namespace program_executor::store::detail
