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

 private:
  store::ProgramStore& store_;
  amqp::MessagePublisher& publisher_;
  SweeperSettings settings_;
  metrics::Metrics& metrics_;
  bool abandoned_counted_ = false;
};

}  // namespace program_executor::executor
