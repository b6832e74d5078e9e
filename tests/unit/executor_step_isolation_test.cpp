// The isolated step protocol: a child process reads the step on stdin and
// writes its result to descriptor 3; ending any other way is a crash.
#include <atomic>
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "program_executor/executor/step_isolation.hpp"

using namespace program_executor::executor;

namespace {

JobResult run_script(const std::string& script, bool stop = false) {
  ProcessIsolation isolation({"/bin/sh", "-c", script});
  const std::atomic<bool> stop_requested{stop};
  return isolation.run(IsolatedStep{R"({"jobs":["a"],"runId":"r"})", 0, 1, 7}, stop_requested);
}

}  // namespace

TEST_CASE("results and steps survive their JSON form") {
  for (const auto kind : {JobResult::Kind::succeeded, JobResult::Kind::yielded,
                          JobResult::Kind::retryable, JobResult::Kind::ignorable,
                          JobResult::Kind::failed, JobResult::Kind::cancelled,
                          JobResult::Kind::infrastructure, JobResult::Kind::crashed}) {
    const JobResult back = JobResult::from_json(JobResult{kind, "why"}.to_json());
    CHECK(back.kind == kind);
    CHECK(back.message == "why");
  }
  CHECK_THROWS_AS(JobResult::from_json({{"kind", "exploded"}, {"message", ""}}), std::invalid_argument);
  CHECK_THROWS_AS(JobResult::from_json(nlohmann::json::array()), std::invalid_argument);
  const IsolatedStep step = IsolatedStep::from_json(IsolatedStep{"{}", 3, 2, 41}.to_json());
  CHECK(step.body == "{}");
  CHECK(step.step == 3);
  CHECK(step.attempt == 2);
  CHECK(step.token == 41);
  CHECK_THROWS_AS(IsolatedStep::from_json({{"body", 1}}), std::invalid_argument);
}

TEST_CASE("the child gets the step on stdin and its result is read from descriptor 3") {
  const JobResult result = run_script(R"(step=$(cat)
case "$step" in
  *'"token":7'*'runId'*|*'runId'*'"token":7'*) printf '{"kind":"retryable","message":"try later"}' >&3 ;;
  *) printf '{"kind":"failed","message":"not the step"}' >&3 ;;
esac)");
  CHECK(result.kind == JobResult::Kind::retryable);
  CHECK(result.message == "try later");
}

TEST_CASE("a child that dies, or ends without a result, is a crash") {
  const JobResult killed = run_script("cat >/dev/null; kill -SEGV $$");
  CHECK(killed.kind == JobResult::Kind::crashed);
  CHECK_THAT(killed.message, Catch::Contains("signal 11"));
  const JobResult exited = run_script("cat >/dev/null; exit 0");
  CHECK(exited.kind == JobResult::Kind::crashed);
  CHECK_THAT(exited.message, Catch::Contains("without a result"));
  const JobResult garbage = run_script("cat >/dev/null; echo nonsense >&3");
  CHECK(garbage.kind == JobResult::Kind::crashed);
  CHECK_THAT(garbage.message, Catch::Contains("unreadable result"));
}

TEST_CASE("the daemon's stop request reaches the child as SIGTERM, and is not a crash") {
  ProcessIsolation isolation({"/bin/sh", "-c",
                              R"(trap 'printf "{\"kind\":\"yielded\",\"message\":\"stopped\"}" >&3; exit 0' TERM
cat >/dev/null; while :; do sleep 0.05; done)"});
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  const JobResult result = isolation.run(IsolatedStep{"{}", 0, 1, 7}, stop);
  stopper.join();
  // The job saw the request and yielded; or, on a machine too slow to have
  // set the trap in time, the signal ended it: a stop, not a crash either way.
  CHECK(result.kind == JobResult::Kind::yielded);
}
