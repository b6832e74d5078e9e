#include "amqp_link.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <ctime>

namespace program_executor::bench {
namespace {

constexpr int channel = 1;

amqp_bytes_t bytes_of(std::string_view text) {
  // rabbitmq-c takes non-const pointers but only reads through them.
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}

timeval to_timeval(std::chrono::microseconds duration) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(duration.count() % 1000000);
  return tv;
}

std::string describe(const amqp_rpc_reply_t& reply) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
        return "channel closed: " + std::to_string(close->reply_code) + " " +
               std::string(static_cast<const char*>(close->reply_text.bytes), close->reply_text.len);
      }
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* close = static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
        return "connection closed: " + std::to_string(close->reply_code) + " " +
               std::string(static_cast<const char*>(close->reply_text.bytes), close->reply_text.len);
      }
      return "server exception";
  }
  return "unknown reply";
}

void check(const amqp_rpc_reply_t& reply, const std::string& what) {
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) throw BenchError("broker: " + what + ": " + describe(reply));
}

void check_status(int status, const std::string& what) {
  if (status != AMQP_STATUS_OK) throw BenchError("broker: " + what + ": " + amqp_error_string2(status));
}

}  // namespace

struct AmqpLink::State {
  amqp_connection_state_t connection = nullptr;
  bool channel_open = false;
  std::uint64_t next_sequence = 0;   ///< 0: confirms not enabled
  std::set<std::uint64_t> unconfirmed;
  std::string refused;  ///< why a publish was nacked or returned, reported by wait_confirms
};

AmqpLink::AmqpLink(const amqp::ConnectionSettings& settings) : state_(std::make_unique<State>()) {
  if (settings.tls) throw BenchError("pe-bench speaks plain amqp:// only");
  state_->connection = amqp_new_connection();
  if (state_->connection == nullptr) throw BenchError("broker: out of memory");
  amqp_socket_t* socket = amqp_tcp_socket_new(state_->connection);
  if (socket == nullptr) throw BenchError("broker: cannot create a socket");
  timeval timeout{10, 0};
  check_status(amqp_socket_open_noblock(socket, settings.host.c_str(), settings.port, &timeout),
               "connecting to " + settings.describe());
  check(amqp_login(state_->connection, settings.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                   settings.user.c_str(), settings.password.c_str()),
        "logging in to " + settings.describe());
  amqp_channel_open(state_->connection, channel);
  check(amqp_get_rpc_reply(state_->connection), "opening a channel");
  state_->channel_open = true;
}

AmqpLink::~AmqpLink() {
  if (state_->channel_open) amqp_channel_close(state_->connection, channel, AMQP_REPLY_SUCCESS);
  amqp_connection_close(state_->connection, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(state_->connection);
}

void AmqpLink::declare_durable(const std::string& queue) {
  amqp_queue_declare(state_->connection, channel, bytes_of(queue), 0, 1, 0, 0, amqp_empty_table);
  check(amqp_get_rpc_reply(state_->connection), "declaring " + queue);
}

QueueInfo AmqpLink::inspect(const std::string& queue) {
  const amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(state_->connection, channel, bytes_of(queue), 1, 0, 0, 0, amqp_empty_table);
  check(amqp_get_rpc_reply(state_->connection), "inspecting " + queue);
  return QueueInfo{ok->message_count, ok->consumer_count};
}

void AmqpLink::set_prefetch(int count) {
  amqp_basic_qos(state_->connection, channel, 0, static_cast<std::uint16_t>(count), 0);
  check(amqp_get_rpc_reply(state_->connection), "basic.qos");
}

void AmqpLink::consume(const std::string& queue) {
  amqp_basic_consume(state_->connection, channel, bytes_of(queue), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  check(amqp_get_rpc_reply(state_->connection), "consuming " + queue);
}

std::optional<Envelope> AmqpLink::next(std::chrono::microseconds timeout) {
  amqp_maybe_release_buffers(state_->connection);
  amqp_envelope_t envelope;
  timeval tv = to_timeval(timeout);
  const amqp_rpc_reply_t reply = amqp_consume_message(state_->connection, &envelope, &tv, 0);
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
      reply.library_error == AMQP_STATUS_TIMEOUT) {
    return std::nullopt;
  }
  check(reply, "consuming");
  Envelope result{envelope.delivery_tag,
                  std::string(static_cast<const char*>(envelope.message.body.bytes),
                              envelope.message.body.len)};
  amqp_destroy_envelope(&envelope);
  return result;
}

void AmqpLink::ack(std::uint64_t delivery_tag, bool multiple) {
  check_status(amqp_basic_ack(state_->connection, channel, delivery_tag, multiple ? 1 : 0), "basic.ack");
}

void AmqpLink::enable_confirms() {
  amqp_confirm_select(state_->connection, channel);
  check(amqp_get_rpc_reply(state_->connection), "confirm.select");
  state_->next_sequence = 1;
}

void AmqpLink::publish(const std::string& queue, std::string_view body) {
  amqp_basic_properties_t properties{};
  properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
  properties.delivery_mode = 2;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  properties.timestamp = static_cast<std::uint64_t>(now.tv_sec) * 1000 +
                         static_cast<std::uint64_t>(now.tv_nsec / 1000000);
  check_status(amqp_basic_publish(state_->connection, channel, amqp_empty_bytes, bytes_of(queue), 1, 0,
                                  &properties, bytes_of(body)),
               "publishing to " + queue);
  if (state_->next_sequence != 0) state_->unconfirmed.insert(state_->next_sequence++);
}

void AmqpLink::wait_confirms(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!state_->unconfirmed.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw BenchError("broker: no publisher confirm within the timeout");
    amqp_frame_t frame;
    timeval tv = to_timeval(left);
    const int status = amqp_simple_wait_frame_noblock(state_->connection, &frame, &tv);
    if (status == AMQP_STATUS_TIMEOUT) continue;
    check_status(status, "waiting for confirms");
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack = static_cast<const amqp_basic_ack_t*>(frame.payload.method.decoded);
        auto& pending = state_->unconfirmed;
        if (ack->multiple) {
          pending.erase(pending.begin(), pending.upper_bound(ack->delivery_tag));
        } else {
          pending.erase(ack->delivery_tag);
        }
        break;
      }
      case AMQP_BASIC_NACK_METHOD:
        throw BenchError("broker: a publish was nacked");
      case AMQP_BASIC_RETURN_METHOD: {
        amqp_message_t message;
        amqp_read_message(state_->connection, frame.channel, &message, 0);
        amqp_destroy_message(&message);
        state_->refused = "a publish was returned (no such queue)";
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
      case AMQP_CONNECTION_CLOSE_METHOD:
        state_->channel_open = false;
        throw BenchError("broker: the channel was closed while waiting for confirms");
      default:
        break;
    }
  }
  if (!state_->refused.empty()) throw BenchError("broker: " + state_->refused);
}

}  // namespace program_executor::bench
