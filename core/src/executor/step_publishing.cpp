#include "program_executor/executor/step_publishing.hpp"

#include <stdexcept>

#include "program_executor/executor/clock.hpp"
#include "program_executor/executor/step_message.hpp"

namespace program_executor::executor {

amqp::PublishProperties step_properties(bool persistent) {
  amqp::PublishProperties properties;
  properties.persistent = persistent;
  properties.timestamp = epoch_ms();
  return properties;
}

void publish_step(amqp::MessagePublisher& publisher, const std::string& queue, bool persistent,
                  const std::string& run_id, const std::vector<std::string>& jobs, int step,
                  const nlohmann::json& program_data) {
  if (step < 0 || step >= static_cast<int>(jobs.size())) {
    throw std::out_of_range("step " + std::to_string(step) + " of a program of " +
                            std::to_string(jobs.size()) + " jobs");
  }
  const std::vector<std::string> remaining(jobs.begin() + step, jobs.end());
  publisher.publish(queue, first_step_body(run_id, remaining, program_data),
                    step_properties(persistent));
}

}  // namespace program_executor::executor
