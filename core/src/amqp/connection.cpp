#include "program_executor/amqp/connection.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <sys/time.h>

#include <array>
#include <chrono>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "broker_socket.hpp"
#include "connection_state.hpp"
#include "rabbitmq_c.hpp"
#include "timeouts.hpp"

namespace program_executor::amqp {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int frame_max = 131072;

}  // namespace

Connection::Connection(const ConnectionSettings& settings, std::string_view name)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.settings = settings;
  s.where = settings.describe();
  s.connection.reset(amqp_new_connection());
  if (!s.connection) throw AmqpError("creating the AMQP connection state for " + s.where);

  std::optional<config::TlsSettings> tls;
  if (settings.tls) tls = settings.tls_options;
  const BrokerSocket socket(s.conn(), settings.host, settings.port, std::move(tls), s.where);

  timeval handshake_tv = to_timeval(connect_timeout);
  amqp_set_handshake_timeout(s.conn(), &handshake_tv);
  timeval rpc_tv = to_timeval(rpc_timeout);
  amqp_set_rpc_timeout(s.conn(), &rpc_tv);

  // Merged by rabbitmq-c with its own client properties (product, capabilities).
  // consumer_cancel_notify makes the broker send basic.cancel when a consumed
  // queue is deleted; without it the consumer would silently starve.
  const std::string connection_name(name);
  amqp_table_entry_t capability{};
  capability.key = amqp_cstring_bytes("consumer_cancel_notify");
  capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capability.value.value.boolean = 1;
  std::array<amqp_table_entry_t, 2> property{};
  property[0].key = amqp_cstring_bytes("connection_name");
  property[0].value.kind = AMQP_FIELD_KIND_UTF8;
  property[0].value.value.bytes = bytes_of(connection_name);
  property[1].key = amqp_cstring_bytes("capabilities");
  property[1].value.kind = AMQP_FIELD_KIND_TABLE;
  property[1].value.value.table = amqp_table_t{1, &capability};
  const amqp_table_t properties{static_cast<int>(property.size()), property.data()};
  const amqp_rpc_reply_t login = amqp_login_with_properties(
      s.conn(), settings.vhost.c_str(), 0, frame_max, settings.heartbeat_seconds, &properties,
      AMQP_SASL_METHOD_PLAIN, settings.user.c_str(), settings.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    std::string cause = reply_text(login);
    if (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        login.library_error == AMQP_STATUS_CONNECTION_CLOSED) {
      cause += " (login failed: check the user, password and vhost)";
    }
    if (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        login.library_error == AMQP_STATUS_SSL_ERROR) {
      // With TLS 1.3 a broker refuses the client's certificate only after the handshake.
      const std::string reason = socket.tls_refusal();
      if (!reason.empty()) cause += ": " + reason + " (does the broker accept amqp.tls.cert_file?)";
    }
    if (login.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        login.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      s.answer_connection_close();
    }
    s.fail("logging in as '" + settings.user + "' to vhost '" + settings.vhost + "'", cause);
  }
  s.open_channel();
}

Connection::~Connection() {
  State& s = *state_;
  if (!s.broken && s.connection) {
    timeval tv = to_timeval(close_timeout);
    amqp_set_rpc_timeout(s.conn(), &tv);
    // Replies are ignored: the state is destroyed either way.
    amqp_channel_close(s.conn(), s.channel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(s.conn(), AMQP_REPLY_SUCCESS);
  }
}

void Connection::declare(const QueueSpec& queue) {
  State& s = *state_;
  const std::string doing = "declaring queue '" + queue.name + "'";
  s.require_usable(doing);

  // The entries point into `queue`, which outlives the call.
  std::vector<amqp_table_entry_t> entries;
  entries.reserve(queue.arguments.size());
  for (const QueueArgument& argument : queue.arguments) {
    amqp_table_entry_t entry{};
    entry.key = bytes_of(argument.name);
    if (const auto* text = std::get_if<std::string>(&argument.value)) {
      entry.value.kind = AMQP_FIELD_KIND_UTF8;
      entry.value.value.bytes = bytes_of(*text);
    } else {
      entry.value.kind = AMQP_FIELD_KIND_I32;
      entry.value.value.i32 = std::get<std::int32_t>(argument.value);
    }
    entries.push_back(entry);
  }
  const amqp_table_t arguments{static_cast<int>(entries.size()), entries.data()};
  amqp_queue_declare(s.conn(), s.channel, bytes_of(queue.name), 0, queue.durable ? 1 : 0, 0, 0,
                     arguments);
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(s.conn());
  if (const auto closed = s.reopen_after_channel_close(reply)) {
    const std::string& reason = closed->reason;
    if (closed->code == AMQP_PRECONDITION_FAILED) {
      // The broker's text names the argument that differs.
      const std::string hint =
          reason.find("'durable'") != std::string::npos
              ? std::string("amqp.durable must match the existing queue (durable=") +
                    (queue.durable ? "true" : "false") +
                    " was declared), or delete the queue so it is declared afresh"
              : "the queue was declared elsewhere with other arguments; delete it so it is "
                "declared afresh, or choose another amqp.queue";
      throw QueueMismatchError("queue '" + queue.name + "' already exists with other settings: " +
                               reason + " (on " + s.where + "); hint: " + hint);
    }
    throw AmqpError(doing + " on " + s.where + ": the broker closed the channel: " + reason);
  }
  s.check_reply(reply, doing);
}

bool Connection::queue_exists(const std::string& queue) {
  State& s = *state_;
  const std::string doing = "looking for queue '" + queue + "'";
  s.require_usable(doing);
  amqp_queue_declare(s.conn(), s.channel, bytes_of(queue), 1, 0, 0, 0, amqp_empty_table);
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(s.conn());
  if (const auto closed = s.reopen_after_channel_close(reply)) {
    if (closed->code == AMQP_NOT_FOUND) return false;
    throw AmqpError(doing + " on " + s.where + ": the broker closed the channel: " +
                    closed->reason);
  }
  s.check_reply(reply, doing);
  return true;
}

void Connection::declare(const QueueTopology& topology) {
  for (const QueueSpec& spec : topology.declarations()) declare(spec);
}

void Connection::delete_queue(const std::string& queue) {
  State& s = *state_;
  const std::string doing = "deleting queue '" + queue + "'";
  s.require_usable(doing);
  amqp_queue_delete(s.conn(), s.channel, bytes_of(queue), 0, 0);
  s.check_reply(amqp_get_rpc_reply(s.conn()), doing);
}

void Connection::set_prefetch(int count) {
  State& s = *state_;
  const std::string doing = "setting prefetch " + std::to_string(count);
  if (count < 0 || count > std::numeric_limits<std::uint16_t>::max()) {
    s.fail(doing, "prefetch must be between 0 and 65535", false);
  }
  s.require_usable(doing);
  s.apply_prefetch(count);
  s.prefetch = count;
}

void Connection::consume(const std::string& queue) {
  State& s = *state_;
  const std::string doing = "starting a consumer on queue '" + queue + "'";
  s.require_usable(doing);
  if (s.consumer_tag) {
    s.fail(doing, "already consuming from '" + s.consumed_queue + "'", false);
  }
  const auto* ok = amqp_basic_consume(s.conn(), s.channel, bytes_of(queue), amqp_empty_bytes, 0, 0,
                                      0, amqp_empty_table);
  s.check_reply(amqp_get_rpc_reply(s.conn()), doing);
  s.consumer_tag = string_of(ok->consumer_tag);
  s.consumed_queue = queue;
}

void Connection::cancel_consume() {
  State& s = *state_;
  if (!s.consumer_tag) return;
  const std::string doing = "cancelling the consumer on queue '" + s.consumed_queue + "'";
  s.require_usable(doing);
  amqp_basic_cancel(s.conn(), s.channel, bytes_of(*s.consumer_tag));
  s.consumer_tag.reset();
  s.check_reply(amqp_get_rpc_reply(s.conn()), doing);
}

std::optional<Delivery> Connection::next_delivery(std::chrono::milliseconds timeout) {
  State& s = *state_;
  const std::string doing = "waiting for a delivery from queue '" + s.consumed_queue + "'";
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (!s.pending.empty()) {
      Delivery delivery = std::move(s.pending.front());
      s.pending.pop_front();
      return delivery;
    }
    s.require_usable(doing);
    amqp_maybe_release_buffers(s.conn());
    timeval tv =
        to_timeval(std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()));
    amqp_envelope_t envelope{};
    const amqp_rpc_reply_t reply = amqp_consume_message(s.conn(), &envelope, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      EnvelopeGuard guard{&envelope};
      Delivery delivery;
      delivery.delivery_tag = envelope.delivery_tag;
      delivery.redelivered = envelope.redelivered != 0;
      delivery.routing_key = string_of(envelope.routing_key);
      delivery.body = string_of(envelope.message.body);
      delivery.properties = properties_of(envelope.message.properties);
      return delivery;
    }
    if (reply.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION) s.fail(doing, reply_text(reply));
    if (reply.library_error == AMQP_STATUS_TIMEOUT) return std::nullopt;
    if (reply.library_error != AMQP_STATUS_UNEXPECTED_STATE)
      s.fail(doing, s.lost(reply.library_error));
    // The next frame is not a delivery; rabbitmq-c put it back for us to read.
    amqp_frame_t frame{};
    s.check_status(amqp_simple_wait_frame(s.conn(), &frame), doing);
    s.handle_frame(frame, doing, nullptr);
    if (Clock::now() >= deadline && s.pending.empty()) return std::nullopt;
  }
}

void Connection::ack(std::uint64_t delivery_tag) {
  State& s = *state_;
  const std::string doing = "acknowledging delivery " + std::to_string(delivery_tag);
  s.require_usable(doing);
  s.check_status(amqp_basic_ack(s.conn(), s.channel, delivery_tag, 0), doing);
}

void Connection::dead_letter(std::uint64_t delivery_tag) {
  State& s = *state_;
  const std::string doing = "dead-lettering delivery " + std::to_string(delivery_tag);
  s.require_usable(doing);
  s.check_status(amqp_basic_nack(s.conn(), s.channel, delivery_tag, 0, 0), doing);
}

void Connection::requeue(std::uint64_t delivery_tag) {
  State& s = *state_;
  const std::string doing = "requeueing delivery " + std::to_string(delivery_tag);
  s.require_usable(doing);
  s.check_status(amqp_basic_reject(s.conn(), s.channel, delivery_tag, 1), doing);
}

std::optional<Delivery> Connection::get(const std::string& queue) {
  State& s = *state_;
  const std::string doing = "getting a message from queue '" + queue + "'";
  s.require_usable(doing);
  amqp_maybe_release_buffers(s.conn());
  const amqp_rpc_reply_t reply = amqp_basic_get(s.conn(), s.channel, bytes_of(queue), 0);
  s.check_reply(reply, doing);
  if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
  if (reply.reply.id != AMQP_BASIC_GET_OK_METHOD) {
    s.fail(doing, std::string("unexpected reply ") + amqp_method_name(reply.reply.id));
  }
  // Copied out before the content is read, which may reuse the frame's memory.
  const auto* ok = static_cast<const amqp_basic_get_ok_t*>(reply.reply.decoded);
  Delivery delivery;
  delivery.delivery_tag = ok->delivery_tag;
  delivery.redelivered = ok->redelivered != 0;
  delivery.routing_key = string_of(ok->routing_key);
  delivery.messages_left = ok->message_count;
  amqp_message_t message{};
  s.read_content(s.channel, message, doing);
  MessageGuard guard{&message};
  delivery.body = string_of(message.body);
  delivery.properties = properties_of(message.properties);
  return delivery;
}

namespace {

// Sends one message without waiting for its confirm; returns the status.
int send(amqp_connection_state_t connection, amqp_channel_t channel, const std::string& queue,
         std::string_view body, const PublishProperties& properties) {
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode =
      properties.persistent ? AMQP_DELIVERY_PERSISTENT : AMQP_DELIVERY_NONPERSISTENT;
  if (properties.timestamp) {
    props._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
    props.timestamp = static_cast<std::uint64_t>(*properties.timestamp);
  }
  std::vector<amqp_table_entry_t> headers;  // points into `properties`
  if (!properties.headers.empty()) {
    headers.reserve(properties.headers.size());
    for (const auto& [key, value] : properties.headers) {
      amqp_table_entry_t entry{};
      entry.key = bytes_of(key);
      entry.value.kind = AMQP_FIELD_KIND_UTF8;
      entry.value.value.bytes = bytes_of(value);
      headers.push_back(entry);
    }
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = amqp_table_t{static_cast<int>(headers.size()), headers.data()};
  }
  // Default exchange, routing key = queue; mandatory so an unroutable message
  // comes back as basic.return instead of vanishing.
  return amqp_basic_publish(connection, channel, amqp_empty_bytes, bytes_of(queue), 1, 0, &props,
                            bytes_of(body));
}

}  // namespace

void Connection::publish(const std::string& queue, std::string_view body,
                         const PublishProperties& properties) {
  publish_all({OutgoingMessage{queue, std::string(body), properties}});
}

void Connection::publish_all(const std::vector<OutgoingMessage>& messages) {
  if (messages.empty()) return;
  State& s = *state_;
  const std::string doing = messages.size() == 1
                                ? "publishing to queue '" + messages.front().queue + "'"
                                : "publishing " + std::to_string(messages.size()) + " messages";
  s.require_usable(doing);
  if (!s.confirms_selected) {
    amqp_confirm_select(s.conn(), s.channel);
    s.check_reply(amqp_get_rpc_reply(s.conn()), "enabling publisher confirms");
    s.confirms_selected = true;
    s.next_publish_tag = 1;
  }
  // All messages go out before the first confirm is awaited: the broker
  // stores (and for durable queues syncs) them together.
  ConfirmWait wait;
  for (const OutgoingMessage& message : messages) {
    s.check_status(send(s.conn(), s.channel, message.queue, message.body, message.properties),
                   doing);
    wait.outstanding.insert(s.next_publish_tag++);
  }
  s.wait_for_confirm(wait, doing);
  if (wait.nacked) {
    s.fail(doing, "the broker refused the message (basic.nack); it was not stored", false);
  }
  if (wait.returned) {
    // The broker acks a returned message too: the ack alone does not mean stored.
    std::string queues;
    for (const OutgoingMessage& message : messages) {
      if (queues.find("'" + message.queue + "'") != std::string::npos) continue;
      queues += (queues.empty() ? "'" : ", '") + message.queue + "'";
    }
    s.fail(doing,
           "no queue named " + queues + " took the message (" + *wait.returned +
               "); does the queue exist?",
           false);
  }
}

int Connection::socket_fd() const noexcept { return amqp_get_sockfd(state_->conn()); }

bool Connection::input_buffered() const noexcept {
  const State& s = *state_;
  return !s.pending.empty() || amqp_frames_enqueued(s.conn()) != 0 ||
         amqp_data_in_buffer(s.conn()) != 0;
}

bool Connection::broken() const noexcept { return state_->broken; }

}  // namespace program_executor::amqp
