#include "program_executor/amqp/parked_queue.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace program_executor::amqp {
namespace {

constexpr const char* reason_header = "x-parked-reason";
constexpr const char* from_header = "x-parked-from";

bool parking_header(const std::pair<std::string, std::string>& header) {
  return header.first == reason_header || header.first == from_header;
}

}  // namespace

ParkedMessage parked_message_of(const Delivery& delivery) {
  ParkedMessage message;
  message.body = delivery.body;
  message.properties = delivery.properties;
  for (const auto& [key, value] : delivery.properties.headers) {
    if (key == reason_header) message.reason = value;
    if (key == from_header) message.from = value;
  }
  // Parked bodies are by definition suspect: never throw on them.
  const nlohmann::json body = nlohmann::json::parse(delivery.body, nullptr, false);
  if (body.is_object() && body.contains("runId") && body["runId"].is_string()) {
    message.run_id = body["runId"].get<std::string>();
  }
  return message;
}

ParkedQueue::ParkedQueue(Connection& connection, QueueTopology topology)
    : connection_(connection), topology_(std::move(topology)) {}

ParkedListing ParkedQueue::list(std::size_t limit) {
  ParkedListing listing;
  ParkedSelection every;
  every.limit = limit;
  listing.messages = take(every, Action::keep, &listing.not_shown);
  return listing;
}

std::vector<ParkedMessage> ParkedQueue::requeue(const ParkedSelection& selection) {
  return take(selection, Action::requeue, nullptr);
}

std::vector<ParkedMessage> ParkedQueue::drop(const ParkedSelection& selection) {
  return take(selection, Action::drop, nullptr);
}

std::vector<ParkedMessage> ParkedQueue::take(const ParkedSelection& selection, Action action,
                                             std::uint32_t* not_shown) {
  std::vector<ParkedMessage> taken;
  std::vector<std::uint64_t> held;  // got, not acknowledged: returned at the end
  if (not_shown != nullptr) *not_shown = 0;
  while (taken.size() < selection.limit) {
    std::optional<Delivery> delivery = connection_.get(topology_.parked_queue());
    if (!delivery) break;
    ParkedMessage message = parked_message_of(*delivery);
    if (selection.run_id && message.run_id != selection.run_id) {
      held.push_back(delivery->delivery_tag);
      continue;
    }
    if (action == Action::keep) {
      held.push_back(delivery->delivery_tag);
    } else {
      if (action == Action::requeue) {
        PublishProperties properties = message.properties;
        properties.headers.erase(
            std::remove_if(properties.headers.begin(), properties.headers.end(), parking_header),
            properties.headers.end());
        connection_.publish(topology_.main_queue(), message.body, properties);
      }
      connection_.ack(delivery->delivery_tag);
    }
    if (not_shown != nullptr) *not_shown = delivery->messages_left;
    taken.push_back(std::move(message));
  }
  // Back to the parked queue, in their order, for the next operator.
  for (const std::uint64_t tag : held) connection_.requeue(tag);
  return taken;
}

}  // namespace program_executor::amqp
