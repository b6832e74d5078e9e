#include "program_executor/amqp/queue_topology.hpp"

#include <stdexcept>

namespace program_executor::amqp {

// Names and arguments are byte for byte those of program-executor-js, so the
// daemon can join a deployment whose queues that library already declared.
QueueTopology::QueueTopology(std::string queue, bool durable, bool quorum, int delivery_limit)
    : main_(std::move(queue)),
      retry_(main_ + "-retry-" + std::to_string(retry_delay_ms)),
      parked_(main_ + "-parked"),
      durable_(durable),
      quorum_(quorum),
      delivery_limit_(delivery_limit) {
  if (main_.empty()) throw std::invalid_argument("the queue name must not be empty");
  if (quorum_ && !durable_) {
    throw std::invalid_argument("quorum queues are always durable: set amqp.durable to true");
  }
  // AMQP short strings: the broker refuses longer names, and "-retry-1000" is appended.
  if (retry_.size() > 255) {
    throw std::invalid_argument("queue name '" + main_ +
                                "' is too long: '<name>-retry-1000' must fit in 255 bytes");
  }
}

QueueTopology QueueTopology::from(const config::AmqpSettings& settings) {
  return QueueTopology(settings.queue, settings.durable, settings.queue_type == config::QueueType::quorum,
                       settings.delivery_limit);
}

std::vector<QueueSpec> QueueTopology::declarations() const {
  std::vector<QueueSpec> specs = {
      QueueSpec{main_,
                durable_,
                {{"x-dead-letter-exchange", std::string()}, {"x-dead-letter-routing-key", retry_}}},
      QueueSpec{retry_,
                durable_,
                {{"x-message-ttl", retry_delay_ms},
                 {"x-dead-letter-exchange", std::string()},
                 {"x-dead-letter-routing-key", main_}}},
      QueueSpec{parked_, durable_, {}},
  };
  if (quorum_) {
    for (auto& spec : specs) spec.arguments.push_back({"x-queue-type", std::string("quorum")});
    if (delivery_limit_ > 0) specs[0].arguments.push_back({"x-delivery-limit", delivery_limit_});
  }
  return specs;
}

}  // namespace program_executor::amqp
