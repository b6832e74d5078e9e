// Publishing a step message: the one place that decides the properties every
// step message carries (persistent on a durable queue, stamped with the time
// it was sent), for the worker, the creator, the sweeper and the CLI alike.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "program_executor/amqp/message_publisher.hpp"

namespace program_executor::executor {

/// The properties of a step message sent now.
amqp::PublishProperties step_properties(bool persistent);

/// Publishes the message that runs `jobs` from `step` on (0-based) for the
/// program `run_id`: its body names the remaining jobs, current first, in
/// program-executor-js's wire format. `step` must be within `jobs`. Throws
/// what the publisher throws.
void publish_step(amqp::MessagePublisher& publisher, const std::string& queue, bool persistent,
                  const std::string& run_id, const std::vector<std::string>& jobs, int step,
                  const nlohmann::json& program_data);

}  // namespace program_executor::executor
