#include "program_executor/amqp/queue_topology.hpp"

#include <stdexcept>

namespace program_executor::amqp {

// Names and arguments are byte for byte those of program-executor-js, so the
// daemon can join a deployment whose queues that library already declared.
QueueTopology::QueueTopology(std::string queue, bool durable)
    : main_(std::move(queue)),
      retry_(main_ + "-retry-" + std::to_string(retry_delay_ms)),
      parked_(main_ + "-parked"),
      durable_(durable) {
  if (main_.empty()) throw std::invalid_argument("the queue name must not be empty");
  // AMQP short strings: the broker refuses longer names, and "-retry-1000" is appended.
  if (retry_.size() > 255) {
    throw std::invalid_argument("queue name '" + main_ +
                                "' is too long: '<name>-retry-1000' must fit in 255 bytes");
  }
}

std::vector<QueueSpec> QueueTopology::declarations() const {
  return {
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
}

}  // namespace program_executor::amqp
