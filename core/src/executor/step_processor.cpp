#include "program_executor/executor/step_processor.hpp"

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "program_executor/executor/crash_point.hpp"
#include "program_executor/executor/job_data_handler.hpp"
#include "program_executor/executor/job_execution.hpp"
#include "program_executor/executor/step_job_context.hpp"
#include "program_executor/executor/step_publishing.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::executor {
namespace {

using log::Level;

// Logs an event of a step under its run id, job and step.
void log_step(Level level, std::string_view event, const StepMessage& message, int step,
              std::string_view text = {}) {
  log::event(level, event, text,
             {{"run_id", message.run_id}, {"job", message.current_job()}, {"step", step}});
}

// Logs the outcome of a step and returns it.
StepOutcome outcome(Disposition disposition, StepEvent event, Level level,
                    const StepMessage& message, int step, std::string_view text = {}) {
  log_step(level, to_string(event), message, step, text);
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
                             metrics::Metrics& metrics, StepIsolation* isolation)
    : store_(store),
      jobs_(jobs),
      publisher_(publisher),
      settings_(std::move(settings)),
      stop_requested_(stop_requested),
      metrics_(metrics),
      isolation_(isolation),
      creator_(store, publisher, settings_.queue, settings_.persistent, metrics,
               settings_.stale_after) {}

StepOutcome StepProcessor::process(std::string_view body) {
  return process_all({std::string(body)}).front();
}

std::vector<StepOutcome> StepProcessor::process_all(const std::vector<std::string>& bodies) {
  StepBatch batch(bodies);
  for (BatchStep* step : batch.at(StepStage::received)) {
    metrics_.step_started();
    try {
      step->message = parse_step_message(step->body, settings_.limits);
      step->stage = StepStage::parsed;
    } catch (const InvalidMessage& e) {
      step->decide(park(step->body, e.what()));
    }
  }
  batch.classify([this](const std::string& job) { return slow(job); });
  claim_unread(batch);
  read_rows(batch);
  for (BatchStep* step : batch.at(StepStage::read)) {
    if (std::optional<StepOutcome> refused = examine(*step)) {
      step->decide(std::move(*refused));
    } else {
      step->stage = StepStage::claimable;
    }
  }
  batch.hand_back_slow();
  claim_steps(batch);
  // Fast steps commit (and their next steps go out) before a slow job starts.
  run_steps(batch, false);
  commit_steps(batch);
  run_steps(batch, true);
  commit_steps(batch);
  release_unrun(batch);
  drop_holds();

  std::vector<StepOutcome> outcomes = batch.outcomes();
  for (const StepOutcome& outcome : outcomes) count(outcome);
  return outcomes;
}

void StepProcessor::count(const StepOutcome& outcome) {
  metrics_.step_ended();
  if (outcome.disposition == Disposition::retry) metrics_.step_retried();
  switch (outcome.event) {
    case StepEvent::program_cancelled:
      // A cancel that hits a running step is counted where it is seen (superseded()).
      metrics_.program_cancelled();
      break;
    case StepEvent::step_duplicate:
    case StepEvent::step_busy:
      metrics_.message_duplicate();
      break;
    case StepEvent::message_parked:
      metrics_.message_parked();
      break;
    default:
      break;  // counted by the disposition alone
  }
}

bool StepProcessor::slow(const std::string& job) const {
  const auto it = job_ms_.find(job);
  return settings_.fairness.slow_job(it == job_ms_.end() ? std::nullopt
                                                         : std::optional<double>(it->second));
}

void StepProcessor::run_steps(StepBatch& batch, bool slow_ones) {
  for (BatchStep* step : batch.runnable(slow_ones)) {
    const std::string& job = step->message.current_job();
    const auto started = std::chrono::steady_clock::now();
    try {
      if (std::optional<StepOutcome> ended =
              run_claimed(step->message, *step->row, *step->claim, step->attempt)) {
        step->decide(std::move(*ended));
      } else {
        step->stage = StepStage::ran;
      }
    } catch (const std::exception& e) {
      step->decide(infrastructure_error(*step, e.what()));
    }
    const double ms = elapsed_ms(started);
    auto [it, first] = job_ms_.emplace(job, ms);
    if (!first) it->second = 0.8 * it->second + 0.2 * ms;
  }
}

void StepProcessor::release_unrun(StepBatch& batch) {
  // Every claimed step has an outcome by now (each ran in exactly one of the
  // two passes). Should one not, its message must not go back to the broker
  // with the claim held: the copy would find the step "busy" and be dropped,
  // and the program would wait for the sweeper.
  for (const StepStage unfinished : {StepStage::claimed, StepStage::ran}) {
    for (BatchStep* step : batch.at(unfinished)) {
      step->decide(infrastructure_error(*step, "step " + std::to_string(step->step) +
                                                   " was claimed but neither run nor committed"));
    }
  }
}

void StepProcessor::hold(const std::string& run_id, int step, std::int64_t token) {
  std::lock_guard lock(claim_mutex_);
  claims_.push_back(Claim{run_id, step, token, std::chrono::steady_clock::now()});
}

void StepProcessor::unhold(const std::string& run_id) {
  std::lock_guard lock(claim_mutex_);
  std::erase_if(claims_, [&](const Claim& claim) { return claim.run_id == run_id; });
}

void StepProcessor::explain_lost_claim(const Claim& claim) {
  const std::optional<store::ProgramRow> row = store_.find(claim.run_id);
  if (row && row->cancelled_at) {
    // The job runs on; its changes are refused and its outcome not committed.
    log::event(Level::info, "step.cancelled_while_running",
               "the program was cancelled; the running job's outcome will not be written",
               {{"run_id", claim.run_id}, {"step", claim.step}});
  } else if (row && row->lease_token != claim.token) {
    // Our lease ran out (e.g. while the database was unreachable) and another
    // worker took the step: whatever this execution does, it cannot commit.
    log::event(Level::warn, "step.claim_lost", "another worker holds this step now",
               {{"run_id", claim.run_id}, {"step", claim.step}});
  } else if (row && !row->ended() && row->step != claim.step) {
    log::event(Level::warn, "step.moved_while_running",
               "the program moved on while this step ran (a worker that takes no claim, such as "
               "program-executor-js's, ran it too)",
               {{"run_id", claim.run_id}, {"step", claim.step}});
  }
  // Otherwise the step ended meanwhile (finished, errored, released): nothing was lost.
}

void StepProcessor::drop_holds() {
  std::lock_guard lock(claim_mutex_);
  claims_.clear();
}

void StepProcessor::renew_claim_if_due() {
  std::vector<Claim> due;
  {
    std::lock_guard lock(claim_mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (Claim& claim : claims_) {
      if (now - claim.renewed < settings_.lease / 3) continue;
      claim.renewed = now;
      due.push_back(claim);
    }
  }
  for (const Claim& claim : due) {
    try {
      if (!store_.renew(claim.run_id, claim.step, claim.token, settings_.lease)) {
        unhold(claim.run_id);
        explain_lost_claim(claim);
      }
    } catch (const std::exception& e) {
      log::event(Level::warn, "step.claim_renew_failed", e.what(),
                 {{"run_id", claim.run_id}, {"step", claim.step}});
    }
  }
}

void StepProcessor::claim_unread(StepBatch& batch) {
  // Every step is claimed on its message's word but those of slow jobs in a
  // batch of several (StepBatch::claimable_unread); only the steps not claimed
  // so are read and examined.
  const std::vector<BatchStep*> claiming = batch.claimable_unread();
  if (claiming.empty()) return;
  std::vector<store::UnreadClaim> requests;
  for (const BatchStep* step : claiming) {
    requests.push_back(
        store::UnreadClaim{step->message.run_id, static_cast<int>(step->message.jobs.size())});
  }
  std::vector<std::optional<store::ClaimedRow>> claimed;
  try {
    claimed = store_.claim_unread(requests, settings_.owner, settings_.lease);
  } catch (const std::exception& e) {
    for (BatchStep* step : claiming) step->decide(infrastructure_error(*step, e.what()));
    return;
  }
  bool any = false;
  for (std::size_t i = 0; i < claiming.size(); ++i) {
    if (!claimed[i]) continue;
    BatchStep& step = *claiming[i];
    step.row = std::move(claimed[i]->row);
    step.step = step.row->step;
    step.claim = claimed[i]->claim;
    step.stage = StepStage::claimed;
    hold(step.message.run_id, step.step, step.claim->token);
    any = true;
  }
  if (!any) return;
  for (BatchStep* copy : batch.copies_of_claimed(claiming)) copy->decide(busy(*copy));
  PE_CRASH_POINT("after_claim");
}

void StepProcessor::read_rows(StepBatch& batch) {
  const std::vector<BatchStep*> reading = batch.at(StepStage::parsed);
  if (reading.empty()) return;
  std::vector<std::string> run_ids;
  for (const BatchStep* step : reading) run_ids.push_back(step->message.run_id);
  try {
    std::vector<std::optional<store::ProgramRow>> rows = store_.find_all(run_ids);
    for (std::size_t i = 0; i < reading.size(); ++i) {
      reading[i]->row = std::move(rows[i]);
      reading[i]->stage = StepStage::read;
    }
  } catch (const std::exception& e) {
    for (BatchStep* step : reading) step->decide(infrastructure_error(*step, e.what()));
  }
}

std::optional<StepOutcome> StepProcessor::examine(BatchStep& step) {
  const StepMessage& message = step.message;
  try {
    std::optional<store::ProgramRow>& row = step.row;
    if (!row) return park(step.body, "no program with run id " + message.run_id);
    // The step a message stands for follows from how many jobs it has left,
    // so messages in the original's shape need no extra field.
    step.step = static_cast<int>(row->jobs.size()) - static_cast<int>(message.jobs.size());
    if (step.step < 0) {
      return park(step.body, "message has " + std::to_string(message.jobs.size()) +
                                 " jobs left but program " + message.run_id + " has only " +
                                 std::to_string(row->jobs.size()));
    }
    const auto give_up = std::chrono::steady_clock::now() + settings_.early_step_wait;
    while (step.step > row->step && !row->ended() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      row = store_.find(message.run_id);
      if (!row) return park(step.body, "no program with run id " + message.run_id);
    }
    if (row->errored_at) {
      // How an operator stops a program by hand: the next step is dropped.
      return outcome(Disposition::ack, StepEvent::program_cancelled, Level::info, message,
                     row->step, row->error_message.value_or(""));
    }
    if (step.step > row->step && !row->finished_at) {
      return outcome(Disposition::retry, StepEvent::step_early, Level::warn, message, step.step,
                     "the program is still at step " + std::to_string(row->step) +
                         "; retrying once the previous step has committed");
    }
    if (row->finished_at || step.step != row->step) {
      return outcome(Disposition::ack, StepEvent::step_duplicate, Level::warn, message, step.step,
                     "the program is at step " + std::to_string(row->step) +
                         (row->finished_at ? " and finished" : "") +
                         "; this message is stale or duplicated and is dropped");
    }
    return std::nullopt;  // to be claimed
  } catch (const std::exception& e) {
    return infrastructure_error(step, e.what());
  }
}

void StepProcessor::claim_steps(StepBatch& batch) {
  const std::vector<BatchStep*> claiming = batch.at(StepStage::claimable);
  if (claiming.empty()) return;
  std::vector<store::ClaimRequest> requests;
  for (const BatchStep* step : claiming) {
    requests.push_back(store::ClaimRequest{step->message.run_id, step->step});
  }
  std::vector<std::optional<store::StepClaim>> claims;
  try {
    // One transaction, one commit, for every step of the batch.
    claims = store_.claim_all(requests, settings_.owner, settings_.lease);
  } catch (const std::exception& e) {
    for (BatchStep* step : claiming) step->decide(infrastructure_error(*step, e.what()));
    return;
  }
  for (std::size_t i = 0; i < claiming.size(); ++i) {
    BatchStep& step = *claiming[i];
    if (!claims[i]) {
      step.decide(busy(step));
      continue;
    }
    step.claim = claims[i];
    step.stage = StepStage::claimed;
    hold(step.message.run_id, step.step, step.claim->token);
  }
  PE_CRASH_POINT("after_claim");
}

StepOutcome StepProcessor::busy(const BatchStep& step) {
  // Another live worker runs this very step (this message is a copy, e.g.
  // republished by the sweeper). If that worker dies, its claim expires and
  // the sweeper republishes the step: dropping this copy loses nothing.
  return outcome(Disposition::ack, StepEvent::step_busy, Level::warn, step.message, step.step,
                 "another worker holds this step; this copy is dropped");
}

StepOutcome StepProcessor::infrastructure_error(BatchStep& step, const std::string& what) {
  // Database or broker trouble: the job's own failures never get here. Try
  // the step again after the retry delay instead of losing it.
  log::event(Level::error, to_string(StepEvent::step_infrastructure_error), what,
             {{"run_id", step.message.run_id}});
  if (step.claim) {
    try {
      // Tried again after the retry delay: a `retry` attempt (the job may
      // have run: its commit is what failed).
      store::AttemptEnding attempt =
          step.attempt ? *step.attempt
                       : attempt_ending(step.message, *step.row, store::attempt_outcome::retry, 0.0);
      attempt.outcome = store::attempt_outcome::retry;
      attempt.error = what;
      attempt.exception_type = "infrastructure";
      store_.release(step.message.run_id, step.step, step.claim->token,
                     settings_.retry_delay + settings_.stale_after, &attempt);
    } catch (const std::exception&) {
      // The claim expires by itself; the sweeper then recovers the step.
    }
  }
  return StepOutcome{Disposition::retry, StepEvent::step_infrastructure_error};
}

StepOutcome StepProcessor::park(std::string_view body, const std::string& reason) {
  try {
    amqp::PublishProperties properties;
    properties.persistent = true;
    properties.headers.emplace_back("x-parked-reason", reason);
    properties.headers.emplace_back("x-parked-from", settings_.queue);
    publisher_.publish(settings_.parked_queue, body, properties);
  } catch (const std::exception& e) {
    log::event(Level::error, to_string(StepEvent::message_park_failed), e.what(),
               {{"reason", reason}});
    return StepOutcome{Disposition::retry, StepEvent::message_park_failed};
  }
  log::event(Level::error, to_string(StepEvent::message_parked), reason,
             {{"queue", settings_.parked_queue},
              {"body", body.substr(0, 512)},
              {"bytes", static_cast<long long>(body.size())}});
  return StepOutcome{Disposition::ack, StepEvent::message_parked};
}

store::AttemptEnding StepProcessor::attempt_ending(const StepMessage& message,
                                                  const store::ProgramRow& row,
                                                  std::string_view outcome, double ms,
                                                  const std::string& error,
                                                  const std::string& exception_type) const {
  return store::AttemptEnding{message.current_job(),
                              row.step_retry_count + 1,
                              settings_.owner,
                              std::string(outcome),
                              static_cast<long long>(ms + 0.5),
                              error,
                              exception_type};
}

std::optional<StepOutcome> StepProcessor::run_claimed(const StepMessage& message,
                                                      const store::ProgramRow& row,
                                                      const store::StepClaim& claim,
                                                      std::optional<store::AttemptEnding>& committed) {
  const std::string& job_name = message.current_job();
  const int step = row.step;
  const std::int64_t token = claim.token;

  // Only crashes the step caused alone count against it; without isolation
  // (tests, tools) every death of a process holding it does.
  const int crashes = isolation_ ? claim.isolated_crashes : claim.crashes;
  if (crashes >= settings_.max_crashes) {
    // The job kills its worker (segfault, abort, out of memory): stop the loop.
    const std::string why = "job " + job_name + ": the worker running it died " +
                            std::to_string(crashes) + " times" +
                            (isolation_ ? " running alone in an isolated process" : "") +
                            " (crash loop); the program is stopped";
    // Through error_program, as every other ending: a claim taken over
    // meanwhile makes this step.superseded, not a second program.errored.
    return error_program(message, step, token, why,
                         attempt_ending(message, row, store::attempt_outcome::errored, 0.0, why),
                         Level::error, why);
  }

  // A snapshot for the whole step: a reload meanwhile affects the next steps.
  const std::shared_ptr<const plugin::JobRegistry> jobs = jobs_.current();
  if (!jobs->contains(job_name)) {
    metrics_.job_executed(job_name, metrics::JobOutcome::skipped, 0.0);
    log_step(Level::warn, "job.skipped", message, step,
             "no job with this name is loaded; the step counts as done");
    committed = attempt_ending(message, row, store::attempt_outcome::skipped, 0.0);
    return std::nullopt;  // committed with the batch
  }

  // A step that was in a process when it died runs alone until it moves on:
  // if it is what kills processes, only its own isolated process dies.
  const bool isolated = isolation_ != nullptr && claim.crashes > 0;
  const auto started = std::chrono::steady_clock::now();
  log::event(Level::info, "job.started", isolated ? "isolated: it was in a process that died" : "",
             {{"run_id", message.run_id}, {"job", job_name}, {"step", step},
              {"attempt", row.step_retry_count + 1}, {"token", static_cast<long long>(token)},
              {"process", isolated ? "isolated" : "worker"}});
  JobResult result;
  if (isolated) {
    result = isolation_->run(
        IsolatedStep{message.body.dump(), step, row.step_retry_count + 1, token}, stop_requested_);
  } else {
    StoreJobDataHandler job_data(store_, message.run_id, job_name, token, started);
    StepJobContext context(creator_, message.run_id, job_name, step, row.step_retry_count + 1,
                           stop_requested_);
    result = execute_job(*jobs, message, job_data, context);
  }
  const double ms = elapsed_ms(started);
  std::optional<StepOutcome> ended = settle(message, row, claim, result, ms);
  if (!ended) committed = attempt_ending(message, row, store::attempt_outcome::finished, ms);
  return ended;
}

std::optional<StepOutcome> StepProcessor::settle(const StepMessage& message,
                                                 const store::ProgramRow& row,
                                                 const store::StepClaim& claim,
                                                 const JobResult& result, double ms) {
  using Kind = JobResult::Kind;
  const std::string& job_name = message.current_job();
  const int step = row.step;
  const std::int64_t token = claim.token;
  const auto retry_expected = settings_.retry_delay + settings_.stale_after;
  const auto executed = [&](metrics::JobOutcome kind) { metrics_.job_executed(job_name, kind, ms / 1000); };
  // This attempt as it ended, written with the row's change.
  const auto ending = [&](std::string_view outcome, const std::string& error = {}) {
    return attempt_ending(message, row, outcome, ms, error, result.exception_type);
  };
  // The row refused the outcome: say why, and leave no claim behind.
  const auto superseded = [&](const store::AttemptEnding& attempt) {
    return this->superseded(message, step, token, &attempt);
  };
  switch (result.kind) {
    case Kind::succeeded:
      executed(metrics::JobOutcome::success);
      log::event(
          Level::info, to_string(StepEvent::job_finished), "",
          {{"run_id", message.run_id}, {"job", job_name}, {"step", step}, {"duration_ms", ms}});
      return std::nullopt;  // committed with the batch
    case Kind::yielded:
      // A cooperative yield: neither counted nor recorded, resumed later.
      executed(metrics::JobOutcome::yield);
      unhold(message.run_id);
      if (const auto attempt = ending(store::attempt_outcome::yield, result.message);
          !store_.release(message.run_id, step, token, retry_expected, &attempt)) {
        return superseded(attempt);
      }
      log::event(
          Level::info, to_string(StepEvent::job_yield), "execution time exceeded; resuming later",
          {{"run_id", message.run_id}, {"job", job_name}, {"step", step}, {"duration_ms", ms}});
      return StepOutcome{Disposition::retry, StepEvent::job_yield};
    case Kind::retryable: {
      executed(metrics::JobOutcome::retry);
      unhold(message.run_id);
      const RetryPolicy& policy = settings_.retry.for_job(job_name);
      const int attempts = row.step_retry_count + 1;  // this failure included
      if (policy.exhausted(attempts)) {
        const std::string why = "job " + job_name + " failed " + std::to_string(attempts) +
                                " times, its retry limit; last error: " + result.message;
        return error_program(message, step, token, why,
                             ending(store::attempt_outcome::errored, result.message), Level::error,
                             why);
      }
      thread_local std::mt19937_64 random{std::random_device{}()};
      std::uniform_real_distribution<double> draw(0.0, 1.0);
      const auto delay = policy.queue_delay(attempts, draw(random), draw(random));
      const auto attempt = ending(store::attempt_outcome::retry, result.message);
      if (!store_.record_retry(message.run_id, step, token, result.message,
                               delay + settings_.stale_after, &attempt)) {
        return superseded(attempt);
      }
      log::event(Level::warn, to_string(StepEvent::job_retry), result.message,
                 {{"run_id", message.run_id},
                  {"job", job_name},
                  {"step", step},
                  {"retry_count", attempts},
                  {"delay_ms", static_cast<long long>(delay.count())},
                  {"duration_ms", ms}});
      return schedule_retry(message, delay);
    }
    case Kind::ignorable:
      // Ends the program like any failure, but it is expected: info, not error.
      executed(metrics::JobOutcome::ignorable);
      unhold(message.run_id);
      return error_program(message, step, token, result.message,
                           ending(store::attempt_outcome::ignored, result.message), Level::info,
                           "ignorable: " + result.message);
    case Kind::failed:
      executed(metrics::JobOutcome::failed);
      unhold(message.run_id);
      return error_program(message, step, token, result.message,
                           ending(store::attempt_outcome::errored, result.message), [&] {
        log::event(Level::error, to_string(StepEvent::program_errored), result.message,
                   {{"run_id", message.run_id},
                    {"job", job_name},
                    {"step", step},
                    {"duration_ms", ms},
                    {"body", message.body.dump()}});
      });
    case Kind::cancelled:
      executed(metrics::JobOutcome::failed);
      unhold(message.run_id);
      return superseded(ending(store::attempt_outcome::cancelled, result.message));
    case Kind::infrastructure:
      throw store::StoreError(result.message);  // the bookkeeping failed, not the job: retried
    case Kind::crashed: {
      executed(metrics::JobOutcome::failed);
      unhold(message.run_id);
      const int crashes = claim.isolated_crashes + 1;
      const std::string why = "job " + job_name + ": " + result.message + " (crash " +
                              std::to_string(crashes) + " of " +
                              std::to_string(settings_.max_crashes) + " running alone)";
      const auto attempt = ending(store::attempt_outcome::crashed, why);
      if (crashes >= settings_.max_crashes) {
        const std::string stopped = why + "; the program is stopped";
        return error_program(message, step, token, stopped, attempt, Level::error, stopped);
      }
      if (!store_.record_isolated_crash(message.run_id, step, token, why, retry_expected,
                                        &attempt)) {
        return superseded(attempt);
      }
      return outcome(Disposition::retry, StepEvent::job_crashed, Level::error, message, step, why);
    }
  }
  throw std::logic_error("unhandled job result");
}

StepOutcome StepProcessor::error_program(const StepMessage& message, int step, std::int64_t token,
                                         const std::string& why,
                                         const store::AttemptEnding& attempt,
                                         const std::function<void()>& report) {
  if (!store_.fail(message.run_id, step, token, why, &attempt)) {
    return superseded(message, step, token, &attempt);
  }
  metrics_.program_errored();
  report();
  return StepOutcome{Disposition::ack, StepEvent::program_errored};
}

StepOutcome StepProcessor::error_program(const StepMessage& message, int step, std::int64_t token,
                                         const std::string& why,
                                         const store::AttemptEnding& attempt, Level level,
                                         std::string_view text) {
  return error_program(message, step, token, why, attempt, [&] {
    log_step(level, to_string(StepEvent::program_errored), message, step, text);
  });
}

StepOutcome StepProcessor::superseded(const StepMessage& message, int step, std::int64_t token,
                                      const store::AttemptEnding* attempt) {
  unhold(message.run_id);
  std::optional<store::ProgramRow> row;
  try {
    // The row first: whether it was cancelled says how the attempt ended.
    row = store_.find(message.run_id);
  } catch (const std::exception&) {
    // The explanation below is then general.
  }
  try {
    if (attempt != nullptr) {
      store::AttemptEnding ended = *attempt;
      ended.outcome = row && row->cancelled_at ? store::attempt_outcome::cancelled
                                               : store::attempt_outcome::stale;
      store_.drop_claim(message.run_id, token, step, &ended);
    } else {
      store_.drop_claim(message.run_id, token);
    }
  } catch (const std::exception&) {
    // The claim expires by itself.
  }
  if (row && row->cancelled_at) {
    metrics_.program_cancelled();
    return outcome(Disposition::ack, StepEvent::step_cancelled, Level::info, message, step,
                   "the program was cancelled while the job ran; nothing after the cancel is "
                   "written and the program stays cancelled");
  }
  if (row && row->ended()) {
    return outcome(Disposition::ack, StepEvent::step_superseded, Level::warn, message, step,
                   "the program ended while the job ran (as " + row->state() +
                       "); this step's outcome is not written");
  }
  if (row && row->step != step) {
    return outcome(Disposition::ack, StepEvent::step_superseded, Level::warn, message, step,
                   "the program moved on to step " + std::to_string(row->step) +
                       " while the job ran (a worker that takes no claim, such as "
                       "program-executor-js's, ran this step too); this outcome is dropped");
  }
  return outcome(Disposition::ack, StepEvent::step_superseded, Level::warn, message, step,
                 "another worker took this step over (this worker's claim ran out); its "
                 "outcome is dropped");
}

StepOutcome StepProcessor::schedule_retry(const StepMessage& message,
                                          std::chrono::milliseconds delay) {
  // The standard delay goes through the main queue's dead-letter route, as
  // program-executor-js retries (nack without requeue).
  if (delay == settings_.retry_delay) return StepOutcome{Disposition::retry, StepEvent::job_retry};
  // Any other delay: a queue of its own whose TTL sends the message back.
  const std::string queue = settings_.queue + "-retry-" + std::to_string(delay.count());
  try {
    if (!declared_delays_.count(delay.count())) {
      amqp::QueueSpec spec{queue,
                           settings_.persistent,
                           {{"x-message-ttl", static_cast<std::int32_t>(delay.count())},
                            {"x-dead-letter-exchange", std::string()},
                            {"x-dead-letter-routing-key", settings_.queue}}};
      if (settings_.quorum) spec.arguments.push_back({"x-queue-type", std::string("quorum")});
      publisher_.declare(spec);
      declared_delays_.insert(delay.count());
    }
    publisher_.publish(queue, message.body.dump(), step_properties(settings_.persistent));
  } catch (const std::exception& e) {
    // Retry sooner rather than not at all.
    declared_delays_.erase(delay.count());
    log::event(Level::warn, "job.retry_queue_failed", e.what(),
               {{"run_id", message.run_id}, {"queue", queue}});
    return StepOutcome{Disposition::retry, StepEvent::job_retry};
  }
  return StepOutcome{Disposition::ack, StepEvent::job_retry};
}

void StepProcessor::commit_steps(StepBatch& batch) {
  const std::vector<BatchStep*> committing = batch.at(StepStage::ran);
  if (committing.empty()) return;
  std::vector<store::StepCommit> commits;
  for (const BatchStep* step : committing) {
    commits.push_back(store::StepCommit{step->message.run_id, step->step, step->claim->token,
                                        step->message.jobs.size() <= 1, step->attempt});
  }
  // Commit first, then publish: a crash in between leaves the rows moved on
  // and expected within stale_after; the sweeper then republishes the steps.
  // The reverse order (the original's) forks the program on such a crash.
  PE_CRASH_POINT("before_commit");
  std::vector<bool> committed;
  try {
    committed = store_.commit_all(commits, settings_.stale_after);
  } catch (const std::exception& e) {
    for (BatchStep* step : committing) step->decide(infrastructure_error(*step, e.what()));
    return;
  }
  std::vector<amqp::OutgoingMessage> next_steps;
  std::vector<BatchStep*> publishing;
  for (std::size_t i = 0; i < committing.size(); ++i) {
    BatchStep& step = *committing[i];
    const StepMessage& message = step.message;
    if (!committed[i]) {
      step.decide(superseded(message, step.step, step.claim->token,
                             step.attempt ? &*step.attempt : nullptr));
      continue;
    }
    unhold(message.run_id);
    log::event(Level::debug, "step.committed", "",
               {{"run_id", message.run_id},
                {"step", step.step},
                {"token", static_cast<long long>(step.claim->token)}});
    if (commits[i].last) {
      metrics_.program_finished();
      log::event(
          Level::info, to_string(StepEvent::program_finished), "",
          {{"run_id", message.run_id}, {"steps", static_cast<long long>(step.row->jobs.size())}});
      step.decide(StepOutcome{Disposition::ack, StepEvent::program_finished});
      continue;
    }
    next_steps.push_back(amqp::OutgoingMessage{settings_.queue, next_step_body(message),
                                               step_properties(settings_.persistent)});
    publishing.push_back(&step);
  }
  PE_CRASH_POINT("after_commit");
  if (next_steps.empty()) return;
  try {
    publisher_.publish_all(next_steps);
  } catch (const std::exception& e) {
    // The steps are committed; the next ones are overdue in stale_after and
    // then republished by the sweeper. Redelivering these would not help.
    for (BatchStep* step : publishing) {
      log::event(Level::error, to_string(StepEvent::step_publish_failed), e.what(),
                 {{"run_id", step->message.run_id}, {"step", step->step + 1}});
      step->decide(StepOutcome{Disposition::ack, StepEvent::step_publish_failed});
    }
    return;
  }
  PE_CRASH_POINT("after_publish");
  for (BatchStep* step : publishing) {
    step->decide(StepOutcome{Disposition::ack, StepEvent::job_finished});
  }
}

}  // namespace program_executor::executor
