// Creating a program: its row, then its first step message.
#pragma once

#include <string>

#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/sdk/job.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {

/// A new run id: a random (version 4) UUID.
std::string new_run_id();

class ProgramCreator {
 public:
  ProgramCreator(store::ProgramStore& store, amqp::MessagePublisher& publisher, std::string queue,
                 bool persistent, metrics::Metrics& metrics = metrics::no_metrics());

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
};

}  // namespace program_executor::executor
