// Creating a program: its row, then its first step message.
#pragma once

#include <chrono>
#include <string>

#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/sdk/job.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {

/// A new run id: a version 7 UUID (RFC 9562), the creation time in
/// milliseconds followed by random bits, so that ids sort by creation time as
/// program-executor-js's (a timestamp) do, and the indexes on run_id take
/// programs created together on neighbouring pages.
std::string new_run_id();

class ProgramCreator {
 public:
  /// A new program is expected to start within `expect_within`; past that,
  /// the recovery sweeper republishes its first step (the creator may have
  /// died between the insert and the publish).
  ProgramCreator(store::ProgramStore& store, amqp::MessagePublisher& publisher, std::string queue,
                 bool persistent, metrics::Metrics& metrics = metrics::no_metrics(),
                 std::chrono::milliseconds expect_within = std::chrono::minutes(1));

  /// Validates the request (std::invalid_argument), inserts the row, publishes
  /// the first step with a confirm and returns the run id. If the publish
  /// fails the row is marked errored (so no row waits forever for a message
  /// that never came) and the error propagates.
  std::string create(const sdk::ProgramRequest& request);

 private:
  store::ProgramStore& store_;
  amqp::MessagePublisher& publisher_;
  std::string queue_;
  bool persistent_;
  metrics::Metrics& metrics_;
  std::chrono::milliseconds expect_within_;
};

}  // namespace program_executor::executor
