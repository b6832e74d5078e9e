// The floor: the least a step costs on this broker and database. A loop that
// does only the step's broker and database work (consume, read the row,
// update it, publish the next step with a confirm, ack), durable queue,
// persistent messages, at the same thread count as the daemon.
#pragma once

#include <string>

#include "amqp_link.hpp"
#include "bench_sql.hpp"

namespace program_executor::bench {

struct FloorSettings {
  amqp::ConnectionSettings broker;
  std::string queue;  ///< declared (durable, no arguments) and filled by the caller
  int threads = 2;
  int programs = 0;
  int jobs = 0;
  /// false: each message waits for its own commit and confirm (prefetch
  /// `prefetch`). true: up to `batch` messages at a time (prefetch = batch),
  /// one transaction for their reads and updates, their next steps published
  /// together and the confirms awaited once, one multiple-ack.
  bool pipelined = false;
  int prefetch = 1;
  int batch = 16;
};

struct FloorResult {
  long long steps = 0;
  double seconds = 0;
  double steps_per_second() const { return seconds > 0 ? static_cast<double>(steps) / seconds : 0; }
};

/// Runs the loop until every step of `programs` programs of `jobs` steps has
/// been processed. The table holds the programs (step 0) and the queue their
/// first steps. Throws BenchError when a thread fails.
FloorResult run_floor(const FloorSettings& settings, BenchTable& table);

}  // namespace program_executor::bench
