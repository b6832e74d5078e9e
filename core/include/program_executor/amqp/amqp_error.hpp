#pragma once

#include <stdexcept>

namespace program_executor::amqp {

/// Any broker or connection failure. After it the connection must be dropped
/// and a new one opened (the daemon reconnects with backoff).
class AmqpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// No connection to the broker could be opened at all (refused, timed out,
/// host name not resolved): nothing was sent. The broker may simply not be up
/// yet, so the daemon waits for it at start (startup_wait.hpp); a broker that
/// answers and refuses (login, TLS verification, queue arguments) is an AmqpError.
class BrokerUnreachableError : public AmqpError {
 public:
  using AmqpError::AmqpError;
};

/// A queue exists with other durability or arguments than we declare (406
/// PRECONDITION_FAILED). The message names the queue and the argument.
class QueueMismatchError : public AmqpError {
 public:
  using AmqpError::AmqpError;
};

}  // namespace program_executor::amqp
