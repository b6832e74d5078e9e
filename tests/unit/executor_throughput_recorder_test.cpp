// ThroughputRecorder: forwards every Metrics call to the inner Metrics, counts
// job executions of every outcome, and hands the count to the store only in
// flush(), keeping it when the store fails (no database needed).
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "program_executor/executor/throughput_recorder.hpp"

using namespace program_executor;
using metrics::JobOutcome;

namespace {

// Counts each call by name.
class CountingMetrics : public metrics::Metrics {
 public:
  void program_created() override { note("program_created"); }
  void program_finished() override { note("program_finished"); }
  void program_errored() override { note("program_errored"); }
  void program_cancelled() override { note("program_cancelled"); }
  void job_executed(std::string_view job, JobOutcome outcome, double seconds) override {
    note("job_executed " + std::string(job) + " " + std::string(metrics::to_string(outcome)) +
         " " + std::to_string(static_cast<int>(seconds * 1000)));
  }
  void step_retried() override { note("step_retried"); }
  void step_started() override { note("step_started"); }
  void step_ended() override { note("step_ended"); }
  void message_parked() override { note("message_parked"); }
  void message_duplicate() override { note("message_duplicate"); }
  void program_recovered() override { note("program_recovered"); }
  void broker_reconnected() override { note("broker_reconnected"); }
  void database_reconnected() override { note("database_reconnected"); }
  void worker_up(std::string_view host, long long pid, int index) override {
    note("worker_up " + std::string(host) + ":" + std::to_string(pid) + ":" + std::to_string(index));
  }
  void worker_down(int index) override { note("worker_down " + std::to_string(index)); }

  std::map<std::string, int> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  void note(const std::string& name) {
    std::lock_guard lock(mutex_);
    ++calls_[name];
  }
  mutable std::mutex mutex_;
  std::map<std::string, int> calls_;
};

void call_everything_but_jobs(metrics::Metrics& m) {
  m.program_created();
  m.program_finished();
  m.program_errored();
  m.program_cancelled();
  m.step_retried();
  m.step_started();
  m.step_ended();
  m.message_parked();
  m.message_duplicate();
  m.program_recovered();
  m.broker_reconnected();
  m.database_reconnected();
  m.worker_up("host-a", 42, 3);
  m.worker_down(3);
}

}  // namespace

TEST_CASE("the recorder forwards every call to the inner metrics", "[executor][throughput]") {
  CountingMetrics inner;
  executor::ThroughputRecorder recorder(inner);
  metrics::Metrics& as_metrics = recorder;
  call_everything_but_jobs(as_metrics);
  as_metrics.job_executed("demo.log", JobOutcome::success, 0.25);
  CHECK(inner.calls() == std::map<std::string, int>{{"program_created", 1},
                                                     {"program_finished", 1},
                                                     {"program_errored", 1},
                                                     {"program_cancelled", 1},
                                                     {"job_executed demo.log success 250", 1},
                                                     {"step_retried", 1},
                                                     {"step_started", 1},
                                                     {"step_ended", 1},
                                                     {"message_parked", 1},
                                                     {"message_duplicate", 1},
                                                     {"program_recovered", 1},
                                                     {"broker_reconnected", 1},
                                                     {"database_reconnected", 1},
                                                     {"worker_up host-a:42:3", 1},
                                                     {"worker_down 3", 1}});
}

TEST_CASE("the recorder counts job executions of every outcome, and nothing else",
          "[executor][throughput]") {
  CountingMetrics inner;
  executor::ThroughputRecorder recorder(inner);
  call_everything_but_jobs(recorder);
  CHECK(recorder.pending() == 0);
  for (const JobOutcome outcome : {JobOutcome::success, JobOutcome::retry, JobOutcome::yield,
                                   JobOutcome::ignorable, JobOutcome::failed,
                                   JobOutcome::skipped}) {
    recorder.job_executed("j", outcome, 0.0);
  }
  CHECK(recorder.pending() == 6);
  CHECK(inner.calls().at("job_executed j skipped 0") == 1);
}

TEST_CASE("an owning recorder forwards to the metrics it owns", "[executor][throughput]") {
  auto owned = std::make_unique<CountingMetrics>();
  CountingMetrics& inner = *owned;
  executor::ThroughputRecorder recorder(std::move(owned));
  recorder.step_started();
  recorder.job_executed("j", JobOutcome::success, 0.0);
  CHECK(inner.calls().at("step_started") == 1);
  CHECK(recorder.pending() == 1);

  executor::ThroughputRecorder without(std::unique_ptr<metrics::Metrics>{});
  without.job_executed("j", JobOutcome::success, 0.0);  // a Metrics counting nothing inside
  CHECK(without.pending() == 1);
}

TEST_CASE("flush hands the count over once, and keeps it when recording fails",
          "[executor][throughput]") {
  executor::ThroughputRecorder recorder(metrics::no_metrics());
  std::vector<long long> recorded;
  const auto record = [&](long long steps) { recorded.push_back(steps); };

  CHECK(recorder.flush(record));
  CHECK(recorded.empty());  // nothing counted: the store is not called

  for (int i = 0; i < 3; ++i) recorder.job_executed("j", JobOutcome::success, 0.0);
  CHECK(recorder.flush(record));
  CHECK(recorded == std::vector<long long>{3});
  CHECK(recorder.pending() == 0);
  CHECK(recorder.flush(record));
  CHECK(recorded.size() == 1);

  recorder.job_executed("j", JobOutcome::failed, 0.0);
  recorder.job_executed("j", JobOutcome::retry, 0.0);
  CHECK_FALSE(recorder.flush([](long long) { throw std::runtime_error("database is gone"); }));
  CHECK(recorder.pending() == 2);
  CHECK_FALSE(recorder.flush([](long long) { throw 42; }));  // not even a std::exception
  CHECK(recorder.pending() == 2);
  recorder.job_executed("j", JobOutcome::success, 0.0);
  CHECK(recorder.flush(record));
  CHECK(recorded == std::vector<long long>{3, 3});
  CHECK(recorder.pending() == 0);
}

TEST_CASE("counting from many threads while flushing loses no step", "[executor][throughput]") {
  executor::ThroughputRecorder recorder(metrics::no_metrics());
  long long recorded = 0;
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) recorder.job_executed("j", JobOutcome::success, 0.0);
    });
  }
  for (int i = 0; i < 100; ++i) recorder.flush([&](long long steps) { recorded += steps; });
  for (auto& worker : workers) worker.join();
  recorder.flush([&](long long steps) { recorded += steps; });
  CHECK(recorded == 40000);
}
