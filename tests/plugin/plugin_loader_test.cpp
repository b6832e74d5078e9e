// Loads the real fixture plugins (tests/fixtures): the good ones and one
// deliberately broken for every failure stage.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fixtures/fake_job_environment.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "support/plugin_paths.hpp"

namespace fs = std::filesystem;
using program_executor::plugin::JobRegistry;
using program_executor::plugin::LoadStage;
using program_executor::plugin::PluginLoadError;
using program_executor::plugin::load_directory;
using program_executor::plugin::load_plugin;
using program_executor::test::FakeJobContext;
using program_executor::test::FakeJobData;
using program_executor::test::fixture;

namespace {


// Runs `load` and returns the PluginLoadError it throws (a test failure if it
// throws nothing or something else).
template <class Load>
std::optional<PluginLoadError> load_error(Load load) {
  try {
    load();
  } catch (const PluginLoadError& e) {
    return e;
  }
  FAIL("no PluginLoadError was thrown");
  return std::nullopt;
}

// Whether the process has `file` mapped, as the kernel reports it.
bool is_mapped(const fs::path& file) {
  std::ifstream maps("/proc/self/maps");
  const std::string text{std::istreambuf_iterator<char>(maps), std::istreambuf_iterator<char>()};
  REQUIRE_FALSE(text.empty());
  return text.find(fs::canonical(file).string()) != std::string::npos;
}

nlohmann::json step_message(const nlohmann::json& program_data) {
  return {{"jobs", {"fixture.echo"}}, {"programData", program_data}, {"runId", "run-under-test"}};
}

std::vector<std::string> job_names(const JobRegistry& registry) {
  std::vector<std::string> names;
  for (const auto& job : registry.jobs()) names.push_back(job.name);
  return names;
}

}  // namespace

TEST_CASE("the good plugin loads and its jobs run", "[plugin][loader]") {
  const fs::path good = fixture("good/good.so");
  JobRegistry registry;
  load_plugin(good, registry);

  REQUIRE(registry.size() == 2);
  const auto jobs = registry.jobs();
  CHECK(jobs[0].name == "fixture.count");  // sorted by name
  CHECK(jobs[1].name == "fixture.echo");
  CHECK(jobs[0].plugin_file == good.string());
  CHECK(registry.contains("fixture.echo"));
  CHECK_FALSE(registry.contains("fixture.missing"));
  CHECK(registry.create("fixture.missing", nlohmann::json::object()) == nullptr);

  const nlohmann::json program_data = {{"customer", 42}};
  FakeJobData echo_data;
  FakeJobContext context("fixture.echo");
  auto echo = registry.create("fixture.echo", program_data);
  REQUIRE(echo);
  echo->execute(step_message(program_data), echo_data, context);
  CHECK(echo_data.data() == nlohmann::json({{"echo", program_data}}));

  FakeJobData count_data(nlohmann::json{{"count", 4}});
  registry.create("fixture.count", program_data)->execute(step_message(program_data), count_data,
                                                          context);
  CHECK(count_data.data().at("count") == 5);
}

TEST_CASE("load_directory loads the .so files and ignores other files", "[plugin][loader]") {
  REQUIRE(fs::exists(fixture("good/README.txt")));
  const JobRegistry registry = load_directory(fixture("good"));
  CHECK(job_names(registry) == std::vector<std::string>{"fixture.count", "fixture.echo"});
}

TEST_CASE("a directory without plugins gives an empty registry", "[plugin][loader]") {
  REQUIRE(fs::exists(fixture("readme_only/README.txt")));
  CHECK(load_directory(fixture("readme_only")).size() == 0);
}

TEST_CASE("a directory that cannot be scanned fails at the scan stage", "[plugin][loader]") {
  const fs::path missing = fixture("no_such_directory");
  auto error = load_error([&] { load_directory(missing); });
  REQUIRE(error);
  CHECK(error->stage() == LoadStage::scan);
  CHECK(error->file() == missing);
  CHECK_THAT(error->what(), Catch::Contains(missing.string() + ": scan: "));

  const fs::path not_a_directory = fixture("good/good.so");
  error = load_error([&] { load_directory(not_a_directory); });
  REQUIRE(error);
  CHECK(error->stage() == LoadStage::scan);
  CHECK_THAT(error->what(), Catch::Contains("not a directory"));
}

TEST_CASE("every broken plugin fails at its stage with its problem, adding nothing",
          "[plugin][loader]") {
  struct Case {
    const char* file;
    LoadStage stage;
    std::string problem;
  };
  const std::string daemon_json = std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                                  std::to_string(NLOHMANN_JSON_VERSION_MINOR);
  const Case broken = GENERATE_COPY(values<Case>({
      {"not_elf/not_elf.so", LoadStage::open, "file too short"},
      {"no_such_dir/missing.so", LoadStage::open, "No such file or directory"},
      {"unresolved/unresolved.so", LoadStage::open,
       "undefined symbol: program_executor_fixture_missing_function"},
      {"no_entry/no_entry.so", LoadStage::entry,
       "does not export program_executor_abi, program_executor_register"},
      {"abi_only/abi_only.so", LoadStage::entry, "does not export program_executor_register "},
      {"wrong_abi/wrong_abi.so", LoadStage::abi,
       "built for plugin ABI 999, this daemon has " + std::to_string(PROGRAM_EXECUTOR_ABI_VERSION)},
      {"wrong_json/wrong_json.so", LoadStage::abi,
       "built with JSON library " + std::to_string(NLOHMANN_JSON_VERSION_MAJOR) +
           ".10, daemon has " + daemon_json},
      {"throws_on_register/throws_on_register.so", LoadStage::register_jobs,
       "registration threw: fixture cannot reach its license server"},
      {"no_jobs/no_jobs.so", LoadStage::register_jobs, "the plugin registered no jobs"},
      {"bad_name/bad_name.so", LoadStage::register_jobs, "invalid job name 'send mail'"},
      {"null_factory/null_factory.so", LoadStage::register_jobs,
       "job 'fixture.no_factory' has no factory"},
  }));
  const fs::path file = fixture(broken.file);
  INFO(file.string());

  // A registry that already holds good.so's jobs: a failure must leave it as it was.
  JobRegistry registry;
  load_plugin(fixture("good/good.so"), registry);
  const auto before = job_names(registry);

  const auto error = load_error([&] { load_plugin(file, registry); });
  REQUIRE(error);
  CHECK(error->stage() == broken.stage);
  CHECK(error->file() == file);
  const std::string what = error->what();
  CHECK_THAT(what, Catch::StartsWith(file.string() + ": " +
                                     program_executor::plugin::to_string(broken.stage) + ": "));
  CHECK_THAT(what, Catch::Contains(broken.problem));
  // Boost.DLL appends a stale errno text to dlerror's; it must not leak out.
  CHECK_THAT(what, !Catch::Contains("Bad file descriptor") && !Catch::Contains("Illegal seek"));
  CHECK(job_names(registry) == before);
}

TEST_CASE("load_directory stops at the first broken plugin", "[plugin][loader]") {
  const auto error = load_error([] { load_directory(fixture("not_elf")); });
  REQUIRE(error);
  CHECK(error->stage() == LoadStage::open);
  CHECK(error->file() == fixture("not_elf/not_elf.so"));
}

TEST_CASE("a job name registered twice names both plugin files", "[plugin][loader]") {
  const fs::path first = fixture("duplicate/a_first.so");
  const fs::path second = fixture("duplicate/b_second.so");

  SECTION("through load_directory, which loads in name order") {
    const auto error = load_error([] { load_directory(fixture("duplicate")); });
    REQUIRE(error);
    CHECK(error->stage() == LoadStage::duplicate);
    CHECK(error->file() == second);
    CHECK_THAT(error->what(), Catch::Contains("'fixture.echo'") &&
                                  Catch::Contains(first.string() + " and " + second.string()));
  }

  SECTION("through load_plugin, leaving the first plugin's jobs only") {
    JobRegistry registry;
    load_plugin(first, registry);
    const auto error = load_error([&] { load_plugin(second, registry); });
    REQUIRE(error);
    CHECK(error->stage() == LoadStage::duplicate);
    // b_second.so registers a unique name before the clashing one: all or nothing.
    CHECK_FALSE(registry.contains("fixture.unique_to_duplicate"));
    CHECK(job_names(registry) == std::vector<std::string>{"fixture.count", "fixture.echo"});
    for (const auto& job : registry.jobs()) CHECK(job.plugin_file == first.string());
  }

  SECTION("the same file loaded twice") {
    JobRegistry registry;
    const fs::path good = fixture("good/good.so");
    load_plugin(good, registry);
    const auto error = load_error([&] { load_plugin(good, registry); });
    REQUIRE(error);
    CHECK(error->stage() == LoadStage::duplicate);
    CHECK(registry.size() == 2);
  }
}

TEST_CASE("a plugin stays mapped while a job object from it lives", "[plugin][loader]") {
  const fs::path good = fixture("good/good.so");
  REQUIRE_FALSE(is_mapped(good));

  std::shared_ptr<program_executor::sdk::Job> job;
  {
    JobRegistry registry;
    load_plugin(good, registry);
    CHECK(is_mapped(good));
    job = registry.create("fixture.count", nlohmann::json::object());
    REQUIRE(job);
  }
  // The registry is gone; the job alone keeps the library, and still works.
  CHECK(is_mapped(good));
  FakeJobData data;
  FakeJobContext context("fixture.count");
  job->execute(step_message(nlohmann::json::object()), data, context);
  CHECK(data.data().at("count") == 1);

  job.reset();
  CHECK_FALSE(is_mapped(good));
}

TEST_CASE("a registry alone keeps its plugins mapped until destroyed", "[plugin][loader]") {
  const fs::path good = fixture("good/good.so");
  REQUIRE_FALSE(is_mapped(good));
  {
    JobRegistry registry = load_directory(fixture("good"));
    CHECK(is_mapped(good));
  }
  CHECK_FALSE(is_mapped(good));

  // A failed load maps nothing for good either.
  JobRegistry registry;
  CHECK_THROWS_AS(load_plugin(fixture("throws_on_register/throws_on_register.so"), registry),
                  PluginLoadError);
  CHECK_FALSE(is_mapped(fixture("throws_on_register/throws_on_register.so")));
}
