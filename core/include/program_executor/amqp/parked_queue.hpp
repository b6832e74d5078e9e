// The operator's view of `<queue>-parked`: messages the daemon could never run
// (not JSON, the wrong shape, an unknown run id), parked with the reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/amqp/queue_topology.hpp"

namespace program_executor::amqp {

/// One parked message, as an operator needs to judge it.
struct ParkedMessage {
  std::string body;
  std::string reason;                 ///< the x-parked-reason header ("" if the message has none)
  std::string from;                   ///< the x-parked-from header: the queue it was consumed from
  std::optional<std::string> run_id;  ///< the body's runId, when it is JSON with one
  PublishProperties properties;       ///< as parked: persistence, timestamp, headers
};

/// Which parked messages an operation takes.
struct ParkedSelection {
  std::optional<std::string> run_id;  ///< only the messages of this run id; none: every one
  std::size_t limit = std::numeric_limits<std::size_t>::max();  ///< at most this many
};

/// What list() saw.
struct ParkedListing {
  std::vector<ParkedMessage> messages;  ///< oldest first
  std::uint32_t not_shown = 0;          ///< messages left in the queue beyond the limit
};

/// Lists, requeues and drops parked messages through basic.get, one message
/// at a time, on a connection of its own (`Connection` belongs to one thread).
/// Messages passed over (another run id, past the limit) stay unacknowledged
/// until the operation ends and are then returned to the parked queue, so no
/// message is taken twice by one operation or lost if the tool dies: the
/// broker requeues whatever an aborted connection held.
class ParkedQueue {
 public:
  ParkedQueue(Connection& connection, QueueTopology topology);

  /// Up to `limit` messages, leaving every one in the queue.
  ParkedListing list(std::size_t limit);

  /// Moves the selected messages back to the main queue to be run again
  /// (e.g. after the program they name was created, or a plugin installed):
  /// each is published with a broker confirm, without the x-parked-* headers,
  /// and only then acknowledged, so a failure in between leaves a copy in
  /// both queues, never in none (the step protocol drops the duplicate).
  std::vector<ParkedMessage> requeue(const ParkedSelection& selection);

  /// Deletes the selected messages (acknowledged, gone).
  std::vector<ParkedMessage> drop(const ParkedSelection& selection);

 private:
  enum class Action { keep, requeue, drop };
  std::vector<ParkedMessage> take(const ParkedSelection& selection, Action action,
                                  std::uint32_t* not_shown);

  Connection& connection_;
  QueueTopology topology_;
};

/// A parked message's parts from a delivery of the parked queue.
ParkedMessage parked_message_of(const Delivery& delivery);

}  // namespace program_executor::amqp
