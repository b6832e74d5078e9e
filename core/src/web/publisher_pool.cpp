#include "program_executor/web/publisher_pool.hpp"

#include <utility>

namespace program_executor::web {

PublisherPool::PublisherPool(amqp::BrokerNodes nodes, amqp::QueueTopology topology,
                             std::string name)
    : nodes_(std::move(nodes)), topology_(std::move(topology)), name_(std::move(name)) {}

PublisherPool::Lease PublisherPool::borrow() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      auto publisher = std::move(free_.back());
      free_.pop_back();
      return Lease(*this, std::move(publisher));
    }
  }
  // Spread over a cluster's nodes, as the workers are.
  auto publisher = std::make_unique<amqp::ReconnectingPublisher>(
      nodes_.shuffled(amqp::node_order_seed(0)), name_);
  for (const amqp::QueueSpec& queue : topology_.declarations()) publisher->declare(queue);
  return Lease(*this, std::move(publisher));
}

void PublisherPool::give_back(std::unique_ptr<amqp::MessagePublisher> publisher) {
  if (!publisher) return;
  std::lock_guard lock(mutex_);
  free_.push_back(std::move(publisher));
}

}  // namespace program_executor::web
