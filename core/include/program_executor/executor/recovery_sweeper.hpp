// Finds programs that stopped moving and republishes their current step.
#pragma once

#include <chrono>

#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {

struct SweeperSettings {
  std::string queue;
  bool persistent = true;
  /// Which programs count as overdue (stale_after, the longer wait for steps
  /// nobody claimed, the age past which programs are left alone).
  store::RecoveryWindow window{std::chrono::milliseconds(60000)};
  int batch = 200;  ///< programs recovered per sweep at most
  /// Attempts older than this are pruned (history.retention); 0: never.
  std::chrono::milliseconds history_retention{0};
  /// Attempts deleted per statement: a bounded batch, so the deletes never
  /// hold locks or a transaction long enough to slow the steps.
  int history_prune_batch = 1000;
};

/// When the sweeper runs its next batch of the attempt history's pruning. A
/// batch that deleted rows means a backlog may remain: the next one follows
/// after a pause of at least `backlog_pause` and at least `pause_factor` times
/// what the batch took, so pruning holds the database (on SQLite, its one
/// writer) at most a tenth of the time, and a slow disk slows the pruning,
/// not the steps. A batch that deleted nothing means the table is within its
/// retention: the next look is `idle_interval` later. A failed batch is tried
/// again `retry_after` later. It reads no clock: the caller passes the time,
/// so it is tested without sleeping.
class HistoryPruneCadence {
 public:
  using Clock = std::chrono::steady_clock;
  struct Settings {
    std::chrono::milliseconds backlog_pause{100};
    /// The pause after a batch, in multiples of the time the batch took:
    /// 9, pruning's share of the time at most 1 / (1 + 9).
    int pause_factor = 9;
    std::chrono::milliseconds idle_interval{std::chrono::hours(1)};
    std::chrono::milliseconds retry_after{std::chrono::minutes(1)};
  };

  /// The first batch is due at `start`.
  explicit HistoryPruneCadence(Clock::time_point start);
  HistoryPruneCadence(Clock::time_point start, Settings settings);

  bool due(Clock::time_point now) const noexcept { return now >= next_; }
  Clock::time_point next() const noexcept { return next_; }
  /// Whether the last batch deleted rows (a backlog is being drained).
  bool draining() const noexcept { return draining_; }

  /// A batch that began at `began`, ended at `ended` and deleted `deleted` rows.
  void pruned(Clock::time_point began, Clock::time_point ended, long long deleted);
  /// A batch that failed at `now`.
  void failed(Clock::time_point now);

 private:
  Settings settings_;
  Clock::time_point next_;
  bool draining_ = false;
};

/// A program is overdue when its claim expired without a release (its worker
/// died) or when it was expected to move (a committed step whose next message
/// was never published, a lost retry) and did not. sweep() republishes the
/// current step of each, once across all daemons (the store arbitrates).
/// Duplicates that this may create are harmless: a copy of a step that has
/// moved on is dropped, a copy of a step being run is dropped (step.busy).
class RecoverySweeper {
 public:
  RecoverySweeper(store::ProgramStore& store, amqp::MessagePublisher& publisher,
                  SweeperSettings settings, metrics::Metrics& metrics = metrics::no_metrics());

  /// One pass; returns how many programs were republished. Throws on
  /// database or broker failure (the caller logs and tries again later).
  /// The first pass also logs how many overdue programs are older than the
  /// window's max_age and left alone (recovery.abandoned).
  int sweep();

  /// One bounded batch of the attempt history's pruning (at most
  /// history_prune_batch rows older than history_retention); returns how
  /// many were deleted. Rows deleted means more may be due: the caller calls
  /// again after a pause (HistoryPruneCadence), so pruning a backlog never
  /// blocks a sweep nor holds the database long.
  /// Throws on database failure.
  long long prune_history();

 private:
  store::ProgramStore& store_;
  amqp::MessagePublisher& publisher_;
  SweeperSettings settings_;
  metrics::Metrics& metrics_;
  bool abandoned_counted_ = false;
};

}  // namespace program_executor::executor
