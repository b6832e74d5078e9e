// The queues a deployment uses, named and declared exactly as program-executor-js does.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "program_executor/config/config.hpp"

namespace program_executor::amqp {

/// An x-argument of a queue declaration: text or integer (sent as signed 32 bit).
struct QueueArgument {
  std::string name;
  std::variant<std::string, std::int32_t> value;
};

struct QueueSpec {
  std::string name;
  bool durable = true;
  std::vector<QueueArgument> arguments;
};

/// Main queue `<q>` dead-letters to `<q>-retry-1000`, which holds messages for
/// 1000 ms and dead-letters them back to `<q>`; `<q>-parked` keeps messages
/// that can never run (not JSON, wrong shape, unknown run id), for an operator.
class QueueTopology {
 public:
  static constexpr std::int32_t retry_delay_ms = 1000;

  /// `quorum`: replicated quorum queues (durable by nature; RabbitMQ 3.10+),
  /// with `delivery_limit` (> 0) as the broker's own cap on redeliveries of
  /// one message. Classic queues otherwise, as program-executor-js declares.
  QueueTopology(std::string queue, bool durable, bool quorum = false, int delivery_limit = 0);

  /// The topology the `amqp` section of a configuration describes.
  static QueueTopology from(const config::AmqpSettings& settings);

  const std::string& main_queue() const noexcept { return main_; }
  const std::string& retry_queue() const noexcept { return retry_; }
  const std::string& parked_queue() const noexcept { return parked_; }
  bool durable() const noexcept { return durable_; }
  bool quorum() const noexcept { return quorum_; }

  /// Declarations in the order they must be made.
  std::vector<QueueSpec> declarations() const;

 private:
  std::string main_;
  std::string retry_;
  std::string parked_;
  bool durable_;
  bool quorum_;
  int delivery_limit_;
};

}  // namespace program_executor::amqp
