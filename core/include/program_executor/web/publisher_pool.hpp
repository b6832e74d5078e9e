// Broker connections for the API's request threads: one publisher per
// request at a time, created when none is free and kept for the next one.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/amqp/queue_topology.hpp"

namespace program_executor::web {

class PublisherPool {
 public:
  /// Each new publisher takes the nodes in an order of its own (BrokerNodes::shuffled).
  PublisherPool(amqp::BrokerNodes nodes, amqp::QueueTopology topology, std::string name);

  /// A publisher for this request alone, back in the pool when it goes out
  /// of scope. A new one connects on first use and declares the topology, so
  /// a publish never goes to a queue that does not exist.
  class Lease {
   public:
    Lease(PublisherPool& pool, std::unique_ptr<amqp::MessagePublisher> publisher)
        : pool_(pool), publisher_(std::move(publisher)) {}
    ~Lease() { pool_.give_back(std::move(publisher_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    amqp::MessagePublisher& publisher() noexcept { return *publisher_; }

   private:
    PublisherPool& pool_;
    std::unique_ptr<amqp::MessagePublisher> publisher_;
  };

  /// Throws amqp::AmqpError when a new publisher cannot reach the broker.
  Lease borrow();

 private:
  void give_back(std::unique_ptr<amqp::MessagePublisher> publisher);

  amqp::BrokerNodes nodes_;
  amqp::QueueTopology topology_;
  std::string name_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<amqp::MessagePublisher>> free_;
};

}  // namespace program_executor::web
