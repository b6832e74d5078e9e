#include "program_executor/executor/step_outcome.hpp"

namespace program_executor::executor {

std::string_view to_string(StepEvent event) {
  switch (event) {
    case StepEvent::job_finished:
      return "job.finished";
    case StepEvent::program_finished:
      return "program.finished";
    case StepEvent::program_errored:
      return "program.errored";
    case StepEvent::program_cancelled:
      return "program.cancelled";
    case StepEvent::job_retry:
      return "job.retry";
    case StepEvent::job_yield:
      return "job.yield";
    case StepEvent::job_crashed:
      return "job.crashed";
    case StepEvent::step_cancelled:
      return "step.cancelled";
    case StepEvent::step_superseded:
      return "step.superseded";
    case StepEvent::step_duplicate:
      return "step.duplicate";
    case StepEvent::step_busy:
      return "step.busy";
    case StepEvent::step_early:
      return "step.early";
    case StepEvent::step_handed_back:
      return "step.handed_back";
    case StepEvent::step_infrastructure_error:
      return "step.infrastructure_error";
    case StepEvent::step_publish_failed:
      return "step.publish_failed";
    case StepEvent::step_not_run:
      return "step.not_run";
    case StepEvent::step_runner_error:
      return "step.runner_error";
    case StepEvent::message_parked:
      return "message.parked";
    case StepEvent::message_park_failed:
      return "message.park_failed";
  }
  return "step.unknown_event";  // not reached: every enumerator is named above
}

}  // namespace program_executor::executor
