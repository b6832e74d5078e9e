#include "program_executor/amqp/broker_nodes.hpp"

#include <random>
#include <stdexcept>
#include <utility>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::amqp {

BrokerNodes::BrokerNodes(ConnectionSettings node) { nodes_.push_back(std::move(node)); }

BrokerNodes::BrokerNodes(const std::vector<std::string>& urls, const config::TlsSettings& tls,
                         int heartbeat_seconds) {
  if (urls.empty()) throw std::invalid_argument("no broker URL");
  nodes_.reserve(urls.size());
  for (const std::string& url : urls) nodes_.push_back(parse_url(url, tls, heartbeat_seconds));
}

BrokerNodes BrokerNodes::from(const config::AmqpSettings& amqp, int heartbeat_seconds) {
  return BrokerNodes(amqp.nodes(), amqp.tls, heartbeat_seconds);
}

BrokerNodes BrokerNodes::shuffled(std::uint64_t seed) const {
  BrokerNodes copy = *this;
  // std::shuffle's result depends on the standard library; a hand-rolled
  // Fisher-Yates over mt19937_64 (whose sequence the standard fixes) gives
  // the same order for a seed everywhere, which the tests rely on.
  std::mt19937_64 random(seed);
  for (std::size_t i = copy.nodes_.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(random() % i);
    std::swap(copy.nodes_[i - 1], copy.nodes_[j]);
  }
  copy.current_ = 0;
  return copy;
}

BrokerNodes BrokerNodes::with_heartbeat(int seconds) const {
  BrokerNodes copy = *this;
  for (ConnectionSettings& node : copy.nodes_) node.heartbeat_seconds = seconds;
  return copy;
}

std::unique_ptr<Connection> BrokerNodes::connect(std::string_view name) {
  std::string reasons;
  bool all_unreachable = true;
  std::exception_ptr refusal;
  std::exception_ptr unreachable;
  for (std::size_t tried = 0; tried < nodes_.size(); ++tried) {
    const std::size_t index = (current_ + tried) % nodes_.size();
    const ConnectionSettings& node = nodes_[index];
    try {
      auto connection = std::make_unique<Connection>(node, name);
      if (tried > 0) {
        log::event(log::Level::warn, "amqp.failover", "connected to another broker node",
                   {{"connection", std::string(name)},
                    {"broker", node.describe()},
                    {"instead_of", nodes_[current_].describe()}});
      }
      current_ = index;
      return connection;
    } catch (const BrokerUnreachableError& e) {
      unreachable = std::current_exception();
      reasons += (reasons.empty() ? "" : "; ") + std::string(e.what());
    } catch (const AmqpError& e) {
      // A node that answers and refuses (login, TLS): another node may take
      // us; if none does, this is the error to report, not "unreachable".
      all_unreachable = false;
      if (!refusal) refusal = std::current_exception();
      reasons += (reasons.empty() ? "" : "; ") + std::string(e.what());
    }
  }
  if (!all_unreachable) std::rethrow_exception(refusal);
  // A lone node (amqp.url): its own error, worded as it always was.
  if (nodes_.size() == 1) std::rethrow_exception(unreachable);
  throw BrokerUnreachableError("no broker node could be reached (" + std::to_string(nodes_.size()) +
                               " tried): " + reasons);
}

void BrokerNodes::lost() { current_ = (current_ + 1) % nodes_.size(); }

std::string BrokerNodes::describe() const {
  std::string text;
  for (const ConnectionSettings& node : nodes_)
    text += (text.empty() ? "" : ", ") + node.describe();
  return text;
}

std::uint64_t node_order_seed(int worker_index) {
  // Random per worker: the workers of one host, and the hosts of a fleet,
  // start on different nodes without knowing of each other.
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device() ^
         static_cast<std::uint64_t>(worker_index);
}

}  // namespace program_executor::amqp
