// The broker nodes a connection may use (a cluster's, from amqp.urls, or the
// one broker of amqp.url), and which of them to try next. A worker holds its
// own copy in its own order, so a fleet spreads over the nodes, and fails
// over to another node when its connection is lost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/amqp/connection_settings.hpp"
#include "program_executor/config/config.hpp"

namespace program_executor::amqp {

class Connection;

class BrokerNodes {
 public:
  /// One node.
  explicit BrokerNodes(ConnectionSettings node);
  /// Every URL parsed (parse_url), in the order given; at least one.
  /// Throws std::invalid_argument as parse_url does.
  BrokerNodes(const std::vector<std::string>& urls, const config::TlsSettings& tls,
              int heartbeat_seconds);
  /// amqp.urls or amqp.url of `amqp`, with its TLS settings and `heartbeat_seconds`.
  static BrokerNodes from(const config::AmqpSettings& amqp, int heartbeat_seconds);

  /// The same nodes in an order drawn from `seed` (a Fisher-Yates shuffle of
  /// the list), starting at the first of that order.
  BrokerNodes shuffled(std::uint64_t seed) const;
  /// The same nodes with heartbeats of `seconds` (0: none).
  BrokerNodes with_heartbeat(int seconds) const;

  /// Opens a connection to the node in turn or, when that fails, to each
  /// other node in order; the node that answered becomes the one in turn.
  /// When every node fails it throws: BrokerUnreachableError when none could
  /// be reached at all (waiting may help), else the first other AmqpError (a
  /// refused login or TLS verification). With one node, its error as is; with
  /// several, the message names each node and why it failed.
  std::unique_ptr<Connection> connect(std::string_view name);
  /// The connection to the node in turn was lost: the next connect() tries
  /// the following node first (the lost one may be down), the lost one last.
  void lost();

  const ConnectionSettings& current() const { return nodes_[current_]; }
  const std::vector<ConnectionSettings>& nodes() const { return nodes_; }
  std::size_t size() const { return nodes_.size(); }
  /// The nodes in their order, without passwords: "amqp://guest@h1:5672/, ...".
  std::string describe() const;

 private:
  std::vector<ConnectionSettings> nodes_;
  std::size_t current_ = 0;
};

/// A seed for BrokerNodes::shuffled that differs between the workers of a
/// fleet: the host name, the process id and the worker index, hashed.
std::uint64_t node_order_seed(int worker_index);

}  // namespace program_executor::amqp
