// What became of one step message: what the consumer does with the delivery,
// and the event that says why (the name operators grep for in the logs).
#pragma once

#include <string_view>

namespace program_executor::executor {

/// What the consumer does with the delivery once the step is processed.
enum class Disposition {
  ack,      ///< done with it (success, permanent failure, cancelled, duplicate, parked)
  retry,    ///< nack without requeue: the broker dead-letters it to the retry queue
  requeue,  ///< not run: back to the queue for another worker (reject with requeue)
};

/// How the processing of a step message ended. Each is logged under its
/// to_string() name, a stable name that tests, dashboards and operators
/// match byte for byte: rename none.
enum class StepEvent {
  job_finished,               ///< committed; the next step is published
  program_finished,           ///< committed the last step
  program_errored,            ///< the program ended in error at this step
  program_cancelled,          ///< the program was stopped (errored) before this step
  job_retry,                  ///< the job failed retryably; the step comes back after a delay
  job_yield,                  ///< the job yielded; the step comes back later
  job_crashed,                ///< the job crashed its isolated process; retried alone
  step_cancelled,             ///< the program was cancelled while the job ran
  step_superseded,            ///< the row moved on while the job ran; the outcome is dropped
  step_duplicate,             ///< a stale or duplicated message
  step_busy,                  ///< a copy of a step another worker holds
  step_early,                 ///< one step ahead of its row; retried
  step_handed_back,           ///< queued behind a slow job: back to the queue for idle workers
  step_infrastructure_error,  ///< the database or the broker failed; retried
  step_publish_failed,        ///< committed, but the next step could not be published
  step_not_run,               ///< ended its batch without an outcome (a bug); retried
  step_runner_error,          ///< the job runner got no outcome for it (a bug); retried
  message_parked,             ///< can never run: moved to the parked queue
  message_park_failed,        ///< should be parked, but that failed; retried
};

/// The event's stable dotted name, as logged ("job.finished").
std::string_view to_string(StepEvent event);

struct StepOutcome {
  Disposition disposition;
  StepEvent event;  ///< the log event that describes the outcome, for tests and metrics
};

}  // namespace program_executor::executor
