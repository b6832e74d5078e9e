// Loads the demo plugin (plugins/demo) through the real loader and runs each
// of its jobs against in-memory job data and context.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fixtures/fake_job_environment.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "support/plugin_paths.hpp"

namespace fs = std::filesystem;
namespace sdk = program_executor::sdk;
using nlohmann::json;
using program_executor::plugin::JobRegistry;
using program_executor::test::FakeJobContext;
using program_executor::test::FakeJobData;

namespace {

const fs::path demo_plugin = program_executor::test::demo_plugin();

JobRegistry load_demo() {
  JobRegistry registry;
  program_executor::plugin::load_plugin(demo_plugin, registry);
  return registry;
}

// Runs one execution of `name` as the daemon does: a new job object from the
// program data, the step message, this execution's job data and context.
void run(const JobRegistry& registry, const std::string& name, FakeJobData& job_data,
         FakeJobContext& context, const json& program_data = json::object()) {
  auto job = registry.create(name, program_data);
  REQUIRE(job);
  const json message = {
      {"jobs", {name}}, {"programData", program_data}, {"runId", "run-under-test"}};
  job->execute(message, job_data, context);
}

using Clock = std::chrono::steady_clock;

}  // namespace

TEST_CASE("the demo plugin registers its nine jobs", "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  std::vector<std::string> names;
  for (const auto& job : registry.jobs()) {
    names.push_back(job.name);
    CHECK(job.plugin_file == demo_plugin.string());
  }
  CHECK(names == std::vector<std::string>{"demo.count", "demo.fail", "demo.flaky", "demo.ignorable", "demo.log",
                                          "demo.noop", "demo.paginate", "demo.sleep", "demo.spawn"});
}

TEST_CASE("demo.sleep sleeps for ms, and gives way to a shutdown if interruptible",
          "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobContext context("demo.sleep");

  FakeJobData data(json{{"ms", 120}});
  const auto started = Clock::now();
  run(registry, "demo.sleep", data, context);
  CHECK(Clock::now() - started >= std::chrono::milliseconds(120));

  context.stop = true;
  FakeJobData stubborn(json{{"ms", 50}});  // not interruptible: sleeps through a shutdown
  const auto stubborn_started = Clock::now();
  run(registry, "demo.sleep", stubborn, context);
  CHECK(Clock::now() - stubborn_started >= std::chrono::milliseconds(50));

  FakeJobData long_sleep(json{{"ms", 60000}, {"interruptible", true}});
  const auto interrupted = Clock::now();
  CHECK_THROWS_AS(run(registry, "demo.sleep", long_sleep, context), sdk::RetryableError);
  CHECK(Clock::now() - interrupted < std::chrono::seconds(5));

  FakeJobData bad(json{{"ms", "soon"}});
  CHECK_THROWS_WITH(run(registry, "demo.sleep", bad, context),
                    Catch::Contains("demo.sleep") && Catch::Contains("'ms'"));
}

TEST_CASE("demo.count counts its executions in its job data", "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobData data;
  FakeJobContext context("demo.count");
  run(registry, "demo.count", data, context);
  run(registry, "demo.count", data, context);
  CHECK(data.get() == json{{"runs", 2}});
}

TEST_CASE("demo.log logs the program data", "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobContext context("demo.log");
  FakeJobData data;
  run(registry, "demo.log", data, context, {{"customer", 42}});
  REQUIRE(context.logs.size() == 1);
  CHECK(context.logs[0].level == sdk::LogLevel::info);
  CHECK_THAT(context.logs[0].message, Catch::Contains(R"({"customer":42})"));
}

TEST_CASE("demo.fail fails with its message", "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobContext context("demo.fail");
  FakeJobData defaults;
  CHECK_THROWS_WITH(run(registry, "demo.fail", defaults, context), "demo.fail failed");
  FakeJobData custom(json{{"message", "disk full"}});
  CHECK_THROWS_WITH(run(registry, "demo.fail", custom, context), "disk full");
  // A plain failure, not one of the SDK's special outcomes.
  try {
    run(registry, "demo.fail", defaults, context);
  } catch (const sdk::RetryableError&) {
    FAIL("demo.fail threw RetryableError");
  } catch (const sdk::IgnorableError&) {
    FAIL("demo.fail threw IgnorableError");
  } catch (const std::runtime_error&) {
  }
}

TEST_CASE("demo.flaky fails retryably `failures` times, then succeeds", "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobContext context("demo.flaky");
  json stored = {{"failures", 2}};
  for (int attempt = 1; attempt <= 2; ++attempt) {
    FakeJobData data(stored);
    try {
      run(registry, "demo.flaky", data, context);
      FAIL("attempt " << attempt << " succeeded");
    } catch (const sdk::RetryableError& e) {
      CHECK(std::string(e.what()) ==
            "flaky failure " + std::to_string(attempt) + " of 2");
    }
    CHECK(data.data().at("failed") == attempt);
    stored = data.data();  // what the daemon's table holds for the retry
  }
  FakeJobData last(stored);
  run(registry, "demo.flaky", last, context);
  CHECK(last.data().at("failed") == 2);
}

TEST_CASE("demo.ignorable ends the program quietly", "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobContext context("demo.ignorable");
  FakeJobData data(json{{"message", "customer deleted"}});
  CHECK_THROWS_AS(run(registry, "demo.ignorable", data, context), sdk::IgnorableError);
  CHECK_THROWS_WITH(run(registry, "demo.ignorable", data, context), "customer deleted");
}

TEST_CASE("demo.paginate yields when over time and resumes where it stopped",
          "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobContext context("demo.paginate");

  SECTION("without a limit it does every page in one execution") {
    FakeJobData data(json{{"pages", 3}, {"page_ms", 1}});
    run(registry, "demo.paginate", data, context);
    CHECK(data.data().at("page") == 3);
    CHECK(data.checkpoints() == 3);
  }

  SECTION("with a limit it takes several executions, each making progress") {
    // 5 pages of 30 ms against a 50 ms limit: no execution can do them all,
    // and the second page of any execution ends past the limit.
    json stored = {{"pages", 5}, {"page_ms", 30}, {"max_execution_ms", 50}};
    int executions = 0;
    bool finished = false;
    while (!finished && executions < 10) {
      FakeJobData data(stored);  // a new execution: its clock starts now
      const int page_before = stored.value("page", 0);
      ++executions;
      try {
        run(registry, "demo.paginate", data, context);
        finished = true;
      } catch (const sdk::ExecutionTimeExceeded&) {
        CHECK(data.checkpoints() <= 2);
      }
      const int page_after = data.data().at("page");
      CHECK(page_after > page_before);  // the page done before yielding was saved
      stored = data.data();
    }
    CHECK(finished);
    CHECK(executions >= 3);
    CHECK(stored["page"] == 5);
  }

  SECTION("a shutdown stops it retryably, keeping the pages done") {
    context.stop = true;
    FakeJobData data(json{{"pages", 5}, {"page_ms", 10000}, {"page", 2}});
    CHECK_THROWS_AS(run(registry, "demo.paginate", data, context), sdk::RetryableError);
    CHECK(data.data().at("page") == 2);
  }
}

TEST_CASE("demo.spawn creates the program described by its job data", "[plugin][demo]") {
  const JobRegistry registry = load_demo();
  FakeJobContext context("demo.spawn");
  const json settings = {{"jobs", {"demo.log", "demo.sleep"}},
                         {"program_data", {{"customer", 42}}},
                         {"job_data", {{"demo.sleep", {{"ms", 5}}}}}};
  FakeJobData data(settings);
  run(registry, "demo.spawn", data, context);

  REQUIRE(context.requests.size() == 1);
  const sdk::ProgramRequest& request = context.requests[0];
  CHECK(request.jobs == std::vector<std::string>{"demo.log", "demo.sleep"});
  CHECK(request.program_data == settings["program_data"]);
  CHECK(request.job_data == settings["job_data"]);
  CHECK(data.data().at("spawned_run_id") == "spawned-1");

  // Run again (as after a redelivery): the stored id prevents a second program.
  FakeJobData again(data.data());
  run(registry, "demo.spawn", again, context);
  CHECK(context.requests.size() == 1);

  FakeJobData no_jobs(json{{"program_data", json::object()}});
  CHECK_THROWS_WITH(run(registry, "demo.spawn", no_jobs, context), Catch::Contains("'jobs'"));
  CHECK(context.requests.size() == 1);
}

TEST_CASE("the demo plugin is unmapped once its registry and jobs are gone", "[plugin][demo]") {
  auto mapped = [] {
    std::ifstream maps("/proc/self/maps");
    const std::string text{std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>()};
    return text.find(fs::canonical(demo_plugin).string()) != std::string::npos;
  };
  {
    const JobRegistry registry = load_demo();
    FakeJobContext context("demo.fail");
    FakeJobData data;
    // Thrown by plugin code and caught here: the exception must not outlive
    // the library either, which the scope guarantees.
    CHECK_THROWS(run(registry, "demo.fail", data, context));
    CHECK(mapped());
  }
  CHECK_FALSE(mapped());
}
