// The HTTP API under load (pe-bench --api): `program-executor serve` on the
// bench's configuration plus a `web:` section, with no daemon consuming.
// Measures how many programs N keep-alive clients create per second through
// POST /api/v1/programs, and how long GET /api/v1/programs takes on a table
// of many rows, with and without filters, and GET /api/v1/stats cold.
#pragma once

#include <string>
#include <vector>

#include "daemon_run.hpp"

namespace program_executor::bench {

/// What the API phase is asked to do.
struct ApiSpec {
  double seconds = 10;      ///< of creating
  int clients = 16;         ///< creating threads, one keep-alive connection each
  long long rows = 1000000; ///< programs in the table for the listing (0: no listing)
  int samples = 200;        ///< timed requests per listing query
  int warm_up = 20;         ///< untimed requests before them
  /// A listing query stops early (fewer samples) once it has taken this long.
  double query_budget_seconds = 60;
};

/// One listing query, timed `ms.size()` times one after another.
struct ApiQueryTiming {
  std::string label;   ///< "state=running"
  std::string target;  ///< the request path and query
  std::vector<double> ms;
  std::size_t programs = 0;  ///< in the last answer
};

struct ApiRunResult {
  int clients = 0;
  int web_threads = 0;
  // Creating.
  double create_seconds = 0;
  long long created = 0;           ///< 201 answers
  std::vector<double> create_ms;   ///< every create, all clients
  double create_cpu_seconds = 0;   ///< serve's utime + stime over the creating
  double create_load_before = 0, create_load_after = 0;
  long long rows_before_create = 0;
  double creates_per_second() const { return create_seconds > 0 ? static_cast<double>(created) / create_seconds : 0; }
  double cpu_us_per_create() const {
    return created > 0 ? create_cpu_seconds * 1e6 / static_cast<double>(created) : 0;
  }
  // Listing.
  long long rows = 0;        ///< in the table while listing
  double fill_seconds = 0;
  int samples = 0, warm_up = 0;   ///< requested per query
  double query_budget_seconds = 0;
  std::vector<ApiQueryTiming> queries;
  double stats_cold_ms = 0;  ///< the first GET /api/v1/stats (it counts the table)
  double stats_warm_ms = 0;  ///< the next one, from serve's 2 s cache
  double list_load_before = 0, list_load_after = 0;
  long long peak_rss_kb = 0;  ///< serve's VmHWM at the end
};

/// Fills a table of its own to `spec.rows` programs (BenchTable::fill_mixed),
/// starts `program-executor serve` on it (port and token files of its own),
/// times the listing queries, then creates programs for `spec.seconds`;
/// stops serve and removes the table and the queues. Throws BenchError when
/// serve does not start or an answer is not the one expected (a create that
/// is not 201, a listing that is not 200).
ApiRunResult run_api(const DaemonPlan& plan, const ApiSpec& spec);

}  // namespace program_executor::bench
