// One consumer: its own broker connections, its own thread for jobs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/queue_topology.hpp"
#include "program_executor/executor/fairness_policy.hpp"
#include "program_executor/executor/job_library.hpp"
#include "program_executor/executor/retry_policy.hpp"
#include "program_executor/executor/step_processor.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/plugin/job_registry.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::amqp {
class Connection;
}  // namespace program_executor::amqp

namespace program_executor::executor {

class JobRunner;

struct WorkerSettings {
  int index = 0;  ///< shown in logs and in the broker's connection name
  /// The broker nodes, in this worker's order (BrokerNodes::shuffled): its
  /// consumer and its publisher each connect to the first that answers.
  amqp::BrokerNodes brokers{amqp::ConnectionSettings{}};
  amqp::QueueTopology topology{"program-executor", true};
  int prefetch = 1;
  std::chrono::milliseconds lease{30000};        ///< see ProcessorSettings
  std::chrono::milliseconds stale_after{60000};  ///< see ProcessorSettings
  int max_crashes = 3;                           ///< see ProcessorSettings
  RetryPolicies retry;                           ///< see ProcessorSettings
  /// The command running one step in an isolated process (ProcessIsolation);
  /// empty: steps with a crash on record run in the worker like any other.
  std::vector<std::string> isolation_command;
  /// How long the worker keeps the steps it took before idle workers get them.
  FairnessPolicy fairness{};
};

/// Consumes the main queue and hands the deliveries to a StepProcessor running
/// on a job thread of its own (JobRunner: under load, up to prefetch/2 steps
/// per batch, sharing one claim and one commit), while this thread keeps
/// servicing the consumer connection (heartbeats, acks, buffered deliveries)
/// however long the jobs run. While one batch runs longer than the fairness
/// policy's long_batch (100 ms) the deliveries queued behind it go back to the
/// broker and the prefetch drops to 1, so idle workers take them.
/// rabbitmq-c connections are not thread-safe: the consumer connection is used
/// only by run()'s thread, the publisher connection only by the job thread.
class Worker {
 public:
  /// `beat` is set to the steady-clock time (ms) on every turn of the working
  /// loop, which turns at least every 200 ms, also while a job runs: the
  /// daemon's watchdog pings systemd only while every worker's beat is fresh.
  Worker(WorkerSettings settings, store::ProgramStore& store, const JobLibrary& jobs,
         const std::atomic<bool>& stop_requested, std::atomic<std::int64_t>& beat,
         metrics::Metrics& metrics = metrics::no_metrics());

  /// Runs until stop is requested and the step in progress has finished;
  /// reconnects to the broker with backoff when the connection is lost.
  /// Deliveries not yet started are handed back to the broker on the way out.
  void run();

 private:
  /// Consumes on one connection until stopped; throws AmqpError when it breaks.
  void serve(amqp::Connection& consumer, JobRunner& runner, StepProcessor& processor);

  WorkerSettings settings_;
  store::ProgramStore& store_;
  const JobLibrary& jobs_;
  const std::atomic<bool>& stop_requested_;
  std::atomic<std::int64_t>& beat_;
  metrics::Metrics& metrics_;
};

}  // namespace program_executor::executor
