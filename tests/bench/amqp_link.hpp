// A bare rabbitmq-c connection for the benchmark: the floor loop's broker work
// (consume, publish with confirms, ack) with nothing in between, and the few
// calls the bench needs around the daemon (prefill, queue inspection).
// One connection, one channel, one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

#include "program_executor/amqp/connection_settings.hpp"

namespace program_executor::bench {

class BenchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Envelope {
  std::uint64_t delivery_tag = 0;
  std::string body;
};

struct QueueInfo {
  std::uint32_t messages = 0;
  std::uint32_t consumers = 0;
};

class AmqpLink {
 public:
  /// Plain TCP only (the bench runs beside the broker); no heartbeats, since
  /// the bench may sit between calls longer than any heartbeat interval.
  explicit AmqpLink(const amqp::ConnectionSettings& settings);
  ~AmqpLink();
  AmqpLink(const AmqpLink&) = delete;
  AmqpLink& operator=(const AmqpLink&) = delete;

  /// A durable queue without arguments (the floor's).
  void declare_durable(const std::string& queue);
  /// passive queue.declare: message and consumer counts; throws if missing.
  QueueInfo inspect(const std::string& queue);

  void set_prefetch(int count);
  void consume(const std::string& queue);
  /// Waits up to `timeout` (zero: only what has arrived already).
  std::optional<Envelope> next(std::chrono::microseconds timeout);
  void ack(std::uint64_t delivery_tag, bool multiple);

  /// confirm.select; from then on publish() counts sequence numbers.
  void enable_confirms();
  /// Persistent, mandatory, default exchange, `timestamp` in ms as the
  /// daemon's creator sets it. Does not wait for the confirm.
  void publish(const std::string& queue, std::string_view body);
  /// Waits until every message published so far is confirmed; throws on a
  /// nack, a return or after `timeout`.
  void wait_confirms(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace program_executor::bench
