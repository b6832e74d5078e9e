#include "program_executor/executor/worker.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <thread>

#include <unistd.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/executor/job_runner.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::executor {
namespace {

using namespace std::chrono_literals;

// Names the claims this worker takes, for operators reading lease_owner.
std::string worker_identity(int index) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + std::to_string(index);
}

void mark(std::atomic<std::int64_t>& beat) {
  beat = std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
             .count();
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
  if (outcome.disposition == Disposition::ack) {
    consumer.ack(tag);
  } else {
    consumer.dead_letter(tag);
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
  amqp::ReconnectingPublisher publisher(settings_.connection, name + " publisher");
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
  StepProcessor processor(store_, jobs_, publisher, processor_settings, stop_requested_,
                          metrics_);
  JobRunner runner([&processor](const std::string& body) { return processor.process(body); });

  auto backoff = 250ms;
  bool connected_before = false;
  while (!stop_requested_) {
    mark(beat_);
    // Set while a delivery of the current connection is being processed.
    std::optional<std::uint64_t> in_flight;
    try {
      amqp::Connection consumer(settings_.connection, name + " consumer");
      consumer.declare(settings_.topology);
      consumer.set_prefetch(settings_.prefetch);
      consumer.consume(settings_.topology.main_queue());
      if (connected_before) metrics_.broker_reconnected();
      connected_before = true;
      log::event(log::Level::info, "worker.consuming", "",
                 {{"worker", settings_.index}, {"queue", settings_.topology.main_queue()},
                  {"broker", settings_.connection.describe()}});
      backoff = 250ms;

      std::deque<amqp::Delivery> pending;  // received, not started (at most prefetch)
      bool cancelled = false;
      while (true) {
        mark(beat_);
        if (stop_requested_ && !cancelled) {
          consumer.cancel_consume();
          for (const auto& delivery : pending) consumer.requeue(delivery.delivery_tag);
          pending.clear();
          cancelled = true;
        }
        if (in_flight) {
          processor.renew_claim_if_due();
          if (auto outcome = runner.poll()) {
            apply(consumer, *in_flight, *outcome);
            in_flight.reset();
          }
        }
        if (!in_flight && !pending.empty()) {
          in_flight = pending.front().delivery_tag;
          runner.submit(std::move(pending.front().body));
          pending.pop_front();
        }
        if (cancelled && !in_flight) break;
        // Short waits while a job runs, so its outcome is applied promptly;
        // every call also services the connection's heartbeats.
        if (auto delivery = consumer.next_delivery(in_flight ? 5ms : 200ms)) {
          if (cancelled) {
            consumer.requeue(delivery->delivery_tag);
          } else {
            pending.push_back(std::move(*delivery));
          }
        }
      }
      log::event(log::Level::info, "worker.stopped", "", {{"worker", settings_.index}});
      return;
    } catch (const amqp::AmqpError& e) {
      log::event(log::Level::error, "amqp.connection_lost", e.what(),
                 {{"worker", settings_.index}, {"retry_in_ms", static_cast<long long>(backoff.count())}});
    }
    if (in_flight) {
      // The broker redelivers this message once the connection is gone; when
      // it comes back the step check recognises it if the step completed.
      std::optional<StepOutcome> outcome;
      while (!(outcome = runner.poll())) {
        mark(beat_);
        processor.renew_claim_if_due();
        std::this_thread::sleep_for(20ms);
      }
      log::event(log::Level::warn, "step.ack_lost", "connection lost while the step ran",
                 {{"worker", settings_.index}, {"outcome", outcome->event}});
    }
    interruptible_sleep(backoff, stop_requested_, beat_);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
  }
}

}  // namespace program_executor::executor
