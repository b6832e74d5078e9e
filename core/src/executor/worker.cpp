#include "program_executor/executor/worker.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/executor/clock.hpp"
#include "program_executor/executor/job_runner.hpp"
#include "program_executor/executor/worker_identity.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::executor {
namespace {

using namespace std::chrono_literals;

// The longest the working loop sleeps, also while a job runs.
constexpr auto loop_period = 200ms;

void mark(std::atomic<std::int64_t>& beat) {
  beat = steady_ms();
}

// Sleeps for `duration` or until stop is requested, whichever comes first,
// beating meanwhile: waiting to reconnect is the loop working as intended.
void interruptible_sleep(std::chrono::milliseconds duration, const std::atomic<bool>& stop,
                         std::atomic<std::int64_t>& beat) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stop && std::chrono::steady_clock::now() < until) {
    mark(beat);
    std::this_thread::sleep_for(50ms);
  }
}

void apply(amqp::Connection& consumer, std::uint64_t tag, const StepOutcome& outcome) {
  switch (outcome.disposition) {
    case Disposition::ack:
      consumer.ack(tag);
      return;
    case Disposition::retry:
      consumer.dead_letter(tag);
      return;
    case Disposition::requeue:
      consumer.requeue(tag);
      return;
  }
}

}  // namespace

Worker::Worker(WorkerSettings settings, store::ProgramStore& store, const JobLibrary& jobs,
               const std::atomic<bool>& stop_requested, std::atomic<std::int64_t>& beat,
               metrics::Metrics& metrics)
    : settings_(std::move(settings)),
      store_(store),
      jobs_(jobs),
      stop_requested_(stop_requested),
      beat_(beat),
      metrics_(metrics) {}

void Worker::run() {
  const std::string name = "program-executor worker " + std::to_string(settings_.index);
  amqp::ReconnectingPublisher publisher(settings_.brokers, name + " publisher");
  ProcessorSettings processor_settings;
  processor_settings.queue = settings_.topology.main_queue();
  processor_settings.parked_queue = settings_.topology.parked_queue();
  processor_settings.persistent = settings_.topology.durable();
  processor_settings.owner = worker_identity(settings_.index);
  processor_settings.lease = settings_.lease;
  processor_settings.stale_after = settings_.stale_after;
  processor_settings.retry_delay = std::chrono::milliseconds(amqp::QueueTopology::retry_delay_ms);
  processor_settings.max_crashes = settings_.max_crashes;
  processor_settings.retry = settings_.retry;
  processor_settings.quorum = settings_.topology.quorum();
  processor_settings.fairness = settings_.fairness;
  std::unique_ptr<ProcessIsolation> isolation;
  if (!settings_.isolation_command.empty()) {
    isolation = std::make_unique<ProcessIsolation>(settings_.isolation_command);
  }
  StepProcessor processor(store_, jobs_, publisher, processor_settings, stop_requested_,
                          metrics_, isolation.get());
  // Half the prefetch per batch: the other half arrives while a batch runs,
  // so the runner never waits for the broker between batches.
  const std::size_t max_batch = static_cast<std::size_t>(std::max(1, settings_.prefetch / 2));
  JobRunner runner(
      [&processor](const std::vector<std::string>& bodies) { return processor.process_all(bodies); },
      max_batch, settings_.fairness);

  // With several broker nodes, a lost connection is followed by one to the
  // next node that answers (BrokerNodes::lost, connect): a cluster that lost
  // a node keeps this worker consuming without a restart.
  amqp::BrokerNodes nodes = settings_.brokers;
  auto backoff = 250ms;
  bool connected_before = false;
  while (!stop_requested_) {
    mark(beat_);
    try {
      const std::unique_ptr<amqp::Connection> consumer = nodes.connect(name + " consumer");
      consumer->declare(settings_.topology);
      consumer->set_prefetch(settings_.prefetch);
      consumer->consume(settings_.topology.main_queue());
      if (connected_before) metrics_.broker_reconnected();
      connected_before = true;
      log::event(log::Level::info, "worker.consuming", "",
                 {{"worker", settings_.index},
                  {"queue", settings_.topology.main_queue()},
                  {"broker", nodes.current().describe()}});
      backoff = 250ms;
      serve(*consumer, runner, processor);
      log::event(log::Level::info, "worker.stopped", "", {{"worker", settings_.index}});
      return;
    } catch (const amqp::AmqpError& e) {
      log::event(log::Level::error, "amqp.connection_lost", e.what(),
                 {{"worker", settings_.index},
                  {"broker", nodes.current().describe()},
                  {"retry_in_ms", static_cast<long long>(backoff.count())}});
      nodes.lost();
    }
    // Deliveries of the lost connection: the broker redelivers every one not
    // acknowledged. Those not started are dropped here; the running batch
    // finishes, and when its messages come back the step check recognises
    // the steps that completed.
    runner.take_unstarted();
    while (!runner.idle()) {
      mark(beat_);
      processor.renew_claim_if_due();
      std::this_thread::sleep_for(20ms);
    }
    for (const auto& [tag, outcome] : runner.take_finished()) {
      log::event(log::Level::warn, "step.ack_lost", "connection lost while the step ran",
                 {{"worker", settings_.index}, {"outcome", to_string(outcome.event)}});
    }
    interruptible_sleep(backoff, stop_requested_, beat_);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
  }
}

void Worker::serve(amqp::Connection& consumer, JobRunner& runner, StepProcessor& processor) {
  bool cancelled = false;
  bool throttled = false;  // prefetch lowered while a long batch runs
  while (true) {
    mark(beat_);
    for (const auto& [tag, outcome] : runner.take_finished()) apply(consumer, tag, outcome);
    if (stop_requested_ && !cancelled) {
      consumer.cancel_consume();
      for (const std::uint64_t tag : runner.take_unstarted()) consumer.requeue(tag);
      cancelled = true;
    }
    processor.renew_claim_if_due();
    // Fairness: deliveries queued behind a long-running job go back to the
    // broker for idle workers, and this worker takes one at a time until the
    // job ends; fast steps keep the whole prefetch window.
    std::chrono::steady_clock::time_point since;
    if (runner.running(&since) &&
        settings_.fairness.holds_up_queue(std::chrono::steady_clock::now() - since)) {
      if (!throttled && settings_.prefetch > FairnessPolicy::throttled_prefetch && !cancelled) {
        consumer.set_prefetch(FairnessPolicy::throttled_prefetch);
        throttled = true;
      }
      for (const std::uint64_t tag : runner.take_unstarted()) consumer.requeue(tag);
    } else if (throttled && !runner.running()) {
      consumer.set_prefetch(settings_.prefetch);
      throttled = false;
    }
    if (cancelled && runner.idle()) {
      for (const auto& [tag, outcome] : runner.take_finished()) apply(consumer, tag, outcome);
      return;
    }
    // Wait for the broker or for finished steps, whichever comes first. The
    // timeout keeps the loop (heartbeats, claim renewal, the watchdog's beat)
    // turning while a job runs.
    if (!consumer.input_buffered()) {
      pollfd ready[2] = {{consumer.socket_fd(), POLLIN, 0}, {runner.wakeup_fd(), POLLIN, 0}};
      ::poll(ready, 2, static_cast<int>(loop_period.count()));
    }
    while (auto delivery = consumer.next_delivery(0ms)) {
      if (cancelled) {
        consumer.requeue(delivery->delivery_tag);
      } else {
        runner.submit(delivery->delivery_tag, std::move(delivery->body));
      }
    }
  }
}

}  // namespace program_executor::executor
