// The names step outcomes are logged under: operators and dashboards match
// them byte for byte, so each is pinned here.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "program_executor/executor/step_outcome.hpp"

using program_executor::executor::StepEvent;

TEST_CASE("every step event keeps its logged name") {
  const std::vector<std::pair<StepEvent, std::string>> names = {
      {StepEvent::job_finished, "job.finished"},
      {StepEvent::program_finished, "program.finished"},
      {StepEvent::program_errored, "program.errored"},
      {StepEvent::program_cancelled, "program.cancelled"},
      {StepEvent::job_retry, "job.retry"},
      {StepEvent::job_yield, "job.yield"},
      {StepEvent::job_crashed, "job.crashed"},
      {StepEvent::step_cancelled, "step.cancelled"},
      {StepEvent::step_superseded, "step.superseded"},
      {StepEvent::step_duplicate, "step.duplicate"},
      {StepEvent::step_busy, "step.busy"},
      {StepEvent::step_early, "step.early"},
      {StepEvent::step_handed_back, "step.handed_back"},
      {StepEvent::step_infrastructure_error, "step.infrastructure_error"},
      {StepEvent::step_publish_failed, "step.publish_failed"},
      {StepEvent::step_not_run, "step.not_run"},
      {StepEvent::step_runner_error, "step.runner_error"},
      {StepEvent::message_parked, "message.parked"},
      {StepEvent::message_park_failed, "message.park_failed"},
  };
  std::set<std::string> distinct;
  for (const auto& [event, name] : names) {
    CHECK(std::string(to_string(event)) == name);
    distinct.insert(name);
  }
  CHECK(distinct.size() == names.size());
  // The last enumerator is listed: a new event needs its line above.
  CHECK(names.back().first == StepEvent::message_park_failed);
}
