#include "program_executor/amqp/reconnecting_publisher.hpp"

#include <utility>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::amqp {
namespace {

// Runs `use` on `connection`, opening it first if there is none or it broke.
// When the connection breaks under `use` (not a nack, a return or a refused
// declaration: reconnecting would not help those), it reconnects once,
// logging why with `subject`, and runs `use` again, on the next broker node
// that answers. At-least-once: had the
// broken connection stored a message before it failed, publishing again
// stores a second copy.
template <class Use>
void with_connection(std::unique_ptr<Connection>& connection, BrokerNodes& nodes,
                     const std::string& name, const log::Field& subject, Use&& use) {
  if (connection && connection->broken()) {
    connection.reset();
    nodes.lost();
  }
  if (!connection) connection = nodes.connect(name);
  try {
    use(*connection);
    return;
  } catch (const QueueMismatchError&) {
    throw;  // the channel was reopened; reconnecting would not help
  } catch (const AmqpError& error) {
    if (!connection->broken()) throw;
    log::event(log::Level::warn, "amqp.reconnect",
               "publisher connection broke; reconnecting once and trying again",
               {{"broker", nodes.current().describe()}, subject, {"error", error.what()}});
  }
  connection.reset();
  nodes.lost();
  connection = nodes.connect(name);
  use(*connection);
}

}  // namespace

ReconnectingPublisher::ReconnectingPublisher(ConnectionSettings settings, std::string name)
    : ReconnectingPublisher(BrokerNodes(std::move(settings)), std::move(name)) {}

ReconnectingPublisher::ReconnectingPublisher(BrokerNodes nodes, std::string name)
    // Heartbeats are only serviced inside library calls; an idle publisher
    // connection (a long job between publishes) would be dropped by the broker.
    : nodes_(nodes.with_heartbeat(0)), name_(std::move(name)) {}

ReconnectingPublisher::~ReconnectingPublisher() = default;

void ReconnectingPublisher::publish(const std::string& queue, std::string_view body,
                                    const PublishProperties& properties) {
  with_connection(connection_, nodes_, name_, {"queue", queue},
                  [&](Connection& connection) { connection.publish(queue, body, properties); });
}

void ReconnectingPublisher::publish_all(const std::vector<OutgoingMessage>& messages) {
  with_connection(connection_, nodes_, name_, {"messages", messages.size()},
                  [&](Connection& connection) { connection.publish_all(messages); });
}

void ReconnectingPublisher::declare(const QueueSpec& queue) {
  with_connection(connection_, nodes_, name_, {"queue", queue.name},
                  [&](Connection& connection) { connection.declare(queue); });
}

}  // namespace program_executor::amqp
