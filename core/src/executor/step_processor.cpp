#include "program_executor/executor/step_processor.hpp"

#include <chrono>
#include <thread>

#include "program_executor/executor/job_data_handler.hpp"
#include "program_executor/executor/step_job_context.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/sdk/errors.hpp"

namespace program_executor::executor {
namespace {

using log::Level;

// Logs the outcome of a step and returns it.
StepOutcome outcome(Disposition disposition, const char* event, Level level,
                    const StepMessage& message, int step, std::string_view text = {}) {
  log::event(level, event, text,
             {{"run_id", message.run_id}, {"job", message.current_job()}, {"step", step}});
  return StepOutcome{disposition, event};
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

}  // namespace

StepProcessor::StepProcessor(store::ProgramStore& store, const JobLibrary& jobs,
                             amqp::MessagePublisher& publisher, ProcessorSettings settings,
                             const std::atomic<bool>& stop_requested,
                             metrics::Metrics& metrics)
    : store_(store),
      jobs_(jobs),
      publisher_(publisher),
      settings_(std::move(settings)),
      stop_requested_(stop_requested),
      metrics_(metrics),
      creator_(store, publisher, settings_.queue, settings_.persistent, metrics) {}

StepOutcome StepProcessor::process(std::string_view body) {
  metrics_.step_started();
  StepOutcome result = process_counted(body);
  metrics_.step_ended();
  if (result.disposition == Disposition::retry) metrics_.step_retried();
  if (result.event == "program.cancelled") metrics_.program_cancelled();
  if (result.event == "step.duplicate") metrics_.message_duplicate();
  if (result.event == "message.parked") metrics_.message_parked();
  return result;
}

StepOutcome StepProcessor::process_counted(std::string_view body) {
  StepMessage message;
  try {
    message = parse_step_message(body, settings_.limits);
  } catch (const InvalidMessage& e) {
    return park(body, e.what());
  }
  try {
    std::optional<store::ProgramRow> row = store_.find(message.run_id);
    if (!row) return park(body, "no program with run id " + message.run_id);
    // The step a message stands for follows from how many jobs it has left,
    // so messages in the original's shape need no extra field.
    const int step = static_cast<int>(row->jobs.size()) - static_cast<int>(message.jobs.size());
    if (step < 0) {
      return park(body, "message has " + std::to_string(message.jobs.size()) +
                            " jobs left but program " + message.run_id + " has only " +
                            std::to_string(row->jobs.size()));
    }
    // The previous step publishes this message just before it commits its own
    // update, so a fast consumer can see the row one step behind: wait for it.
    const auto give_up = std::chrono::steady_clock::now() + settings_.early_step_wait;
    while (step > row->step && !row->ended() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      row = store_.find(message.run_id);
      if (!row) return park(body, "no program with run id " + message.run_id);
    }
    if (row->errored_at) {
      // How an operator stops a program by hand: the next step is dropped.
      return outcome(Disposition::ack, "program.cancelled", Level::info, message, row->step,
                     row->error_message.value_or(""));
    }
    if (step > row->step && !row->finished_at) {
      return outcome(Disposition::retry, "step.early", Level::warn, message, step,
                     "the program is still at step " + std::to_string(row->step) +
                         "; retrying once the previous step has committed");
    }
    if (row->finished_at || step != row->step) {
      return outcome(Disposition::ack, "step.duplicate", Level::warn, message, step,
                     "the program is at step " + std::to_string(row->step) +
                         (row->finished_at ? " and finished" : "") +
                         "; this message is stale or duplicated and is dropped");
    }
    // A snapshot for the whole step: a reload meanwhile affects the next steps.
    const std::shared_ptr<const plugin::JobRegistry> jobs = jobs_.current();
    return run_step(message, *row, *jobs);
  } catch (const std::exception& e) {
    // Database or broker trouble: the job's own failures never get here. Try
    // the step again after the retry delay instead of losing it.
    log::event(Level::error, "step.infrastructure_error", e.what(), {{"run_id", message.run_id}});
    return StepOutcome{Disposition::retry, "step.infrastructure_error"};
  }
}

StepOutcome StepProcessor::park(std::string_view body, const std::string& reason) {
  try {
    amqp::PublishProperties properties;
    properties.persistent = true;
    properties.headers.emplace_back("x-parked-reason", reason);
    properties.headers.emplace_back("x-parked-from", settings_.queue);
    publisher_.publish(settings_.parked_queue, body, properties);
  } catch (const std::exception& e) {
    log::event(Level::error, "message.park_failed", e.what(), {{"reason", reason}});
    return StepOutcome{Disposition::retry, "message.park_failed"};
  }
  log::event(Level::error, "message.parked", reason,
             {{"queue", settings_.parked_queue},
              {"body", body.substr(0, 512)},
              {"bytes", static_cast<long long>(body.size())}});
  return StepOutcome{Disposition::ack, "message.parked"};
}

StepOutcome StepProcessor::run_step(const StepMessage& message, const store::ProgramRow& row,
                                    const plugin::JobRegistry& jobs) {
  const std::string& job_name = message.current_job();
  const int step = row.step;
  const auto started = std::chrono::steady_clock::now();

  std::shared_ptr<sdk::Job> job;
  std::optional<std::string> failure;  // set when the job failed permanently

  if (!jobs.contains(job_name)) {
    metrics_.job_executed(job_name, metrics::JobOutcome::skipped, 0.0);
    outcome(Disposition::ack, "job.skipped", Level::warn, message, step,
            "no job with this name is loaded; the step counts as done");
  } else {
    log::event(Level::info, "job.started", "",
               {{"run_id", message.run_id}, {"job", job_name}, {"step", step},
                {"attempt", row.step_retry_count + 1}});
    StoreJobDataHandler job_data(store_, message.run_id, job_name, started);
    StepJobContext context(creator_, message.run_id, job_name, step, row.step_retry_count + 1,
                           stop_requested_);
    try {
      job = jobs.create(job_name, message.program_data());
      job->execute(message.body, job_data, context);
    } catch (const sdk::ExecutionTimeExceeded&) {
      // A cooperative yield: neither counted nor recorded, resumed later.
      metrics_.job_executed(job_name, metrics::JobOutcome::yield, elapsed_ms(started) / 1000);
      log::event(Level::info, "job.yield", "execution time exceeded; resuming later",
                 {{"run_id", message.run_id}, {"job", job_name}, {"step", step},
                  {"duration_ms", elapsed_ms(started)}});
      return StepOutcome{Disposition::retry, "job.yield"};
    } catch (const sdk::RetryableError& e) {
      metrics_.job_executed(job_name, metrics::JobOutcome::retry, elapsed_ms(started) / 1000);
      store_.record_retry(message.run_id, step, e.what());
      log::event(Level::warn, "job.retry", e.what(),
                 {{"run_id", message.run_id}, {"job", job_name}, {"step", step},
                  {"retry_count", row.step_retry_count + 1}, {"duration_ms", elapsed_ms(started)}});
      return StepOutcome{Disposition::retry, "job.retry"};
    } catch (const sdk::IgnorableError& e) {
      // Ends the program like any failure, but it is expected: info, not error.
      metrics_.job_executed(job_name, metrics::JobOutcome::ignorable, elapsed_ms(started) / 1000);
      store_.fail(message.run_id, step, e.what());
      metrics_.program_errored();
      return outcome(Disposition::ack, "program.errored", Level::info, message, step,
                     std::string("ignorable: ") + e.what());
    } catch (const store::StoreError&) {
      throw;  // the bookkeeping failed, not the job: retried by process()
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception (not derived from std::exception)";
    }
    if (failure) {
      metrics_.job_executed(job_name, metrics::JobOutcome::failed, elapsed_ms(started) / 1000);
      store_.fail(message.run_id, step, *failure);
      metrics_.program_errored();
      log::event(Level::error, "program.errored", *failure,
                 {{"run_id", message.run_id}, {"job", job_name}, {"step", step},
                  {"duration_ms", elapsed_ms(started)}, {"body", message.body.dump()}});
      return StepOutcome{Disposition::ack, "program.errored"};
    }
    metrics_.job_executed(job_name, metrics::JobOutcome::success, elapsed_ms(started) / 1000);
    log::event(Level::info, "job.finished", "",
               {{"run_id", message.run_id}, {"job", job_name}, {"step", step},
                {"duration_ms", elapsed_ms(started)}});
  }

  if (message.jobs.size() > 1) {
    // As the original: publish the next step (confirmed) before moving the
    // row. A crash in between re-runs this step; the step check in process()
    // then drops the second copy of the next step instead of forking.
    amqp::PublishProperties properties;
    properties.persistent = settings_.persistent;
    properties.timestamp = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    publisher_.publish(settings_.queue, next_step_body(message), properties);
    if (!store_.advance(message.run_id, step)) {
      return outcome(Disposition::ack, "step.superseded", Level::warn, message, step,
                     "the program was cancelled or moved on while this step ran");
    }
    return StepOutcome{Disposition::ack, "job.finished"};
  }
  if (!store_.finish(message.run_id, step)) {
    return outcome(Disposition::ack, "step.superseded", Level::warn, message, step,
                   "the program was cancelled or moved on while this step ran");
  }
  metrics_.program_finished();
  log::event(Level::info, "program.finished", "",
             {{"run_id", message.run_id}, {"steps", static_cast<long long>(row.jobs.size())}});
  return StepOutcome{Disposition::ack, "program.finished"};
}

}  // namespace program_executor::executor
