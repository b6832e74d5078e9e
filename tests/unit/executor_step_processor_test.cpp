// Every branch of one step's processing, against in-memory store and broker.
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "program_executor/executor/recovery_sweeper.hpp"
#include "program_executor/executor/step_processor.hpp"
#include "program_executor/sdk/errors.hpp"
#include "support/fakes.hpp"

using namespace program_executor;
using executor::Disposition;
using executor::StepEvent;
using nlohmann::json;

// Failed checks show the event's logged name.
template <>
struct Catch::StringMaker<StepEvent> {
  static std::string convert(StepEvent event) { return std::string(to_string(event)); }
};

namespace {

// A job whose behaviour is a lambda, registered under any name.
class LambdaJob : public sdk::Job {
 public:
  using Body = std::function<void(const json&, sdk::JobDataHandler&, sdk::JobContext&)>;
  explicit LambdaJob(Body body) : body_(std::move(body)) {}
  void execute(const json& message, sdk::JobDataHandler& data, sdk::JobContext& context) override {
    body_(message, data, context);
  }

 private:
  Body body_;
};

struct Harness {
  test::FakeProgramStore store;
  test::FakePublisher publisher;
  plugin::JobRegistry jobs;
  std::atomic<bool> stop{false};
  std::vector<std::string> ran;  // "job@step" in execution order

  void add(const std::string& name, LambdaJob::Body body = {}) {
    jobs.add(name,
             [this, name, body](const json&) {
               return std::make_unique<LambdaJob>(
                   [this, name, body](const json& m, sdk::JobDataHandler& d, sdk::JobContext& c) {
                     ran.push_back(name + "@" + std::to_string(c.step()));
                     if (body) body(m, d, c);
                   });
             },
             plugin::JobOrigin{"test", nullptr});
  }

  // The processor sees the jobs added so far. A job counts as fast once it
  // ran, however loaded the machine (the fairness tests set the real line).
  static executor::ProcessorSettings settings_for_tests() {
    executor::ProcessorSettings settings{"q", "q-parked", true, {}};
    settings.fairness.slow_step = std::chrono::milliseconds(60000);
    return settings;
  }
  executor::StepProcessor processor(executor::ProcessorSettings settings = settings_for_tests()) {
    library = std::make_unique<executor::JobLibrary>(jobs);
    return executor::StepProcessor(store, *library, publisher, std::move(settings), stop);
  }
  // The same, running steps with a crash on record through `isolation`.
  executor::StepProcessor isolating(executor::StepIsolation& isolation) {
    library = std::make_unique<executor::JobLibrary>(jobs);
    return executor::StepProcessor(store, *library, publisher, settings_for_tests(), stop,
                                   metrics::no_metrics(), &isolation);
  }
  std::unique_ptr<executor::JobLibrary> library;

  std::string create(std::vector<std::string> job_names, json program_data = json::object(),
                     json job_data = json::object(), std::string run_id = "run-1") {
    store.insert(store::NewProgram{run_id, job_names, program_data, job_data});
    return json{{"jobs", job_names}, {"programData", program_data}, {"runId", run_id}}.dump();
  }
};

}  // namespace

TEST_CASE("a successful step that is not the last publishes the next step and advances") {
  Harness h;
  h.add("a");
  h.add("b");
  json body = json::parse(h.create({"a", "b"}, {{"k", 1}}));
  body["extra"] = {{"kept", true}};  // unknown keys travel with the program
  auto outcome = h.processor().process(body.dump());
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::job_finished);
  REQUIRE(h.publisher.published.size() == 1);
  const auto& next = h.publisher.published[0];
  CHECK(next.queue == "q");
  CHECK(next.properties.persistent);
  CHECK(next.properties.timestamp.has_value());
  const json next_body = json::parse(next.body);
  CHECK(next_body["jobs"] == json::array({"b"}));
  CHECK(next_body["programData"] == json{{"k", 1}});
  CHECK(next_body["runId"] == "run-1");
  CHECK(next_body["extra"]["kept"] == true);
  const auto row = h.store.row("run-1");
  CHECK(row.step == 1);
  CHECK(row.step_retry_count == 0);
  CHECK_FALSE(row.finished_at);
  CHECK(h.ran == std::vector<std::string>{"a@0"});
}

TEST_CASE("a step is claimed without a read first, a message the claim does not match is read") {
  Harness h;
  h.add("a");
  h.add("b");
  const std::string first = h.create({"a", "b"});
  auto processor = h.processor();
  CHECK(processor.process(first).event == StepEvent::job_finished);
  CHECK(h.store.read_batches == 0);
  CHECK(h.store.claim_batches == 1);
  // The same message again: the program is past that step, which the claim
  // cannot tell from any other miss; the read can.
  CHECK(processor.process(first).event == StepEvent::step_duplicate);
  CHECK(h.store.read_batches == 1);
  CHECK(processor.process(R"({"jobs":["a"],"runId":"nobody","programData":{}})").event ==
        StepEvent::message_parked);
  CHECK(h.store.read_batches == 2);
  CHECK(processor.process(h.publisher.published.at(0).body).event == StepEvent::program_finished);
  CHECK(h.store.read_batches == 2);
  CHECK(h.ran == std::vector<std::string>{"a@0", "b@1"});
}

TEST_CASE("where the store claims nothing unread (MySQL), every step reads its row, then claims it") {
  Harness h;
  h.store.claim_unread_enabled = false;
  h.add("a");
  h.add("b");
  auto processor = h.processor();
  CHECK(processor.process(h.create({"a", "b"})).event == StepEvent::job_finished);
  CHECK(processor.process(h.publisher.published.at(0).body).event == StepEvent::program_finished);
  CHECK(processor.process(h.publisher.published.at(0).body).event == StepEvent::step_duplicate);
  CHECK(h.store.read_batches == 3);
  CHECK(h.store.claim_batches == 2);
  CHECK(h.ran == std::vector<std::string>{"a@0", "b@1"});
}

TEST_CASE("the last step finishes the program and publishes nothing") {
  Harness h;
  h.add("a");
  h.add("b");
  const std::string first = h.create({"a", "b"});
  REQUIRE(h.processor().process(first).disposition == Disposition::ack);
  auto outcome = h.processor().process(h.publisher.published.at(0).body);
  CHECK(outcome.event == StepEvent::program_finished);
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(h.publisher.published.size() == 1);
  const auto row = h.store.row("run-1");
  CHECK(row.finished_at);
  CHECK(row.step == 1);  // the index of the last job, as the original leaves it
  CHECK(h.ran == std::vector<std::string>{"a@0", "b@1"});
}

TEST_CASE("a retryable error counts a retry, records the message and goes to the retry queue") {
  Harness h;
  h.add("a", [](auto&, auto&, auto&) { throw sdk::RetryableError("try later"); });
  const std::string body = h.create({"a"});
  auto outcome = h.processor().process(body);
  CHECK(outcome.disposition == Disposition::retry);
  CHECK(outcome.event == StepEvent::job_retry);
  auto row = h.store.row("run-1");
  CHECK(row.step_retry_count == 1);
  CHECK(row.error_message == "try later");
  CHECK_FALSE(row.errored_at);
  h.processor().process(body);
  CHECK(h.store.row("run-1").step_retry_count == 2);
}

TEST_CASE("a retried step that then succeeds resets the retry count") {
  Harness h;
  int calls = 0;
  h.add("a", [&](auto&, auto&, auto&) {
    if (++calls < 3) throw sdk::RetryableError("not yet");
  });
  h.add("b");
  const std::string body = h.create({"a", "b"});
  CHECK(h.processor().process(body).disposition == Disposition::retry);
  CHECK(h.processor().process(body).disposition == Disposition::retry);
  CHECK(h.processor().process(body).disposition == Disposition::ack);
  const auto row = h.store.row("run-1");
  CHECK(row.step == 1);
  CHECK(row.step_retry_count == 0);
}

TEST_CASE("the attempt number seen by a job counts its retries") {
  Harness h;
  std::vector<int> attempts;
  h.add("a", [&](auto&, auto&, sdk::JobContext& c) {
    attempts.push_back(c.attempt());
    CHECK(c.idempotency_key() == "run-1:0");
    if (attempts.size() < 2) throw sdk::RetryableError("again");
  });
  const std::string body = h.create({"a"});
  h.processor().process(body);
  h.processor().process(body);
  CHECK(attempts == std::vector<int>{1, 2});
}

TEST_CASE("a checkpoint past its time limit yields: retried, neither counted nor recorded") {
  Harness h;
  h.add("a", [](auto&, sdk::JobDataHandler& data, auto&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    data.checkpoint({{"page", 3}}, std::chrono::milliseconds(1));
    FAIL("checkpoint should have thrown");
  });
  const std::string body = h.create({"a"});
  auto outcome = h.processor().process(body);
  CHECK(outcome.disposition == Disposition::retry);
  CHECK(outcome.event == StepEvent::job_yield);
  const auto row = h.store.row("run-1");
  CHECK(row.step_retry_count == 0);
  CHECK_FALSE(row.error_message);
  CHECK(row.job_data["a"]["page"] == 3);  // progress was saved before yielding
}

TEST_CASE("a checkpoint within its limit, or without one, lets the job go on") {
  Harness h;
  h.add("a", [](auto&, sdk::JobDataHandler& data, auto&) {
    data.checkpoint({{"x", 1}}, std::chrono::milliseconds(0));
    data.checkpoint({{"y", 2}}, std::chrono::hours(1));
  });
  CHECK(h.processor().process(h.create({"a"})).event == StepEvent::program_finished);
  CHECK(h.store.row("run-1").job_data["a"] == json{{"x", 1}, {"y", 2}});
}

TEST_CASE("an ignorable error ends the program with its message") {
  Harness h;
  h.add("a", [](auto&, auto&, auto&) { throw sdk::IgnorableError("nothing to do"); });
  h.add("b");
  auto outcome = h.processor().process(h.create({"a", "b"}));
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::program_errored);
  const auto row = h.store.row("run-1");
  CHECK(row.errored_at);
  CHECK(row.error_message == "nothing to do");
  CHECK(row.step == 0);
  CHECK(h.publisher.published.empty());
}

TEST_CASE("any other exception fails the program where it happened") {
  Harness h;
  h.add("a");
  h.add("b", [](auto&, auto&, auto&) { throw std::runtime_error("boom"); });
  h.add("c");
  const std::string first = h.create({"a", "b", "c"});
  h.processor().process(first);
  auto outcome = h.processor().process(h.publisher.published.at(0).body);
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::program_errored);
  const auto row = h.store.row("run-1");
  CHECK(row.errored_at);
  CHECK(row.error_message == "boom");
  CHECK(row.step == 1);
  CHECK(h.publisher.published.size() == 1);  // c never gets a message
}

TEST_CASE("an exception not derived from std::exception fails the program too") {
  Harness h;
  h.add("a", [](auto&, auto&, auto&) { throw 42; });
  CHECK(h.processor().process(h.create({"a"})).event == StepEvent::program_errored);
  CHECK(h.store.row("run-1").error_message->find("unknown exception") != std::string::npos);
}

TEST_CASE("a job factory that throws fails the program") {
  Harness h;
  h.jobs.add("bad", [](const json&) -> std::unique_ptr<sdk::Job> {
    throw std::runtime_error("cannot construct");
  }, plugin::JobOrigin{"test", nullptr});
  CHECK(h.processor().process(h.create({"bad"})).event == StepEvent::program_errored);
  CHECK(h.store.row("run-1").error_message == "cannot construct");
}

TEST_CASE("an unknown job is skipped as if it succeeded") {
  Harness h;
  h.add("b");
  auto outcome = h.processor().process(h.create({"missing", "b"}));
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(h.store.row("run-1").step == 1);
  REQUIRE(h.publisher.published.size() == 1);
  CHECK(json::parse(h.publisher.published[0].body)["jobs"] == json::array({"b"}));
  CHECK(h.ran.empty());
}

TEST_CASE("a cancelled program drops its next step without running it") {
  Harness h;
  h.add("a");
  const std::string body = h.create({"a"});
  REQUIRE(h.store.cancel("run-1", "cancelled"));
  auto outcome = h.processor().process(body);
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::program_cancelled);
  CHECK(h.ran.empty());
}

TEST_CASE("a program cancelled while its step runs is not moved on, nor its job data written") {
  Harness h;
  h.add("a", [&](auto&, sdk::JobDataHandler& data, auto&) {
    h.store.cancel("run-1", "cancelled");
    data.merge({{"after", "cancel"}});  // refused: the job ends here
  });
  h.add("b");
  auto outcome = h.processor().process(h.create({"a", "b"}));
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::step_cancelled);
  const auto row = h.store.row("run-1");
  CHECK(row.step == 0);
  CHECK(row.state() == "cancelled");
  CHECK_FALSE(row.job_data.contains("a"));
  CHECK_FALSE(row.lease_owner.has_value());  // an ended row keeps no claim
  CHECK(h.publisher.published.empty());
}

TEST_CASE("a job failing with the message \"cancelled\" errors its program; it is not a cancel") {
  Harness h;
  h.add("a", [](auto&, auto&, auto&) { throw std::runtime_error("cancelled"); });
  CHECK(h.processor().process(h.create({"a"})).event == StepEvent::program_errored);
  const auto row = h.store.row("run-1");
  CHECK(row.state() == "errored");
  CHECK(h.store.list(store::ProgramFilter{"errored", {}, 20, 0, {}}).size() == 1);
  CHECK(h.store.list(store::ProgramFilter{"cancelled", {}, 20, 0, {}}).empty());
}

TEST_CASE("a stale or duplicated message never runs a step twice or forks the program") {
  Harness h;
  h.add("a");
  h.add("b");
  const std::string first = h.create({"a", "b"});
  h.processor().process(first);
  // The same first-step message again, e.g. redelivered after a crash before its ack.
  auto outcome = h.processor().process(first);
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::step_duplicate);
  CHECK(h.publisher.published.size() == 1);
  CHECK(h.store.row("run-1").step == 1);
  // A message for the last step of a finished program is a duplicate too.
  const std::string second = h.publisher.published[0].body;
  h.processor().process(second);
  CHECK(h.processor().process(second).event == StepEvent::step_duplicate);
  CHECK(h.ran == std::vector<std::string>{"a@0", "b@1"});
}

TEST_CASE("messages that can never run are parked with the reason, never dropped") {
  Harness h;
  h.add("a");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json at all", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {R"({"jobs":["a"]})", "runId"},
      {R"({"runId":"r","jobs":[]})", "jobs"},
      {R"({"runId":"r","jobs":[1]})", "not a string"},
      {R"({"runId":"r","jobs":["a"],"programData":5})", "programData"},
      {R"({"runId":"nobody","jobs":["a"]})", "no program with run id nobody"},
      {std::string(70, '[') + std::string(70, ']'), "nesting"},
  };
  for (const auto& [body, reason] : cases) {
    INFO(body);
    h.publisher.published.clear();
    auto outcome = h.processor().process(body);
    CHECK(outcome.disposition == Disposition::ack);
    CHECK(outcome.event == StepEvent::message_parked);
    REQUIRE(h.publisher.published.size() == 1);
    const auto& parked = h.publisher.published[0];
    CHECK(parked.queue == "q-parked");
    CHECK(parked.body == body);
    REQUIRE_FALSE(parked.properties.headers.empty());
    CHECK(parked.properties.headers[0].first == "x-parked-reason");
    CHECK_THAT(parked.properties.headers[0].second, Catch::Contains(reason));
  }
}

TEST_CASE("an oversized message is parked before it is parsed") {
  Harness h;
  auto outcome =
      h.processor(executor::ProcessorSettings{"q", "q-parked", true, {100, 64}})
          .process(std::string(101, ' '));
  CHECK(outcome.event == StepEvent::message_parked);
  CHECK_THAT(h.publisher.published.at(0).properties.headers[0].second, Catch::Contains("101 bytes"));
}

TEST_CASE("when parking fails the message is retried, not lost") {
  Harness h;
  h.publisher.fail = true;
  auto outcome = h.processor().process("garbage");
  CHECK(outcome.disposition == Disposition::retry);
}

TEST_CASE("a database failure retries the step") {
  Harness h;
  h.add("a");
  const std::string body = h.create({"a"});
  h.store.fail_next_find = true;
  auto outcome = h.processor().process(body);
  CHECK(outcome.disposition == Disposition::retry);
  CHECK(outcome.event == StepEvent::step_infrastructure_error);
  CHECK(h.ran.empty());
  CHECK(h.processor().process(body).event == StepEvent::program_finished);
}

TEST_CASE("jobs see the program data and their own job data, and can change it") {
  Harness h;
  h.add("a", [](const json& message, sdk::JobDataHandler& data, sdk::JobContext& context) {
    CHECK(message["programData"]["customer"] == 7);
    CHECK(context.job_name() == "a");
    CHECK(context.run_id() == "run-1");
    CHECK(data.get() == json{{"limit", 5}});
    data.merge({{"seen", true}});
    CHECK(data.get() == json{{"limit", 5}, {"seen", true}});
    data.set({{"only", 1}});
    CHECK(data.get() == json{{"only", 1}});
    CHECK_THROWS_AS(data.merge(json::array()), std::invalid_argument);
  });
  h.add("b", [](auto&, sdk::JobDataHandler& data, auto&) { CHECK(data.get() == json::object()); });
  h.create({"a", "b"}, {{"customer", 7}}, {{"a", {{"limit", 5}}}, {"c", {{"other", 1}}}});
  h.processor().process(R"({"jobs":["a","b"],"programData":{"customer":7},"runId":"run-1"})");
  h.processor().process(h.publisher.published.at(0).body);
  const auto row = h.store.row("run-1");
  CHECK(row.finished_at);
  CHECK(row.job_data["a"] == json{{"only", 1}});
  CHECK(row.job_data["c"] == json{{"other", 1}});  // other jobs' data untouched
}

TEST_CASE("a job can create another program") {
  Harness h;
  std::string created;
  h.add("spawner", [&](auto&, auto&, sdk::JobContext& context) {
    sdk::ProgramRequest request;
    request.jobs = {"child"};
    request.program_data = {{"parent", context.run_id()}};
    created = context.create_program(request);
  });
  h.processor().process(h.create({"spawner"}));
  REQUIRE_FALSE(created.empty());
  const auto child = h.store.row(created);
  CHECK(child.jobs == std::vector<std::string>{"child"});
  CHECK(child.program_data["parent"] == "run-1");
  REQUIRE(h.publisher.published.size() == 1);
  const json first = json::parse(h.publisher.published[0].body);
  CHECK(first == json{{"jobs", {"child"}}, {"programData", {{"parent", "run-1"}}}, {"runId", created}});
}

TEST_CASE("a job sees the daemon's stop request") {
  Harness h;
  bool seen = false;
  h.add("a", [&](auto&, auto&, sdk::JobContext& context) { seen = context.stop_requested(); });
  h.stop = true;
  h.processor().process(h.create({"a"}));
  CHECK(seen);
}

TEST_CASE("a message one step ahead of its row waits for the row, then retries") {
  Harness h;
  h.add("a");
  h.add("b");
  h.create({"a", "b"});
  const std::string second = R"({"jobs":["b"],"programData":{},"runId":"run-1"})";
  executor::ProcessorSettings settings{"q", "q-parked", true, {}, std::chrono::milliseconds(20)};
  // The row is still at step 0 (the previous step has not committed yet).
  auto outcome = h.processor(settings).process(second);
  CHECK(outcome.disposition == Disposition::retry);
  CHECK(outcome.event == StepEvent::step_early);
  CHECK(h.ran.empty());
  // Once the previous step's update lands, the same message runs.
  std::thread commit([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto claim = h.store.claim("run-1", 0, "another worker", std::chrono::seconds(30));
    h.store.advance("run-1", 0, claim->token, std::chrono::minutes(1));
  });
  settings.early_step_wait = std::chrono::seconds(5);
  outcome = h.processor(settings).process(second);
  commit.join();
  CHECK(outcome.event == StepEvent::program_finished);
  CHECK(h.ran == std::vector<std::string>{"b@1"});
}

TEST_CASE("a message with more jobs than its program is parked") {
  Harness h;
  h.add("a");
  h.create({"a"});
  auto outcome = h.processor().process(R"({"jobs":["a","a"],"runId":"run-1"})");
  CHECK(outcome.event == StepEvent::message_parked);
}

TEST_CASE("a step claimed by another live worker is not run twice") {
  Harness h;
  h.add("a");
  const std::string body = h.create({"a"});
  REQUIRE(h.store.claim("run-1", 0, "other:1:0", std::chrono::seconds(30)));
  auto outcome = h.processor().process(body);
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::step_busy);
  CHECK(h.ran.empty());
  CHECK_FALSE(h.store.row("run-1").finished_at);
}

TEST_CASE("an expired claim of a dead worker is taken over and counted as a crash") {
  Harness h;
  h.add("a");
  const std::string body = h.create({"a"});
  REQUIRE(h.store.claim("run-1", 0, "dead:1:0", std::chrono::seconds(30)));
  h.store.expire("run-1");
  CHECK(h.processor().process(body).event == StepEvent::program_finished);
  CHECK(h.ran == std::vector<std::string>{"a@0"});
}

TEST_CASE("a job that keeps killing its worker errors the program after max_crashes") {
  Harness h;
  h.add("poison");
  const std::string body = h.create({"poison"});
  // Three workers died holding the step (their claims expired unreleased).
  for (int i = 0; i < 3; ++i) {
    REQUIRE(h.store.claim("run-1", 0, "dead:" + std::to_string(i), std::chrono::seconds(30)));
    h.store.expire("run-1");
  }
  auto outcome = h.processor().process(body);
  CHECK(outcome.event == StepEvent::program_errored);
  const auto row = h.store.row("run-1");
  CHECK(row.errored_at);
  CHECK_THAT(*row.error_message, Catch::Contains("died 3 times") && Catch::Contains("poison"));
  CHECK(h.ran.empty());  // not run a fourth time
}

TEST_CASE("a worker that lost its claim cannot commit the step or write job data") {
  Harness h;
  h.add("a", [&](auto&, sdk::JobDataHandler& data, auto&) {
    // Meanwhile our claim ran out and another worker took the step.
    h.store.expire("run-1");
    REQUIRE(h.store.claim("run-1", 0, "other:2:0", std::chrono::seconds(30)));
    CHECK_THROWS_AS(data.merge({{"x", 1}}), store::StoreError);
  });
  h.add("b");
  auto outcome = h.processor().process(h.create({"a", "b"}));
  CHECK(outcome.event == StepEvent::step_superseded);
  CHECK(h.store.row("run-1").step == 0);
  CHECK(h.publisher.published.empty());
  CHECK_FALSE(h.store.row("run-1").job_data.contains("a"));
}

TEST_CASE("a step is committed before its successor is published, a lost publish is recovered") {
  Harness h;
  h.add("a");
  h.add("b");
  const std::string body = h.create({"a", "b"}, {{"p", 1}});
  h.publisher.fail = true;  // the broker refuses right after the commit
  auto outcome = h.processor().process(body);
  CHECK(outcome.disposition == Disposition::ack);
  CHECK(outcome.event == StepEvent::step_publish_failed);
  CHECK(h.store.row("run-1").step == 1);  // committed: a redelivery would be a duplicate
  CHECK(h.processor().process(body).event == StepEvent::step_duplicate);

  // Once the program is overdue, the sweeper republishes its current step, once.
  h.publisher.fail = false;
  h.store.expire("run-1");
  executor::RecoverySweeper sweeper(h.store, h.publisher,
                                    executor::SweeperSettings{"q", true, std::chrono::milliseconds(60000)});
  CHECK(sweeper.sweep() == 1);
  CHECK(sweeper.sweep() == 0);
  REQUIRE(h.publisher.published.size() == 1);
  const json republished = json::parse(h.publisher.published[0].body);
  CHECK(republished == json{{"jobs", {"b"}}, {"programData", {{"p", 1}}}, {"runId", "run-1"}});
  CHECK(h.processor().process(h.publisher.published[0].body).event == StepEvent::program_finished);
  CHECK(h.ran == std::vector<std::string>{"a@0", "b@1"});
}

TEST_CASE("the sweeper leaves moving programs alone") {
  Harness h;
  h.add("a");
  h.create({"a"});
  executor::RecoverySweeper sweeper(h.store, h.publisher,
                                    executor::SweeperSettings{"q", true, std::chrono::milliseconds(60000)});
  CHECK(sweeper.sweep() == 0);  // expected within a minute: not overdue yet
  CHECK(h.publisher.published.empty());
}

TEST_CASE("the claim of a running step is renewed while the job runs") {
  Harness h;
  std::optional<std::int64_t> token;
  executor::ProcessorSettings settings{"q", "q-parked", true, {}};
  settings.lease = std::chrono::milliseconds(30);
  std::unique_ptr<executor::StepProcessor> processor;
  h.add("slow", [&](auto&, auto&, auto&) {
    // Renewal happens on the worker thread in the daemon; called here directly.
    for (int i = 0; i < 10; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
      processor->renew_claim_if_due();
    }
    // 150 ms after the claim, a 30 ms lease is still held: nobody can take it.
    CHECK_FALSE(h.store.claim("run-1", 0, "other", std::chrono::seconds(1)));
  });
  const std::string body = h.create({"slow"});
  h.library = std::make_unique<executor::JobLibrary>(h.jobs);
  processor = std::make_unique<executor::StepProcessor>(h.store, *h.library, h.publisher, settings,
                                                        h.stop);
  CHECK(processor->process(body).event == StepEvent::program_finished);
}

TEST_CASE("a step that reaches its retry limit errors the program saying so") {
  Harness h;
  h.add("a", [](auto&, auto&, auto&) { throw sdk::RetryableError("service unavailable"); });
  const std::string body = h.create({"a"});
  executor::ProcessorSettings settings{"q", "q-parked", true, {}};
  config::RetrySettings retry;
  retry.defaults.max_attempts = 3;
  settings.retry = executor::RetryPolicies::from(retry);
  CHECK(h.processor(settings).process(body).event == StepEvent::job_retry);
  CHECK(h.processor(settings).process(body).event == StepEvent::job_retry);
  auto outcome = h.processor(settings).process(body);
  CHECK(outcome.event == StepEvent::program_errored);
  CHECK(outcome.disposition == Disposition::ack);
  const auto row = h.store.row("run-1");
  CHECK(row.errored_at);
  CHECK(*row.error_message ==
        "job a failed 3 times, its retry limit; last error: service unavailable");
  CHECK(row.step_retry_count == 2);
}

TEST_CASE("a retry with another delay goes to a delay queue of its own, declared once") {
  Harness h;
  h.add("a", [](auto&, auto&, auto&) { throw sdk::RetryableError("later"); });
  const std::string body = h.create({"a"});
  executor::ProcessorSettings settings{"q", "q-parked", true, {}};
  config::RetrySettings retry;
  retry.defaults.delay_ms = 4000;  // a rung of the ladder (1000 * 2^(8/4))
  settings.retry = executor::RetryPolicies::from(retry);
  auto processor = h.processor(settings);
  auto outcome = processor.process(body);
  CHECK(outcome.event == StepEvent::job_retry);
  CHECK(outcome.disposition == Disposition::ack);  // moved to the delay queue, not nacked
  REQUIRE(h.publisher.declared.size() == 1);
  const auto& spec = h.publisher.declared[0];
  CHECK(spec.name == "q-retry-4000");
  CHECK(spec.durable);
  REQUIRE(spec.arguments.size() == 3);
  CHECK(spec.arguments[0].name == "x-message-ttl");
  CHECK(std::get<std::int32_t>(spec.arguments[0].value) == 4000);
  CHECK(std::get<std::string>(spec.arguments[2].value) == "q");  // back to the main queue
  REQUIRE(h.publisher.published.size() == 1);
  CHECK(h.publisher.published[0].queue == "q-retry-4000");
  CHECK(json::parse(h.publisher.published[0].body) == json::parse(body));
  processor.process(body);
  CHECK(h.publisher.declared.size() == 1);  // declared once
  CHECK(h.publisher.published.size() == 2);
}

TEST_CASE("when the delay queue cannot be used the step still retries, sooner") {
  Harness h;
  h.add("a", [](auto&, auto&, auto&) { throw sdk::RetryableError("later"); });
  const std::string body = h.create({"a"});
  executor::ProcessorSettings settings{"q", "q-parked", true, {}};
  config::RetrySettings retry;
  retry.defaults.delay_ms = 4000;
  settings.retry = executor::RetryPolicies::from(retry);
  h.publisher.fail = true;
  auto outcome = h.processor(settings).process(body);
  CHECK(outcome.event == StepEvent::job_retry);
  CHECK(outcome.disposition == Disposition::retry);  // the standard retry queue
  CHECK(h.store.row("run-1").step_retry_count == 1);
}

TEST_CASE("a batch claims its steps together, commits them together, publishes at once") {
  Harness h;
  h.add("a");
  h.add("b");
  const std::string first = h.create({"a", "b"}, {}, {}, "run-1");
  const std::string only = h.create({"a"}, {}, {}, "run-2");
  const std::string third = h.create({"a", "b"}, {}, {}, "run-3");
  auto processor = h.processor();
  // A processor batches only jobs it has seen run fast.
  processor.process(h.create({"a"}, {}, {}, "warm-up"));
  h.ran.clear();
  h.store.claim_batches = h.store.commit_batches = 0;
  // run-1's message twice in one batch (a redelivered copy): the copy finds
  // the step claimed by the first and is dropped.
  const auto outcomes = processor.process_all({first, only, third, first});
  REQUIRE(outcomes.size() == 4);
  CHECK(outcomes[0].event == StepEvent::job_finished);
  CHECK(outcomes[1].event == StepEvent::program_finished);
  CHECK(outcomes[2].event == StepEvent::job_finished);
  CHECK(outcomes[3].event == StepEvent::step_busy);
  CHECK(h.ran == std::vector<std::string>{"a@0", "a@0", "a@0"});
  CHECK(h.store.claim_batches == 1);
  CHECK(h.store.commit_batches == 1);
  CHECK(h.publisher.batches == 1);
  REQUIRE(h.publisher.published.size() == 2);
  CHECK(json::parse(h.publisher.published[0].body)["runId"] == "run-1");
  CHECK(json::parse(h.publisher.published[1].body)["runId"] == "run-3");
  CHECK(h.store.row("run-1").step == 1);
  CHECK(h.store.row("run-2").finished_at.has_value());
  CHECK(h.store.row("run-3").step == 1);
}

TEST_CASE("a failing job in a batch ends its own program only") {
  Harness h;
  h.add("ok");
  h.add("broken", [](const json&, sdk::JobDataHandler&, sdk::JobContext&) {
    throw std::runtime_error("disk full");
  });
  const std::string good = h.create({"ok", "ok"}, {}, {}, "run-good");
  const std::string bad = h.create({"broken", "ok"}, {}, {}, "run-bad");
  auto processor = h.processor();
  processor.process(h.create({"broken"}, {}, {}, "warm-up-1"));
  processor.process(h.create({"ok"}, {}, {}, "warm-up-2"));
  h.publisher.published.clear();
  const auto outcomes = processor.process_all({bad, good});
  CHECK(outcomes[0].event == StepEvent::program_errored);
  CHECK(outcomes[1].event == StepEvent::job_finished);
  CHECK(h.store.row("run-bad").error_message == "disk full");
  CHECK(h.store.row("run-good").step == 1);
  REQUIRE(h.publisher.published.size() == 1);
  CHECK(json::parse(h.publisher.published[0].body)["runId"] == "run-good");
}

TEST_CASE("when a batch's commit fails, each of its steps is retried with its claim released") {
  Harness h;
  h.add("a");
  const std::string one = h.create({"a", "a"}, {}, {}, "run-1");
  const std::string two = h.create({"a", "a"}, {}, {}, "run-2");
  auto processor = h.processor();
  processor.process(h.create({"a"}, {}, {}, "warm-up"));
  h.store.fail_next_commit = true;
  const auto outcomes = processor.process_all({one, two});
  for (const auto& outcome : outcomes) {
    CHECK(outcome.disposition == Disposition::retry);
    CHECK(outcome.event == StepEvent::step_infrastructure_error);
  }
  for (const char* run_id : {"run-1", "run-2"}) {
    CHECK(h.store.row(run_id).step == 0);
    CHECK_FALSE(h.store.row(run_id).lease_owner.has_value());
  }
  CHECK(h.publisher.published.empty());
}

TEST_CASE("when the next steps cannot be published, the committed steps are acked for the sweeper") {
  Harness h;
  h.add("a");
  const std::string one = h.create({"a", "a"}, {}, {}, "run-1");
  const std::string two = h.create({"a", "a"}, {}, {}, "run-2");
  auto processor = h.processor();
  processor.process(h.create({"a"}, {}, {}, "warm-up"));
  h.publisher.fail = true;
  const auto outcomes = processor.process_all({one, two});
  for (const auto& outcome : outcomes) {
    CHECK(outcome.disposition == Disposition::ack);
    CHECK(outcome.event == StepEvent::step_publish_failed);
  }
  // Committed: the rows moved on and are expected within stale_after, after
  // which the sweeper republishes their steps.
  CHECK(h.store.row("run-1").step == 1);
  CHECK(h.store.row("run-2").step == 1);
}

TEST_CASE("in a batch, fast steps commit first, of the slow ones one runs, the others go back") {
  Harness h;
  h.add("fast");
  h.add("slow", [](const json&, sdk::JobDataHandler&, sdk::JobContext&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  });
  executor::ProcessorSettings settings{"q", "q-parked", true, {}};
  // A line far from both jobs: the daemon's 5 ms is within reach of an empty
  // job on a loaded machine under the sanitizers, which made "fast" slow.
  settings.fairness = executor::FairnessPolicy{.slow_step = std::chrono::milliseconds(100)};
  auto processor = h.processor(settings);
  processor.process(h.create({"fast"}, {}, {}, "warm-up"));
  const std::string slow_one = h.create({"slow", "fast"}, {}, {}, "slow-1");
  const std::string slow_two = h.create({"slow", "fast"}, {}, {}, "slow-2");
  const std::string never_seen = h.create({"new", "fast"}, {}, {}, "unknown");
  const std::string fast = h.create({"fast", "fast"}, {}, {}, "fast-1");
  h.ran.clear();
  h.publisher.published.clear();
  const auto outcomes = processor.process_all({slow_one, slow_two, never_seen, fast});
  CHECK(outcomes[0].event == StepEvent::job_finished);
  // A job this processor has not run yet counts as slow until it has.
  for (const std::size_t i : {1, 2}) {
    CHECK(outcomes[i].disposition == Disposition::requeue);
    CHECK(outcomes[i].event == StepEvent::step_handed_back);
  }
  CHECK(outcomes[3].event == StepEvent::job_finished);
  CHECK(h.ran == std::vector<std::string>{"fast@0", "slow@0"});
  // The fast step's next step went out before the slow job ran.
  REQUIRE(h.publisher.published.size() == 2);
  CHECK(json::parse(h.publisher.published[0].body)["runId"] == "fast-1");
  CHECK(json::parse(h.publisher.published[1].body)["runId"] == "slow-1");
  // Handed back before any claim: nothing about them changed.
  CHECK(h.store.row("slow-2").lease_token == 0);
  CHECK(h.store.row("unknown").lease_token == 0);
  CHECK(h.store.row("slow-2").step == 0);

  // Once it ran fast, a job is batched; a slow job stays singled out.
  processor.process(h.create({"new"}, {}, {}, "warm-up-new"));
  const auto again = processor.process_all(
      {h.create({"new"}, {}, {}, "n1"), h.create({"new"}, {}, {}, "n2"), slow_two});
  CHECK(again[0].event == StepEvent::program_finished);
  CHECK(again[1].event == StepEvent::program_finished);
  CHECK(again[2].event == StepEvent::job_finished);
}

TEST_CASE("a job that turns slow or fast while its batch runs leaves no claimed step unrun") {
  // Issue 17: whether a job is slow follows a moving average that moves while
  // the batch runs. Steps re-classified halfway were skipped by both passes
  // and went back to the broker with their claims held; their only message
  // then came back as a "busy" copy and was dropped until the sweeper came.
  Harness h;
  h.add("j", [](const json& message, sdk::JobDataHandler&, sdk::JobContext&) {
    // The first step of the batch takes long enough to make the job slow
    // (a moving average of at least 0.2 * 50 ms); the others take no time,
    // so the average falls back under the line a few steps later.
    if (message["runId"] == "r0") std::this_thread::sleep_for(std::chrono::milliseconds(50));
  });
  executor::ProcessorSettings settings{"q", "q-parked", true, {}};
  settings.fairness = executor::FairnessPolicy{};  // the daemon's line
  auto processor = h.processor(settings);
  // j runs fast, so the batch is claimed at once (on a machine too loaded for
  // that, the batch hands back what it does not run: the checks hold too).
  for (int i = 0; i < 10; ++i) processor.process(h.create({"j"}, {}, {}, "warm-up-" + std::to_string(i)));
  std::vector<std::string> bodies;
  for (int i = 0; i < 20; ++i) bodies.push_back(h.create({"j", "j"}, {}, {}, "r" + std::to_string(i)));
  h.ran.clear();
  const auto outcomes = processor.process_all(bodies);
  REQUIRE(outcomes.size() == 20);
  std::size_t finished = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    INFO("step of r" << i << ": " << to_string(outcomes[i].event));
    const auto row = h.store.row("r" + std::to_string(i));
    // Run and committed, or handed back before any claim; never sent back
    // with a claim held.
    if (outcomes[i].event == StepEvent::job_finished) {
      ++finished;
      CHECK(row.step == 1);
    } else {
      CHECK(outcomes[i].event == StepEvent::step_handed_back);
      CHECK(row.lease_token == 0);
    }
    CHECK_FALSE(row.lease_owner.has_value());
  }
  CHECK(finished >= 1);
  CHECK(h.ran.size() == finished);
  // Every next step went out, and each is claimed at once when it comes back.
  REQUIRE(h.publisher.published.size() == finished);
  const auto next = processor.process(h.publisher.published.back().body);
  CHECK(next.event == StepEvent::program_finished);
}

namespace {

// Runs "isolated" steps in this process and records them; can play a crash.
class FakeIsolation : public executor::StepIsolation {
 public:
  executor::JobResult run(const executor::IsolatedStep& step, const std::atomic<bool>&) override {
    runs.push_back(step);
    if (crash) return {executor::JobResult::Kind::crashed, "the isolated process running the job was killed by signal 11"};
    return {executor::JobResult::Kind::succeeded, ""};
  }
  std::vector<executor::IsolatedStep> runs;
  bool crash = false;
};

// A worker process holding the step died: its claim expired unreleased.
void die_holding(Harness& h, const std::string& run_id, int step) {
  REQUIRE(h.store.claim(run_id, step, "dead:1:0", std::chrono::seconds(30)));
  h.store.expire(run_id);
}

}  // namespace

TEST_CASE("a step that was in a process that died runs isolated until it moves on") {
  Harness h;
  h.add("innocent");
  FakeIsolation isolation;
  const std::string body = h.create({"innocent", "innocent"});
  auto processor = h.isolating(isolation);
  // Its neighbour killed the process five times: more than max_crashes (3),
  // but none of those deaths is this step's doing.
  for (int i = 0; i < 5; ++i) die_holding(h, "run-1", 0);
  CHECK(processor.process(body).event == StepEvent::job_finished);
  REQUIRE(isolation.runs.size() == 1);
  CHECK(isolation.runs[0].step == 0);
  CHECK(isolation.runs[0].token == h.store.row("run-1").lease_token);
  CHECK(nlohmann::json::parse(isolation.runs[0].body)["runId"] == "run-1");
  CHECK(h.ran.empty());  // not in this process
  const auto row = h.store.row("run-1");
  CHECK(row.step == 1);
  CHECK(row.step_crash_count == 0);
  // Moved on: the next step runs in the worker again.
  CHECK(processor.process(h.publisher.published.at(0).body).event == StepEvent::program_finished);
  CHECK(isolation.runs.size() == 1);
  CHECK(h.ran == std::vector<std::string>{"innocent@1"});
}

TEST_CASE("a step that crashes running alone is retried, and after max_crashes stops its program") {
  Harness h;
  h.add("poison");
  FakeIsolation isolation;
  isolation.crash = true;
  const std::string body = h.create({"poison"});
  auto processor = h.isolating(isolation);
  die_holding(h, "run-1", 0);  // the first death, shared with whatever ran beside it
  for (int crash = 1; crash <= 2; ++crash) {
    const auto outcome = processor.process(body);
    CHECK(outcome.disposition == Disposition::retry);
    CHECK(outcome.event == StepEvent::job_crashed);
    const auto row = h.store.row("run-1");
    CHECK(row.step_isolated_crash_count == crash);
    CHECK_FALSE(row.errored_at);
    CHECK_FALSE(row.lease_owner);  // released: the retry is claimed at once
    CHECK_THAT(*row.error_message, Catch::Contains("signal 11"));
  }
  const auto outcome = processor.process(body);
  CHECK(outcome.event == StepEvent::program_errored);
  const auto row = h.store.row("run-1");
  CHECK(row.state() == "errored");
  CHECK_THAT(*row.error_message, Catch::Contains("crash 3 of 3 running alone") &&
                                     Catch::Contains("the program is stopped"));
  CHECK(isolation.runs.size() == 3);
  CHECK(h.ran.empty());
}

namespace {

// Counts the cancels the processor reports (programs_cancelled_total).
struct CancelCounter : metrics::Metrics {
  int cancelled = 0;
  void program_cancelled() override { ++cancelled; }
};

}  // namespace

TEST_CASE("programs_cancelled counts a cancel that hits a running step, not a takeover") {
  Harness h;
  CancelCounter counter;
  // Cancelled while its step runs: the commit no longer matches.
  h.add("a", [&](auto&, auto&, auto&) { h.store.cancel("run-1", "cancelled"); });
  h.add("b");
  // Another worker takes the step over while it runs (the claim expired).
  h.add("slow", [&](auto&, auto&, auto&) {
    h.store.expire("run-2");
    REQUIRE(h.store.claim("run-2", 0, "other worker", std::chrono::seconds(30)));
  });
  h.library = std::make_unique<executor::JobLibrary>(h.jobs);
  executor::StepProcessor processor(h.store, *h.library, h.publisher, {"q", "q-parked", true, {}},
                                    h.stop, counter);

  CHECK(processor.process(h.create({"a", "b"})).event == StepEvent::step_cancelled);
  CHECK(counter.cancelled == 1);

  CHECK(processor.process(h.create({"slow", "b"}, {}, {}, "run-2")).event ==
        StepEvent::step_superseded);
  CHECK(counter.cancelled == 1);  // a takeover is no cancel

  // The usual case still counts: the next step of a cancelled program is dropped.
  const std::string waiting = h.create({"b"}, {}, {}, "run-3");
  REQUIRE(h.store.cancel("run-3", "cancelled"));
  CHECK(processor.process(waiting).event == StepEvent::program_cancelled);
  CHECK(counter.cancelled == 2);
}
