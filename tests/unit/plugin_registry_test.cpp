// JobRegistry with jobs compiled into the test: no plugin files, no I/O.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fixtures/fake_job_environment.hpp"
#include "program_executor/plugin/job_registry.hpp"

namespace sdk = program_executor::sdk;
using program_executor::plugin::DuplicateJobError;
using program_executor::plugin::JobOrigin;
using program_executor::plugin::JobRegistry;

namespace {

/// Records the program data it was created from and every execution.
class RecordingJob final : public sdk::Job {
 public:
  RecordingJob(nlohmann::json program_data, std::shared_ptr<std::vector<std::string>> events)
      : program_data_(std::move(program_data)), events_(std::move(events)) {}
  ~RecordingJob() override {
    if (events_) events_->push_back("job destroyed");
  }
  void execute(const nlohmann::json&, sdk::JobDataHandler& job_data, sdk::JobContext&) override {
    job_data.merge({{"program_data", program_data_}});
  }

 private:
  nlohmann::json program_data_;
  std::shared_ptr<std::vector<std::string>> events_;
};

/// Stands in for a loaded shared library: logs when the last reference goes.
class FakeLibrary {
 public:
  explicit FakeLibrary(std::shared_ptr<std::vector<std::string>> events)
      : events_(std::move(events)) {}
  FakeLibrary(const FakeLibrary&) = delete;
  FakeLibrary& operator=(const FakeLibrary&) = delete;
  ~FakeLibrary() { events_->push_back("library released"); }

 private:
  std::shared_ptr<std::vector<std::string>> events_;
};

sdk::JobFactory recording_factory(std::shared_ptr<std::vector<std::string>> events = nullptr) {
  return [events](const nlohmann::json& program_data) -> std::unique_ptr<sdk::Job> {
    return std::make_unique<RecordingJob>(program_data, events);
  };
}

}  // namespace

TEST_CASE("jobs are found by name and listed in name order", "[unit][registry]") {
  JobRegistry registry;
  CHECK(registry.size() == 0);
  registry.add("b.job", recording_factory(), JobOrigin{"b.so", nullptr});
  registry.add("a.job", recording_factory(), JobOrigin{"a.so", nullptr});

  CHECK(registry.size() == 2);
  CHECK(registry.contains("a.job"));
  CHECK_FALSE(registry.contains("c.job"));
  const auto jobs = registry.jobs();
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].name == "a.job");
  CHECK(jobs[0].plugin_file == "a.so");
  CHECK(jobs[1].name == "b.job");
  CHECK(jobs[1].plugin_file == "b.so");
}

TEST_CASE("create passes the program data to the factory", "[unit][registry]") {
  JobRegistry registry;
  registry.add("a.job", recording_factory(), JobOrigin{"a.so", nullptr});

  const nlohmann::json program_data = {{"order", 7}};
  auto job = registry.create("a.job", program_data);
  REQUIRE(job);
  program_executor::test::FakeJobData data;
  program_executor::test::FakeJobContext context("a.job");
  job->execute(nlohmann::json::object(), data, context);
  CHECK(data.data().at("program_data") == program_data);

  CHECK(registry.create("unknown.job", program_data) == nullptr);
}

TEST_CASE("a duplicate name is refused naming both plugin files", "[unit][registry]") {
  JobRegistry registry;
  registry.add("a.job", recording_factory(), JobOrigin{"/plugins/first.so", nullptr});
  try {
    registry.add("a.job", recording_factory(), JobOrigin{"/plugins/second.so", nullptr});
    FAIL("no DuplicateJobError");
  } catch (const DuplicateJobError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("'a.job'") &&
                                          Catch::Contains("/plugins/first.so") &&
                                          Catch::Contains("/plugins/second.so"));
  }
  CHECK(registry.jobs().at(0).plugin_file == "/plugins/first.so");
}

TEST_CASE("an empty factory is refused", "[unit][registry]") {
  JobRegistry registry;
  CHECK_THROWS_WITH(registry.add("a.job", nullptr, JobOrigin{"a.so", nullptr}),
                    Catch::Contains("empty factory"));
  CHECK_FALSE(registry.contains("a.job"));
}

TEST_CASE("factory failures reach the caller and are not mistaken for unknown names",
          "[unit][registry]") {
  JobRegistry registry;
  registry.add("throws.job",
               [](const nlohmann::json&) -> std::unique_ptr<sdk::Job> {
                 throw std::runtime_error("bad program data");
               },
               JobOrigin{"t.so", nullptr});
  registry.add("null.job", [](const nlohmann::json&) { return std::unique_ptr<sdk::Job>(); },
               JobOrigin{"n.so", nullptr});

  CHECK_THROWS_WITH(registry.create("throws.job", nlohmann::json::object()), "bad program data");
  CHECK_THROWS_WITH(registry.create("null.job", nlohmann::json::object()),
                    Catch::Contains("'null.job'") && Catch::Contains("returned no object"));
}

TEST_CASE("a job keeps its library until it is destroyed, and is destroyed first",
          "[unit][registry]") {
  auto events = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<sdk::Job> job;
  {
    JobRegistry registry;
    registry.add("a.job", recording_factory(events),
                 JobOrigin{"a.so", std::make_shared<FakeLibrary>(events)});
    job = registry.create("a.job", nlohmann::json::object());
    REQUIRE(job);
  }
  CHECK(events->empty());  // the registry is gone, the library is not

  auto second_owner = job;  // copies share one deleter: the last one releases
  job.reset();
  CHECK(events->empty());
  second_owner.reset();
  CHECK(*events == std::vector<std::string>{"job destroyed", "library released"});
}

TEST_CASE("the registry destroys each factory before releasing its library",
          "[unit][registry]") {
  // A plugin's factory is code inside the plugin: destroying it after the
  // library is unmapped would jump into unmapped memory.
  auto events = std::make_shared<std::vector<std::string>>();
  {
    struct FactoryState {
      std::shared_ptr<std::vector<std::string>> events;
      ~FactoryState() { events->push_back("factory destroyed"); }
    };
    auto state = std::make_shared<FactoryState>();
    state->events = events;
    JobRegistry registry;
    registry.add("a.job",
                 [state](const nlohmann::json& program_data) -> std::unique_ptr<sdk::Job> {
                   return std::make_unique<RecordingJob>(program_data, nullptr);
                 },
                 JobOrigin{"a.so", std::make_shared<FakeLibrary>(events)});
    state.reset();
    CHECK(events->empty());
  }
  CHECK(*events == std::vector<std::string>{"factory destroyed", "library released"});
}
