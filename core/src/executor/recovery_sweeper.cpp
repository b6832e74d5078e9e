#include "program_executor/executor/recovery_sweeper.hpp"

#include <algorithm>

#include "program_executor/executor/step_publishing.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::executor {

RecoverySweeper::RecoverySweeper(store::ProgramStore& store, amqp::MessagePublisher& publisher,
                                 SweeperSettings settings, metrics::Metrics& metrics)
    : store_(store), publisher_(publisher), settings_(std::move(settings)), metrics_(metrics) {}

int RecoverySweeper::sweep() {
  if (!abandoned_counted_) {
    // Once per daemon: taking over an old table must not silently revive
    // (nor silently ignore) work abandoned long ago.
    if (const long long abandoned = store_.count_abandoned(settings_.window)) {
      log::event(log::Level::warn, "recovery.abandoned",
                 "running programs that stopped moving longer ago than recovery.max_age_hours are "
                 "not republished; resume them by hand or raise the limit",
                 {{"programs", abandoned},
                  {"max_age_hours",
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::hours>(
                                              settings_.window.max_age)
                                              .count())}});
    }
    abandoned_counted_ = true;
  }
  int recovered = 0;
  for (const store::StaleProgram& program : store_.overdue(settings_.window, settings_.batch)) {
    if (program.step < 0 || program.step >= static_cast<int>(program.jobs.size())) continue;
    // Claim the recovery first: of several daemons sweeping, one republishes.
    // If we die before publishing, the program is overdue again later.
    if (!store_.begin_recovery(program.run_id, program.step, program.token, settings_.window,
                               settings_.window.stale_after)) {
      continue;
    }
    publish_step(publisher_, settings_.queue, settings_.persistent, program.run_id, program.jobs,
                 program.step, program.program_data);
    ++recovered;
    metrics_.program_recovered();
    log::event(log::Level::warn, "program.recovered",
               "the program had stopped moving; its current step was published again",
               {{"run_id", program.run_id},
                {"step", program.step},
                {"job", program.jobs[static_cast<std::size_t>(program.step)]}});
  }
  return recovered;
}

HistoryPruneCadence::HistoryPruneCadence(Clock::time_point start)
    : HistoryPruneCadence(start, Settings{}) {}

HistoryPruneCadence::HistoryPruneCadence(Clock::time_point start, Settings settings)
    : settings_(settings), next_(start) {}

void HistoryPruneCadence::pruned(Clock::time_point began, Clock::time_point ended,
                                 long long deleted) {
  draining_ = deleted > 0;
  if (!draining_) {
    next_ = ended + settings_.idle_interval;
    return;
  }
  // A batch short of the limit may still leave rows: another daemon may have
  // deleted some of the ones this batch chose. Only an empty batch ends a backlog.
  const auto took = std::max(ended - began, Clock::duration::zero());
  next_ = ended + std::max<Clock::duration>(settings_.backlog_pause, took * settings_.pause_factor);
}

void HistoryPruneCadence::failed(Clock::time_point now) {
  draining_ = false;
  next_ = now + settings_.retry_after;
}

long long RecoverySweeper::prune_history() {
  if (settings_.history_retention.count() <= 0) return 0;
  const long long deleted =
      store_.prune_attempts(settings_.history_retention, settings_.history_prune_batch);
  if (deleted > 0) {
    log::event(log::Level::debug, "history.pruned", "",
               {{"attempts", deleted}, {"batch", settings_.history_prune_batch}});
  }
  return deleted;
}

}  // namespace program_executor::executor
