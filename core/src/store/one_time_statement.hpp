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

/// Runs a query once (not prepared on the server first) and calls `on_row`
/// after each row is fetched into the buffers that `bind` exchanged.
template <class Bind, class OnRow>
void for_each_row(soci::session& session, const std::string& query, Bind&& bind, OnRow&& on_row) {
  soci::statement statement(session);
  bind(statement);
  statement.alloc();
  statement.prepare(query, soci::details::st_one_time_query);
  statement.define_and_bind();
  statement.execute(false);
  while (statement.fetch()) on_row();
}

}  // namespace program_executor::store::detail
