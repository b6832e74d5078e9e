// The step message decoder on arbitrary bytes: what anyone allowed to publish
// to the queue can send. It must throw InvalidMessage or return a message that
// holds the promised shape, and the next step's body must decode to the same
// program one job further on. Anything else (another exception, a crash, a
// sanitizer report, a blown stack) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "program_executor/executor/step_message.hpp"

namespace executor = program_executor::executor;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  executor::MessageLimits limits;
  limits.max_bytes = 64 * 1024;  // the real limit is larger; a smaller one is reached
  limits.max_depth = 16;
  executor::StepMessage message;
  try {
    message = executor::parse_step_message(body, limits);
  } catch (const executor::InvalidMessage&) {
    return 0;
  }
  require(body.size() <= limits.max_bytes);
  require(!message.run_id.empty() && message.run_id.size() <= 255);
  require(!message.jobs.empty());
  require(message.program_data().is_object());
  require(message.body.is_object());

  // What the daemon publishes for the next step decodes again (numbers may
  // print longer than they were written: no size limit for this one).
  if (message.jobs.size() > 1) {
    executor::MessageLimits unlimited;
    unlimited.max_bytes = static_cast<std::size_t>(-1);
    const auto next = executor::parse_step_message(executor::next_step_body(message), unlimited);
    require(next.run_id == message.run_id);
    require(next.jobs.size() == message.jobs.size() - 1);
    for (std::size_t i = 0; i < next.jobs.size(); ++i) require(next.jobs[i] == message.jobs[i + 1]);
    require(next.program_data() == message.program_data());
  }
  return 0;
}
