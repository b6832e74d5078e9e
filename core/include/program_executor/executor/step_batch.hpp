// The batch planner: where each step message of a batch stands on its way
// through StepProcessor::process_all, and the decisions that concern the batch
// as a whole, taken without I/O: which steps are claimed on their message's
// word, which deliveries are copies of a step claimed in the same batch, which
// steps of slow jobs go back to the queue, and in which order steps run. What
// happens to one step (its row, its job, its commit) is StepProcessor's.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/executor/step_message.hpp"
#include "program_executor/executor/step_outcome.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {

/// Where a step of a batch stands. Steps only move down this list, and every
/// step ends the batch `decided`.
enum class StepStage {
  received,   ///< a delivery body, not parsed yet
  parsed,     ///< a valid message; its row is neither claimed nor read
  read,       ///< its row is read; to be examined
  claimable,  ///< the message stands for its row's current step: to be claimed
  claimed,    ///< this worker holds the step's claim: to be run
  ran,        ///< the job succeeded: the step waits for the batch's commit
  decided,    ///< has its outcome
};

/// One delivery on its way through a batch.
struct BatchStep {
  std::string_view body;
  StepMessage message;
  std::optional<store::ProgramRow> row;
  int step = 0;  ///< the step the message stands for
  std::optional<store::StepClaim> claim;
  /// Its job counted as slow when the batch began (decided once per batch).
  bool slow = false;
  StepStage stage = StepStage::received;
  std::optional<StepOutcome> outcome;  ///< set when decided
  /// The attempt its commit ends (`finished`, `skipped`), once it ran.
  std::optional<store::AttemptEnding> attempt;

  /// The step is done with: `outcome` is what becomes of its delivery.
  void decide(StepOutcome decided);
};

/// The steps of one batch, in delivery order.
class StepBatch {
 public:
  /// One step per body, `received`; the bodies must outlive the batch.
  explicit StepBatch(const std::vector<std::string>& bodies);

  /// More than one delivery: slow jobs are then planned apart (hand_back_slow).
  bool several() const { return steps_.size() > 1; }
  /// The steps at `stage`, in delivery order.
  std::vector<BatchStep*> at(StepStage stage);

  /// Decides, once for the whole batch, whose job is slow. The answer moves
  /// while the batch runs, and a step re-classified halfway would be skipped
  /// by both run passes with its claim still held.
  void classify(const std::function<bool(const std::string& job)>& slow_job);
  /// The parsed steps to claim on their message's word, without reading their
  /// rows first (the usual case). Steps of slow jobs in a batch of several are
  /// not: hand_back_slow needs their rows read first.
  std::vector<BatchStep*> claimable_unread();
  /// Of `claiming` (what claimable_unread returned, once claimed), the ones
  /// left unclaimed that are copies of a step claimed in this very batch
  /// (e.g. redelivered): each is given the step it stands for.
  std::vector<BatchStep*> copies_of_claimed(const std::vector<BatchStep*>& claiming);
  /// Keeps at most one claimable step of a slow job in a batch of several and
  /// hands the others back to the broker: steps that wait behind a slow job
  /// belong to idle workers.
  void hand_back_slow();
  /// The claimed steps of the fast jobs (`slow_ones` false) or the slow ones:
  /// fast steps run and commit first.
  std::vector<BatchStep*> runnable(bool slow_ones);
  /// One outcome per delivery, in order; a step left undecided (a bug) is
  /// retried as step.not_run.
  std::vector<StepOutcome> outcomes() const;

 private:
  std::vector<BatchStep> steps_;
};

}  // namespace program_executor::executor
