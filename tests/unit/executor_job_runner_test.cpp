// The job thread's batching: queued deliveries run together, slow ones alone.
#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "program_executor/executor/job_runner.hpp"

using namespace program_executor;
using executor::Disposition;
using executor::FairnessPolicy;
using executor::JobRunner;
using executor::StepEvent;
using executor::StepOutcome;
using namespace std::chrono_literals;

namespace {

// A Process that records its batches and holds the first one until opened.
struct Recorder {
  std::mutex mutex;
  std::condition_variable opened;
  bool open = false;
  std::chrono::milliseconds per_body{0};
  std::vector<std::vector<std::string>> batches;
  /// The event of a body's outcome, to tell whose outcome is whose;
  /// job.finished for the bodies not named here.
  std::map<std::string, StepEvent> events;

  JobRunner::Process process() {
    return [this](const std::vector<std::string>& bodies) {
      std::unique_lock lock(mutex);
      batches.push_back(bodies);
      opened.wait(lock, [this] { return open; });
      lock.unlock();
      std::this_thread::sleep_for(per_body * bodies.size());
      std::vector<StepOutcome> outcomes;
      for (const auto& body : bodies) {
        const auto named = events.find(body);
        outcomes.push_back(
            {Disposition::ack, named == events.end() ? StepEvent::job_finished : named->second});
      }
      return outcomes;
    };
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      open = true;
    }
    opened.notify_all();
  }
  std::size_t started() {
    std::lock_guard lock(mutex);
    return batches.size();
  }
};

bool readable(int fd) {
  pollfd ready{fd, POLLIN, 0};
  return ::poll(&ready, 1, 0) == 1;
}

void wait_for_start(Recorder& recorder, std::size_t batches) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (recorder.started() < batches && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(recorder.started() >= batches);
}

}  // namespace

TEST_CASE("a lone delivery starts at once, those queued meanwhile run together, up to the limit") {
  Recorder recorder;
  recorder.events = {{"one", StepEvent::program_finished}, {"m6", StepEvent::step_busy}};
  // The first batch is held open while the test queues the others, which on a
  // loaded machine takes longer than the default policy's slow step: only
  // batching is tested here (the next case tests the slow rule).
  JobRunner runner(recorder.process(), 3, FairnessPolicy{.slow_step = std::chrono::seconds(10)});
  CHECK_FALSE(readable(runner.wakeup_fd()));
  runner.submit(1, "one");
  wait_for_start(recorder, 1);  // runs alone, held open
  for (std::uint64_t tag = 2; tag <= 6; ++tag) runner.submit(tag, "m" + std::to_string(tag));
  CHECK(runner.queued() == 5);
  CHECK_FALSE(runner.idle());
  recorder.release();
  runner.wait_idle();
  CHECK(recorder.batches == std::vector<std::vector<std::string>>{
                                {"one"}, {"m2", "m3", "m4"}, {"m5", "m6"}});
  CHECK(readable(runner.wakeup_fd()));
  const auto finished = runner.take_finished();
  REQUIRE(finished.size() == 6);
  for (std::size_t i = 0; i < finished.size(); ++i) CHECK(finished[i].first == i + 1);
  CHECK(finished[0].second.event == StepEvent::program_finished);
  for (std::size_t i = 1; i < 5; ++i) CHECK(finished[i].second.event == StepEvent::job_finished);
  CHECK(finished[5].second.event == StepEvent::step_busy);
  CHECK_FALSE(readable(runner.wakeup_fd()));
  CHECK(runner.take_finished().empty());
}

TEST_CASE("after a slow batch, steps run one at a time") {
  Recorder recorder;
  recorder.per_body = 20ms;  // slower than batching is worth
  JobRunner runner(recorder.process(), 8);
  runner.submit(1, "slow");
  wait_for_start(recorder, 1);
  for (std::uint64_t tag = 2; tag <= 4; ++tag) runner.submit(tag, "m" + std::to_string(tag));
  recorder.release();
  runner.wait_idle();
  CHECK(recorder.batches ==
        std::vector<std::vector<std::string>>{{"slow"}, {"m2"}, {"m3"}, {"m4"}});
}

TEST_CASE("deliveries not started can be taken back, the running one finishes") {
  Recorder recorder;
  JobRunner runner(recorder.process(), 4);
  runner.submit(7, "running");
  wait_for_start(recorder, 1);
  runner.submit(8, "queued");
  runner.submit(9, "queued too");
  std::chrono::steady_clock::time_point since;
  CHECK(runner.running(&since));
  CHECK(since <= std::chrono::steady_clock::now());
  CHECK(runner.take_unstarted() == std::vector<std::uint64_t>{8, 9});
  recorder.release();
  runner.wait_idle();
  const auto finished = runner.take_finished();
  REQUIRE(finished.size() == 1);
  CHECK(finished[0].first == 7);
  CHECK(recorder.batches.size() == 1);
}
