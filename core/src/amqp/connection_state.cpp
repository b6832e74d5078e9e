#include "connection_state.hpp"

#include <amqp_framing.h>
#include <sys/time.h>

#include <chrono>
#include <utility>

#include "program_executor/log/logger.hpp"
#include "timeouts.hpp"

namespace program_executor::amqp {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

void ConfirmWait::confirm(std::uint64_t tag, bool multiple, bool negative) {
  bool covered = false;
  if (multiple) {
    const auto end = tag == 0 ? outstanding.end() : outstanding.upper_bound(tag);
    covered = outstanding.begin() != end;
    outstanding.erase(outstanding.begin(), end);
  } else {
    covered = outstanding.erase(tag) > 0;
  }
  if (negative && covered) nacked = true;
}

void Connection::State::fail(const std::string& doing, const std::string& cause, bool breaks) {
  if (breaks) broken = true;
  throw AmqpError(doing + " on " + where + ": " + cause);
}

void Connection::State::check_status(int status, const std::string& doing) {
  if (status != AMQP_STATUS_OK) fail(doing, status_text(status));
}

std::string Connection::State::lost(int status) const {
  std::string text = status_text(status);
  if (status != AMQP_STATUS_SOCKET_ERROR && status != AMQP_STATUS_CONNECTION_CLOSED &&
      status != AMQP_STATUS_HEARTBEAT_TIMEOUT) {
    return text;
  }
  text = "the connection was lost (" + text + ")";
  if (settings.heartbeat_seconds <= 0) return text;
  const std::string twice = std::to_string(2 * settings.heartbeat_seconds) + " s";
  // A node that died and a connection the broker dropped for missed
  // heartbeats look alike from here; say both, the likelier first.
  if (status == AMQP_STATUS_HEARTBEAT_TIMEOUT) {
    text += "; nothing came from the broker for " + twice +
            " (2 x heartbeat_seconds): the broker or the network stalled";
  } else {
    text += "; the broker stopped or the network failed, or the broker dropped a connection that "
            "sent no heartbeat for " + twice +
            " (heartbeats are exchanged only inside library calls)";
  }
  return text;
}

void Connection::State::require_usable(const std::string& doing) {
  if (broken) fail(doing, "the connection is broken by an earlier failure; open a new one");
}

void Connection::State::answer_channel_close(amqp_channel_t closed) {
  amqp_channel_close_ok_t ok{};
  amqp_send_method(conn(), closed, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
}

void Connection::State::answer_connection_close() {
  amqp_connection_close_ok_t ok{};
  amqp_send_method(conn(), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  broken = true;
}

void Connection::State::check_reply(const amqp_rpc_reply_t& reply, const std::string& doing) {
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return;
  if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
    if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) answer_connection_close();
    if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) answer_channel_close(channel);
  }
  fail(doing, reply_text(reply));
}

std::optional<Connection::State::ChannelClose> Connection::State::reopen_after_channel_close(
    const amqp_rpc_reply_t& reply) {
  if (reply.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
      reply.reply.id != AMQP_CHANNEL_CLOSE_METHOD) {
    return std::nullopt;
  }
  const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
  ChannelClose closed{close->reply_code, close_reason(close->reply_code, close->reply_text)};
  answer_channel_close(channel);
  ++channel;
  open_channel();
  return closed;
}

void Connection::State::open_channel() {
  amqp_channel_open(conn(), channel);
  check_reply(amqp_get_rpc_reply(conn()), "opening channel " + std::to_string(channel));
  confirms_selected = false;
  next_publish_tag = 1;
  consumer_tag.reset();
  if (prefetch) apply_prefetch(*prefetch);
}

void Connection::State::apply_prefetch(int count) {
  amqp_basic_qos(conn(), channel, 0, static_cast<std::uint16_t>(count), 0);
  check_reply(amqp_get_rpc_reply(conn()), "setting prefetch " + std::to_string(count));
}

void Connection::State::read_content(amqp_channel_t on, amqp_message_t& message,
                                     const std::string& doing) {
  const amqp_rpc_reply_t reply = amqp_read_message(conn(), on, &message, 0);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) fail(doing, reply_text(reply));
}

void Connection::State::handle_frame(const amqp_frame_t& frame, const std::string& doing,
                                     ConfirmWait* wait) {
  if (frame.frame_type != AMQP_FRAME_METHOD) {
    fail(doing, "unexpected frame type " + std::to_string(frame.frame_type) + " outside a message");
  }
  const amqp_method_t& method = frame.payload.method;
  switch (method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      const auto* deliver = static_cast<const amqp_basic_deliver_t*>(method.decoded);
      Delivery delivery;
      delivery.delivery_tag = deliver->delivery_tag;
      delivery.redelivered = deliver->redelivered != 0;
      delivery.routing_key = string_of(deliver->routing_key);
      amqp_message_t message{};
      read_content(frame.channel, message, doing);
      MessageGuard guard{&message};
      delivery.body = string_of(message.body);
      delivery.properties = properties_of(message.properties);
      pending.push_back(std::move(delivery));
      return;
    }
    case AMQP_BASIC_ACK_METHOD: {
      const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
      if (wait != nullptr) wait->confirm(ack->delivery_tag, ack->multiple != 0, false);
      return;
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto* nack = static_cast<const amqp_basic_nack_t*>(method.decoded);
      if (wait != nullptr) wait->confirm(nack->delivery_tag, nack->multiple != 0, true);
      return;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      const auto* ret = static_cast<const amqp_basic_return_t*>(method.decoded);
      std::string reason = close_reason(ret->reply_code, ret->reply_text);
      // The returned message's header and body follow; drain them.
      amqp_message_t message{};
      read_content(frame.channel, message, doing);
      MessageGuard guard{&message};
      // A return names no delivery tag: it fails the whole wait.
      if (wait != nullptr) wait->returned = std::move(reason);
      return;
    }
    case AMQP_BASIC_CANCEL_METHOD:
      // The broker cancels a consumer when its queue is deleted (we
      // advertise consumer_cancel_notify); the daemon must redeclare.
      consumer_tag.reset();
      fail(doing, "the broker cancelled the consumer of queue '" + consumed_queue +
                      "' (was the queue deleted?)");
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const auto* close = static_cast<const amqp_channel_close_t*>(method.decoded);
      const std::string reason = close_reason(close->reply_code, close->reply_text);
      answer_channel_close(frame.channel);
      fail(doing, "the broker closed the channel: " + reason);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const auto* close = static_cast<const amqp_connection_close_t*>(method.decoded);
      const std::string reason = close_reason(close->reply_code, close->reply_text);
      answer_connection_close();
      fail(doing, "the broker closed the connection: " + reason);
    }
    default:
      // channel.flow and the like carry nothing we act on.
      log::event(log::Level::debug, "amqp.frame.ignored", "",
                 {{"method", amqp_method_name(method.id)}, {"broker", where}});
      return;
  }
}

void Connection::State::wait_for_confirm(ConfirmWait& wait, const std::string& doing) {
  const auto deadline = Clock::now() + confirm_timeout;
  while (!wait.done()) {
    const auto remaining = deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) {
      fail(doing, "no publisher confirm within " + std::to_string(confirm_timeout.count()) +
                      " s; the message may or may not have been taken");
    }
    amqp_maybe_release_buffers(conn());
    timeval tv = to_timeval(std::chrono::duration_cast<std::chrono::microseconds>(remaining));
    amqp_frame_t frame{};
    const int status = amqp_simple_wait_frame_noblock(conn(), &frame, &tv);
    if (status == AMQP_STATUS_TIMEOUT) continue;
    if (status != AMQP_STATUS_OK) fail(doing, lost(status));
    handle_frame(frame, doing, &wait);
  }
}

}  // namespace program_executor::amqp
