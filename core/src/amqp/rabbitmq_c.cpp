#include "rabbitmq_c.hpp"

#include <amqp_framing.h>

namespace program_executor::amqp {

timeval to_timeval(std::chrono::microseconds duration) {
  if (duration.count() < 0) duration = std::chrono::microseconds{0};
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(duration.count() % 1000000);
  return tv;
}

amqp_bytes_t bytes_of(std::string_view text) {
  // rabbitmq-c takes non-const pointers but only reads through them here.
  return amqp_bytes_t{text.size(), const_cast<char*>(text.data())};
}

std::string string_of(amqp_bytes_t bytes) {
  if (bytes.len == 0 || bytes.bytes == nullptr) return {};
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

std::string close_reason(std::uint16_t code, amqp_bytes_t text) {
  return std::to_string(code) + " " + string_of(text);
}

std::string status_text(int status) { return amqp_error_string2(status); }

std::string reply_text(const amqp_rpc_reply_t& reply) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply received";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return status_text(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* close = static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
        return "the broker closed the connection: " +
               close_reason(close->reply_code, close->reply_text);
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
        return "the broker closed the channel: " +
               close_reason(close->reply_code, close->reply_text);
      }
      return std::string("unexpected reply ") + amqp_method_name(reply.reply.id);
  }
  return "unknown reply type";
}

PublishProperties properties_of(const amqp_basic_properties_t& props) {
  PublishProperties out;
  out.persistent = (props._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) != 0 &&
                   props.delivery_mode == AMQP_DELIVERY_PERSISTENT;
  if ((props._flags & AMQP_BASIC_TIMESTAMP_FLAG) != 0) {
    out.timestamp = static_cast<std::int64_t>(props.timestamp);
  }
  if ((props._flags & AMQP_BASIC_HEADERS_FLAG) != 0) {
    for (int i = 0; i < props.headers.num_entries; ++i) {
      const amqp_table_entry_t& entry = props.headers.entries[i];
      if (entry.value.kind == AMQP_FIELD_KIND_UTF8 || entry.value.kind == AMQP_FIELD_KIND_BYTES) {
        out.headers.emplace_back(string_of(entry.key), string_of(entry.value.value.bytes));
      }
    }
  }
  return out;
}

}  // namespace program_executor::amqp
