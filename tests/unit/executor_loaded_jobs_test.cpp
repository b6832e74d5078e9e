// What `jobs` makes of the plugin directory against the records of the
// running daemons (issue 19, item 4): the comparison, and the record file.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "program_executor/executor/loaded_jobs_record.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using executor::JobLoadState;
namespace fs = std::filesystem;

namespace {

executor::LoadedJobsRecord daemon_with(long long pid, std::vector<plugin::RegisteredJob> jobs,
                                       std::vector<executor::LoadedPlugin> plugins) {
  executor::LoadedJobsRecord record;
  record.pid = pid;
  record.config = "/etc/program-executor/config.yaml";
  record.jobs = std::move(jobs);
  record.plugins = std::move(plugins);
  return record;
}

const executor::LoadedPlugin demo_v1{"/plugins/demo.so", 100, 1};
const executor::LoadedPlugin demo_v2{"/plugins/demo.so", 120, 2};
const executor::LoadedPlugin extra{"/plugins/extra.so", 50, 1};

JobLoadState state_of(const std::vector<executor::JobAvailability>& rows, const std::string& job) {
  for (const auto& row : rows) {
    if (row.job == job) return row.state;
  }
  FAIL("no row for " << job);
  return JobLoadState::no_daemon;
}

}  // namespace

TEST_CASE("a job on disk that a running daemon lacks is not loaded, one it has is loaded") {
  const std::vector<plugin::RegisteredJob> disk = {{"demo.a", demo_v1.file},
                                                   {"extra.b", extra.file}};
  const auto rows = executor::compare_jobs(
      disk, {demo_v1, extra},
      {daemon_with(11, {{"demo.a", demo_v1.file}}, {demo_v1}),
       daemon_with(12, {{"demo.a", demo_v1.file}, {"extra.b", extra.file}}, {demo_v1, extra})});
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].job == "demo.a");
  CHECK(rows[0].state == JobLoadState::loaded);
  CHECK(rows[1].state == JobLoadState::not_loaded);
  CHECK(rows[1].missing_in == std::vector<long long>{11});  // only the daemon not reloaded
}

TEST_CASE("a plugin file replaced since the load shows its jobs as changed") {
  const auto rows =
      executor::compare_jobs({{"demo.a", demo_v2.file}}, {demo_v2},
                             {daemon_with(11, {{"demo.a", demo_v1.file}}, {demo_v1})});
  CHECK(state_of(rows, "demo.a") == JobLoadState::changed);
}

TEST_CASE(
    "a job a daemon still runs but the directory dropped is removed, and without daemons nothing "
    "is loaded") {
  const auto rows = executor::compare_jobs(
      {{"demo.a", demo_v1.file}}, {demo_v1},
      {daemon_with(11, {{"demo.a", demo_v1.file}, {"gone.c", "/plugins/gone.so"}}, {demo_v1})});
  CHECK(state_of(rows, "gone.c") == JobLoadState::removed);
  CHECK(state_of(rows, "demo.a") == JobLoadState::loaded);

  const auto alone = executor::compare_jobs({{"demo.a", demo_v1.file}}, {demo_v1}, {});
  CHECK(state_of(alone, "demo.a") == JobLoadState::no_daemon);
  CHECK(std::string(executor::to_string(JobLoadState::not_loaded)) == "not loaded");
}

TEST_CASE(
    "the record is written readable by the group, found by its config, and removed by its pid") {
  test::TemporaryDirectory root;
  const fs::path instance = root.path() / "exports";
  fs::create_directories(instance);
  const fs::path config = root.path() / "exports.yaml";
  std::ofstream(config) << "# config\n";

  const mode_t old_umask = ::umask(0077);  // as the unit's UMask=0077
  executor::LoadedJobsRecord record =
      daemon_with(::getpid(), {{"demo.a", demo_v1.file}}, {demo_v1});
  record.config = fs::absolute(config).string();
  record.started_at = record.loaded_at = "2026-01-01T00:00:00.000Z";
  record.reloads = 2;
  record.plugin_directory = "/plugins";
  executor::write_loaded_jobs(instance, record);
  ::umask(old_umask);
  const fs::path file = instance / executor::loaded_jobs_file_name;
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);

  std::vector<std::string> problems;
  // Found one level below the root, by the config it runs, and not for another config.
  const auto found = executor::find_loaded_jobs({root.path()}, config, problems);
  REQUIRE(found.size() == 1);
  CHECK(found[0].pid == ::getpid());
  CHECK(found[0].reloads == 2);
  CHECK(found[0].jobs.size() == 1);
  CHECK(found[0].plugins == std::vector<executor::LoadedPlugin>{demo_v1});
  CHECK(executor::find_loaded_jobs({root.path()}, root.path() / "other.yaml", problems).empty());
  CHECK(problems.empty());
  CHECK(executor::process_alive(::getpid()));

  // A file that is no record is named, not fatal.
  fs::create_directories(root.path() / "broken");
  std::ofstream(root.path() / "broken" / executor::loaded_jobs_file_name) << "{";
  CHECK(executor::find_loaded_jobs({root.path()}, config, problems).size() == 1);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("broken"));

  // A root that does not exist holds no daemon; it is no problem either.
  problems.clear();
  CHECK(executor::find_loaded_jobs({root.path() / "missing"}, config, problems).empty());
  CHECK(problems.empty());

  executor::remove_loaded_jobs(instance, ::getpid() + 1);  // another process's: kept
  CHECK(fs::exists(file));
  executor::remove_loaded_jobs(instance, ::getpid());
  CHECK_FALSE(fs::exists(file));
}
