// What happens to one step message: program-executor-js's semantics, with
// conditional updates so a duplicated or stale message never moves a program.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/job_library.hpp"
#include "program_executor/executor/step_message.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/plugin/job_registry.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {

/// What the consumer does with the delivery once the step is processed.
enum class Disposition {
  ack,    ///< done with it (success, permanent failure, cancelled, duplicate, parked)
  retry,  ///< nack without requeue: the broker dead-letters it to the retry queue
};

struct StepOutcome {
  Disposition disposition;
  std::string event;  ///< the log event that describes the outcome, for tests and metrics
};

struct ProcessorSettings {
  std::string queue;         ///< main queue: next steps go here
  std::string parked_queue;  ///< messages that can never run go here
  bool persistent = true;    ///< publish with delivery_mode 2
  MessageLimits limits;
  /// How long a message that is one step ahead of its row waits for the
  /// previous step's update to commit (it is published just before that
  /// update) before it is sent to the retry queue.
  std::chrono::milliseconds early_step_wait{500};
};

class StepProcessor {
 public:
  /// `stop_requested` is exposed to jobs (JobContext::stop_requested).
  StepProcessor(store::ProgramStore& store, const JobLibrary& jobs,
                amqp::MessagePublisher& publisher, ProcessorSettings settings,
                const std::atomic<bool>& stop_requested,
                metrics::Metrics& metrics = metrics::no_metrics());

  /// Processes one delivery body. Never throws: every failure, including
  /// the database's and the broker's, becomes an outcome.
  StepOutcome process(std::string_view body);

 private:
  StepOutcome process_counted(std::string_view body);
  StepOutcome park(std::string_view body, const std::string& reason);
  StepOutcome run_step(const StepMessage& message, const store::ProgramRow& row,
                       const plugin::JobRegistry& jobs);

  store::ProgramStore& store_;
  const JobLibrary& jobs_;
  amqp::MessagePublisher& publisher_;
  ProcessorSettings settings_;
  const std::atomic<bool>& stop_requested_;
  metrics::Metrics& metrics_;
  ProgramCreator creator_;
};

}  // namespace program_executor::executor
