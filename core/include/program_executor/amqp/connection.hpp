// One AMQP connection with one channel (rabbitmq-c handles are not thread-safe:
// a connection belongs to one thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "program_executor/amqp/amqp_error.hpp"
#include "program_executor/amqp/connection_settings.hpp"
#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/amqp/queue_topology.hpp"
// ReconnectingPublisher has its own header; included here so that code which
// found it in this one still does.
#include "program_executor/amqp/reconnecting_publisher.hpp"

namespace program_executor::amqp {

struct Delivery {
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string routing_key;
  std::string body;
  /// As received: persistent (delivery_mode 2), timestamp when set, and the
  /// headers whose values are text (others, such as x-death, are skipped).
  PublishProperties properties;
  /// basic.get only: messages left in the queue after this one.
  std::uint32_t messages_left = 0;
};

class Connection : public MessagePublisher {
 public:
  /// Opens the socket (TLS for amqps), logs in and opens channel 1.
  /// `name` is shown in the broker's management UI (connection_name).
  /// Throws AmqpError naming the broker (without password) and the cause.
  Connection(const ConnectionSettings& settings, std::string_view name);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Declares a queue; QueueMismatchError when it exists with other settings.
  /// The channel is reopened after a mismatch, so the connection stays usable;
  /// the prefetch is set again on it, but a consumer started before is gone
  /// (declare before consume).
  void declare(const QueueSpec& queue) override;
  void declare(const QueueTopology& topology);
  /// Whether `queue` exists (a passive declare: creates and changes nothing).
  bool queue_exists(const std::string& queue);

  /// Deletes a queue and the messages in it (tests, operator tools). Deleting
  /// a queue that does not exist is not an error.
  void delete_queue(const std::string& queue);

  /// basic.qos prefetch_count for this channel.
  void set_prefetch(int count);

  /// Starts a consumer (manual acks) on `queue`.
  void consume(const std::string& queue);
  /// basic.cancel of the consumer started by consume(); deliveries already
  /// received stay unacknowledged until acked, rejected or the connection closes.
  void cancel_consume();

  /// Waits up to `timeout` for a delivery; heartbeats are serviced meanwhile.
  /// Returns nullopt on timeout. Throws AmqpError when the connection is lost.
  std::optional<Delivery> next_delivery(std::chrono::milliseconds timeout);

  void ack(std::uint64_t delivery_tag);
  /// basic.nack requeue=false: the broker dead-letters it (to the retry queue).
  void dead_letter(std::uint64_t delivery_tag);
  /// basic.reject requeue=true: back to the head of its queue (used on shutdown).
  void requeue(std::uint64_t delivery_tag);

  /// Publishes with confirm (confirm.select is sent on first use). Mandatory:
  /// a message that no queue takes is an error, not a silent drop. Works on a
  /// consuming connection too: deliveries arriving while waiting for the
  /// confirm are kept and returned by next_delivery().
  void publish(const std::string& queue, std::string_view body,
               const PublishProperties& properties) override;

  /// All messages sent, then all confirms awaited together (see MessagePublisher).
  void publish_all(const std::vector<OutgoingMessage>& messages) override;

  /// The socket, to wait for input together with other descriptors (poll).
  int socket_fd() const noexcept;
  /// Whether input was already read from the socket and waits to be handled:
  /// then next_delivery() has something without the socket being readable.
  bool input_buffered() const noexcept;

  /// Whether the last failure left the connection unusable.
  bool broken() const noexcept;

  /// basic.get of one message from `queue` with manual ack (operator tools
  /// that take messages one at a time); nullopt when the queue is empty. The
  /// message stays unacknowledged until ack(), requeue() or dead_letter()
  /// (on a queue without a dead-letter exchange: deleted), or until the
  /// connection closes, which returns it to the queue.
  std::optional<Delivery> get(const std::string& queue);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace program_executor::amqp
