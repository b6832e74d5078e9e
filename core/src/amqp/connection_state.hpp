// The frame and confirm state machine of one Connection: its channel, what
// the broker sends between replies (deliveries, confirms, returns, closes,
// cancels) and how each failure leaves the connection.
#pragma once

#include <amqp.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>

#include "program_executor/amqp/connection.hpp"
#include "rabbitmq_c.hpp"

namespace program_executor::amqp {

// What publishes are waiting for: the confirms of their delivery tags.
struct ConfirmWait {
  std::set<std::uint64_t> outstanding;  // published, not yet confirmed
  bool nacked = false;
  std::optional<std::string> returned;  // reply code and text of a basic.return

  // multiple=1 confirms every tag up to and including `tag` (0: all outstanding).
  void confirm(std::uint64_t tag, bool multiple, bool negative);
  bool done() const { return outstanding.empty(); }
};

struct Connection::State {
  ConnectionSettings settings;
  std::string where;  // settings.describe(): the broker, never the password
  ConnectionHandle connection;
  amqp_channel_t channel = 1;
  bool broken = false;
  bool confirms_selected = false;
  std::uint64_t next_publish_tag = 1;
  std::optional<int> prefetch;
  std::optional<std::string> consumer_tag;
  std::string consumed_queue;
  std::deque<Delivery> pending;  // deliveries read while waiting for a confirm

  amqp_connection_state_t conn() const { return connection.get(); }

  [[noreturn]] void fail(const std::string& doing, const std::string& cause, bool breaks = true);
  void check_status(int status, const std::string& doing);

  // The cause of a failure while waiting for frames, with the likely reason
  // when the connection itself went away.
  std::string lost(int status) const;

  void require_usable(const std::string& doing);

  // Answers a close from the broker as the protocol asks, so it can free its side.
  void answer_channel_close(amqp_channel_t closed);
  void answer_connection_close();

  // Checks the reply of a synchronous method. A closed channel or connection is
  // acknowledged and leaves the connection broken.
  void check_reply(const amqp_rpc_reply_t& reply, const std::string& doing);

  void open_channel();

  // For a reply saying the broker closed the channel (as a passive or
  // mismatched queue.declare does): answers the close, opens a fresh channel
  // under a new number (so no late frame of the old one is mistaken for it)
  // and returns the close's code and reason. nullopt for any other reply.
  struct ChannelClose {
    std::uint16_t code = 0;
    std::string reason;
  };
  std::optional<ChannelClose> reopen_after_channel_close(const amqp_rpc_reply_t& reply);
  void apply_prefetch(int count);

  // Reads the header and body following a basic.deliver or basic.return.
  void read_content(amqp_channel_t on, amqp_message_t& message, const std::string& doing);

  // Handles a frame that is not the reply to a synchronous method: deliveries
  // (buffered), confirms, returns, and closes or cancels by the broker.
  void handle_frame(const amqp_frame_t& frame, const std::string& doing, ConfirmWait* wait);

  void wait_for_confirm(ConfirmWait& wait, const std::string& doing);
};

}  // namespace program_executor::amqp
