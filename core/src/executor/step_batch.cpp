#include "program_executor/executor/step_batch.hpp"

#include <map>

namespace program_executor::executor {

void BatchStep::decide(StepOutcome decided) {
  outcome = std::move(decided);
  stage = StepStage::decided;
}

StepBatch::StepBatch(const std::vector<std::string>& bodies) : steps_(bodies.size()) {
  for (std::size_t i = 0; i < bodies.size(); ++i) steps_[i].body = bodies[i];
}

std::vector<BatchStep*> StepBatch::at(StepStage stage) {
  std::vector<BatchStep*> found;
  for (BatchStep& step : steps_) {
    if (step.stage == stage) found.push_back(&step);
  }
  return found;
}

void StepBatch::classify(const std::function<bool(const std::string& job)>& slow_job) {
  for (BatchStep* step : at(StepStage::parsed)) step->slow = slow_job(step->message.current_job());
}

std::vector<BatchStep*> StepBatch::claimable_unread() {
  std::vector<BatchStep*> claimable;
  for (BatchStep* step : at(StepStage::parsed)) {
    if (!(several() && step->slow)) claimable.push_back(step);
  }
  return claimable;
}

std::vector<BatchStep*> StepBatch::copies_of_claimed(const std::vector<BatchStep*>& claiming) {
  std::map<std::string_view, const BatchStep*> claimed_runs;
  for (const BatchStep* step : claiming) {
    if (step->stage == StepStage::claimed) claimed_runs.emplace(step->message.run_id, step);
  }
  std::vector<BatchStep*> copies;
  if (claimed_runs.empty()) return copies;
  for (BatchStep* step : claiming) {
    if (step->stage != StepStage::parsed) continue;
    const auto it = claimed_runs.find(step->message.run_id);
    if (it != claimed_runs.end() && it->second->message.jobs.size() == step->message.jobs.size()) {
      step->step = it->second->step;
      copies.push_back(step);
    }
  }
  return copies;
}

void StepBatch::hand_back_slow() {
  if (!several()) return;
  bool kept = false;
  for (BatchStep* step : at(StepStage::claimable)) {
    if (!step->slow) continue;
    if (!kept) {
      kept = true;
      continue;
    }
    step->decide(StepOutcome{Disposition::requeue, StepEvent::step_handed_back});
  }
}

std::vector<BatchStep*> StepBatch::runnable(bool slow_ones) {
  std::vector<BatchStep*> runnable;
  for (BatchStep* step : at(StepStage::claimed)) {
    if (step->slow == slow_ones) runnable.push_back(step);
  }
  return runnable;
}

std::vector<StepOutcome> StepBatch::outcomes() const {
  std::vector<StepOutcome> outcomes;
  outcomes.reserve(steps_.size());
  for (const BatchStep& step : steps_) {
    outcomes.push_back(
        step.outcome.value_or(StepOutcome{Disposition::retry, StepEvent::step_not_run}));
  }
  return outcomes;
}

}  // namespace program_executor::executor
