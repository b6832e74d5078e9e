// Publishing a message and knowing the broker has taken it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "program_executor/amqp/queue_topology.hpp"

namespace program_executor::amqp {

struct PublishProperties {
  bool persistent = true;                  ///< delivery_mode 2
  std::optional<std::int64_t> timestamp;   ///< the `timestamp` property (ms, as the original sends)
  std::vector<std::pair<std::string, std::string>> headers;  ///< text headers
};

/// One message of a batch (MessagePublisher::publish_all).
struct OutgoingMessage {
  std::string queue;
  std::string body;
  PublishProperties properties;
};

/// Publishes to a queue through the default exchange and returns only once the
/// broker confirmed it; throws AmqpError on a nack, a return (no such queue),
/// a missing confirm or a broken connection. Never silently drops a message.
class MessagePublisher {
 public:
  virtual ~MessagePublisher() = default;
  virtual void publish(const std::string& queue, std::string_view body,
                       const PublishProperties& properties) = 0;
  /// Publishes every message and returns once the broker confirmed them all;
  /// throws AmqpError if any was refused, returned or not confirmed (then some
  /// of the others may have been taken). The default publishes one at a time;
  /// a connection overrides it to wait for all confirms at once.
  virtual void publish_all(const std::vector<OutgoingMessage>& messages) {
    for (const OutgoingMessage& message : messages) publish(message.queue, message.body, message.properties);
  }
  /// Declares a queue before publishing to it (idempotent on the broker);
  /// throws AmqpError, QueueMismatchError when it exists with other settings.
  virtual void declare(const QueueSpec& queue) = 0;
};

}  // namespace program_executor::amqp
