// Between rabbitmq-c's C types and ours: owners of its handles, conversions
// of its bytes, timeouts and message properties, texts of its statuses and replies.
#pragma once

#include <amqp.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "program_executor/amqp/message_publisher.hpp"

namespace program_executor::amqp {

struct ConnectionDeleter {
  void operator()(amqp_connection_state_t state) const noexcept { amqp_destroy_connection(state); }
};
using ConnectionHandle =
    std::unique_ptr<std::remove_pointer_t<amqp_connection_state_t>, ConnectionDeleter>;

// Frees an envelope or message from rabbitmq-c on every exit path.
struct EnvelopeGuard {
  amqp_envelope_t* envelope;
  ~EnvelopeGuard() { amqp_destroy_envelope(envelope); }
};
struct MessageGuard {
  amqp_message_t* message;
  ~MessageGuard() { amqp_destroy_message(message); }
};

/// A negative duration is zero.
timeval to_timeval(std::chrono::microseconds duration);

/// `text` as rabbitmq-c bytes, pointing into `text`.
amqp_bytes_t bytes_of(std::string_view text);
std::string string_of(amqp_bytes_t bytes);

/// "<code> <text>" of a channel or connection close, or of a basic.return.
std::string close_reason(std::uint16_t code, amqp_bytes_t text);
/// rabbitmq-c's text of an AMQP_STATUS_* code.
std::string status_text(int status);
/// What went wrong, from the reply to a synchronous method.
std::string reply_text(const amqp_rpc_reply_t& reply);

/// Text headers of a message; other kinds (tables, arrays, numbers) are skipped.
PublishProperties properties_of(const amqp_basic_properties_t& props);

}  // namespace program_executor::amqp
