// Rows of the bookkeeping table read through SOCI into ProgramRow: the
// columns a query selects and the buffers a statement fetches them into.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include "program_executor/store/program_row.hpp"

namespace program_executor::store {

class Dialect;

namespace detail {

/// A JSON column's text parsed; an empty text is an empty object. Throws
/// StoreError naming `column` if the text is no JSON.
nlohmann::json parse_column(const std::string& text, const char* column);

/// The job list column's text as job names (a job that is no string is kept
/// as its JSON text). Throws StoreError if the text is no JSON array.
std::vector<std::string> job_names(const std::string& text);

/// Buffers for one row of the table, in the order of columns(); filled by
/// each fetch of the statement they are bound to.
struct RowReader {
  /// Whether a query reads job_data and program_data or leaves them out (a
  /// claim's RETURNING: the step's message carries the program data, and a
  /// job reads its data through the store).
  enum class Data { read, left_out };

  /// The select list RowReader reads, in its order, as `dialect` writes it.
  static std::string columns(const Dialect& dialect, Data data);

  /// Exchanges every buffer into `statement`, in the order of columns().
  void bind(soci::statement& statement);

  /// The row last fetched (left-out data columns: empty objects).
  ProgramRow row() const;

  long long id = 0;
  std::string run_id, jobs;
  int step = 0;
  std::string finished_at, errored_at, error_message;
  int retries = 0;
  std::string job_data, program_data, created_at, updated_at, lease_owner;
  long long token = 0;
  std::string lease_until;
  int crashes = 0;
  int isolated_crashes = 0;
  std::string cancelled_at;
  soci::indicator step_ind{}, finished_ind{}, errored_ind{}, message_ind{}, retries_ind{},
      job_data_ind{}, program_data_ind{}, created_ind{}, updated_ind{}, owner_ind{}, token_ind{},
      until_ind{}, crashes_ind{}, isolated_ind{}, cancelled_ind{};
};

}  // namespace detail
}  // namespace program_executor::store
