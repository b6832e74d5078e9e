// A publisher that survives a broken connection by reconnecting once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/connection_settings.hpp"
#include "program_executor/amqp/message_publisher.hpp"

namespace program_executor::amqp {

class Connection;

/// A MessagePublisher that opens its connection on first use and, when a
/// publish fails because the connection broke, reconnects once and publishes
/// again; with several broker nodes it reconnects to the next one that
/// answers (BrokerNodes). Used from one thread only.
class ReconnectingPublisher : public MessagePublisher {
 public:
  ReconnectingPublisher(ConnectionSettings settings, std::string name);
  ReconnectingPublisher(BrokerNodes nodes, std::string name);
  ~ReconnectingPublisher() override;
  void publish(const std::string& queue, std::string_view body,
               const PublishProperties& properties) override;
  void publish_all(const std::vector<OutgoingMessage>& messages) override;
  void declare(const QueueSpec& queue) override;

 private:
  BrokerNodes nodes_;
  std::string name_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace program_executor::amqp
