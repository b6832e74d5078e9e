// The batch planner on its own (no store, no broker): which steps of a batch
// are claimed unread, which are copies, which slow ones go back, what runs when.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "program_executor/executor/step_batch.hpp"

using namespace program_executor::executor;

namespace {

std::string body(const std::string& run_id, const std::vector<std::string>& jobs) {
  return first_step_body(run_id, jobs, nlohmann::json::object());
}

// Parses every step of the batch and classifies jobs named "slow*" as slow.
void parse(StepBatch& batch) {
  for (BatchStep* step : batch.at(StepStage::received)) {
    step->message = parse_step_message(step->body);
    step->stage = StepStage::parsed;
  }
  batch.classify([](const std::string& job) { return job.rfind("slow", 0) == 0; });
}

}  // namespace

TEST_CASE("a lone step is claimed unread whatever its job, in a batch, slow jobs are read first") {
  const std::vector<std::string> lone = {body("r1", {"slow"})};
  StepBatch single(lone);
  parse(single);
  CHECK_FALSE(single.several());
  CHECK(single.claimable_unread().size() == 1);

  const std::vector<std::string> bodies = {body("r1", {"fast"}), body("r2", {"slow"}),
                                           body("r3", {"fast", "slow"})};
  StepBatch batch(bodies);
  parse(batch);
  const std::vector<BatchStep*> unread = batch.claimable_unread();
  REQUIRE(unread.size() == 2);
  CHECK(unread[0]->message.run_id == "r1");
  CHECK(unread[1]->message.run_id == "r3");
}

TEST_CASE("an unclaimed copy of a step claimed in the same batch is found, with its step") {
  const std::vector<std::string> bodies = {body("r1", {"a", "b"}), body("r1", {"a", "b"}),
                                           body("r1", {"b"}), body("r2", {"a"})};
  StepBatch batch(bodies);
  parse(batch);
  std::vector<BatchStep*> claiming = batch.claimable_unread();
  REQUIRE(claiming.size() == 4);
  CHECK(batch.copies_of_claimed(claiming).empty());  // nothing claimed yet
  claiming[0]->stage = StepStage::claimed;
  claiming[0]->step = 7;
  const std::vector<BatchStep*> copies = batch.copies_of_claimed(claiming);
  // Not the message for the next step of the same run, nor another run's.
  REQUIRE(copies.size() == 1);
  CHECK(copies[0] == claiming[1]);
  CHECK(copies[0]->step == 7);
}

TEST_CASE("of the claimable steps of slow jobs one stays, the others are handed back") {
  const std::vector<std::string> bodies = {body("r1", {"slow"}), body("r2", {"fast"}),
                                           body("r3", {"slow"}), body("r4", {"slow2"})};
  StepBatch batch(bodies);
  parse(batch);
  for (BatchStep* step : batch.at(StepStage::parsed)) step->stage = StepStage::claimable;
  batch.hand_back_slow();
  const std::vector<StepOutcome> outcomes = batch.outcomes();
  CHECK(batch.at(StepStage::claimable).size() == 2);  // r1 and r2
  CHECK(outcomes[2].disposition == Disposition::requeue);
  CHECK(outcomes[2].event == StepEvent::step_handed_back);
  CHECK(outcomes[3].event == StepEvent::step_handed_back);
}

TEST_CASE("fast claimed steps run before slow ones, an undecided step ends as step.not_run") {
  const std::vector<std::string> bodies = {body("r1", {"slow"}), body("r2", {"fast"})};
  StepBatch batch(bodies);
  parse(batch);
  for (BatchStep* step : batch.at(StepStage::parsed)) step->stage = StepStage::claimed;
  REQUIRE(batch.runnable(false).size() == 1);
  CHECK(batch.runnable(false)[0]->message.run_id == "r2");
  REQUIRE(batch.runnable(true).size() == 1);
  CHECK(batch.runnable(true)[0]->message.run_id == "r1");
  batch.runnable(false)[0]->decide(StepOutcome{Disposition::ack, StepEvent::job_finished});
  CHECK(batch.runnable(false).empty());
  const std::vector<StepOutcome> outcomes = batch.outcomes();
  CHECK(outcomes[0].disposition == Disposition::retry);
  CHECK(outcomes[0].event == StepEvent::step_not_run);
  CHECK(outcomes[1].event == StepEvent::job_finished);
}
