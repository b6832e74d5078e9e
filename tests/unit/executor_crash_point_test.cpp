// Crash points: parsing of the environment, the firing decision, and (in
// forked children, so this process survives) the SIGKILL itself.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/executor/crash_point.hpp"

using program_executor::executor::crash_point;
using program_executor::executor::crash_point_decision;
using program_executor::executor::crash_point_fires;
using program_executor::executor::CrashPointSettings;
using program_executor::executor::parse_crash_point_settings;
using program_executor::executor::process_crash_point_settings;

namespace {

struct ChildResult {
  bool killed_by_sigkill = false;
  int exit_code = -1;
  std::string output;  ///< what the child wrote to its stderr (or to the pipe)
};

// Runs `body` in a forked child whose stderr is a pipe, with the crash point
// variables set there only: the settings are cached per process, and this
// test process must never arm (or cache) anything itself.
template <class Body>
ChildResult in_child(const char* name, const char* probability, Body body) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    if (name != nullptr) ::setenv("PE_CRASH_POINT", name, 1);
    if (probability != nullptr) ::setenv("PE_CRASH_PROBABILITY", probability, 1);
    int code = 0;
    try {
      code = body();
    } catch (...) {
      code = 99;
    }
    ::_exit(code);
  }
  ::close(pipe_fds[1]);
  ChildResult result;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    result.output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  result.killed_by_sigkill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

void write_to_stderr(const std::string& text) {
  const std::string line = text + "\n";
  REQUIRE(::write(STDERR_FILENO, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
}

}  // namespace

TEST_CASE("crash point settings parse the name and an optional probability") {
  CrashPointSettings unset = parse_crash_point_settings(nullptr, nullptr);
  CHECK(unset.name.empty());
  CHECK(unset.probability == 1.0);

  CrashPointSettings armed = parse_crash_point_settings("after_commit", "0.25");
  CHECK(armed.name == "after_commit");
  CHECK(armed.probability == 0.25);

  CHECK(parse_crash_point_settings("after_job", nullptr).probability == 1.0);
  CHECK(parse_crash_point_settings("after_job", "").probability == 1.0);
  CHECK(parse_crash_point_settings("after_job", "0").probability == 0.0);
  CHECK(parse_crash_point_settings("after_job", "1").probability == 1.0);
  CHECK(parse_crash_point_settings("after_job", "1e-3").probability == 0.001);
  CHECK(parse_crash_point_settings("", "0.5").name.empty());
}

TEST_CASE("an invalid crash probability is rejected, not guessed") {
  for (const char* bad : {"abc", "1.5", "-0.1", "nan", "inf", "0.5x", " ", "0,5"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_crash_point_settings("after_commit", bad), std::invalid_argument);
  }
  CHECK_THROWS_WITH(parse_crash_point_settings("after_commit", "2"),
                    Catch::Contains("PE_CRASH_PROBABILITY='2'"));
}

TEST_CASE(
    "a crash point fires only under its own name and when the draw is below the probability") {
  const CrashPointSettings armed{"after_commit", 0.3};
  CHECK(crash_point_fires(armed, "after_commit", 0.0));
  CHECK(crash_point_fires(armed, "after_commit", 0.299));
  CHECK_FALSE(crash_point_fires(armed, "after_commit", 0.3));
  CHECK_FALSE(crash_point_fires(armed, "after_commit", 0.9));
  CHECK_FALSE(crash_point_fires(armed, "after_job", 0.0));
  CHECK_FALSE(crash_point_fires(armed, "after_commit_", 0.0));
  CHECK_FALSE(crash_point_fires(armed, "", 0.0));

  const CrashPointSettings always{"after_job", 1.0};
  CHECK(crash_point_fires(always, "after_job", 0.999999));
  const CrashPointSettings never{"after_job", 0.0};
  CHECK_FALSE(crash_point_fires(never, "after_job", 0.0));
  const CrashPointSettings unarmed{};
  CHECK_FALSE(crash_point_fires(unarmed, "", 0.0));
  CHECK_FALSE(crash_point_fires(unarmed, "after_job", 0.0));
}

TEST_CASE("the process decision follows the environment, from several threads, at the rate asked") {
  const ChildResult child = in_child("after_job", "0.5", [] {
    std::atomic<int> fired{0};
    std::atomic<int> other{0};
    std::string sample;
    std::mutex sample_mutex;
    auto draw = [&] {
      for (int i = 0; i < 10000; ++i) {
        if (auto line = crash_point_decision("after_job")) {
          ++fired;
          std::lock_guard lock(sample_mutex);
          if (sample.empty()) sample = *line;
        }
        if (crash_point_decision("after_commit")) ++other;
      }
    };
    std::thread a(draw);
    std::thread b(draw);
    a.join();
    b.join();
    write_to_stderr(nlohmann::json{{"fired", fired.load()},
                                   {"other", other.load()},
                                   {"sample", sample},
                                   {"pid", static_cast<long long>(::getpid())}}
                        .dump());
    return 0;
  });
  REQUIRE(child.exit_code == 0);
  const auto report = nlohmann::json::parse(child.output);
  CHECK(report["other"] == 0);
  // 20000 draws at 0.5: the standard deviation is about 71.
  CHECK(report["fired"].get<int>() > 9500);
  CHECK(report["fired"].get<int>() < 10500);
  const auto line = nlohmann::json::parse(report["sample"].get<std::string>());
  CHECK(line["event"] == "crash_point.fired");
  CHECK(line["point"] == "after_job");
  CHECK(line["pid"] == report["pid"]);
  CHECK(line["t_ns"].get<long long>() > 0);
}

TEST_CASE("without PE_CRASH_POINT nothing is armed") {
  const ChildResult child = in_child(nullptr, nullptr, [] {
    ::unsetenv("PE_CRASH_POINT");
    ::unsetenv("PE_CRASH_PROBABILITY");
    for (const auto name : program_executor::executor::crash_point_names) {
      for (int i = 0; i < 100; ++i) crash_point(name);
    }
    return process_crash_point_settings().name.empty() ? 0 : 1;
  });
  CHECK_FALSE(child.killed_by_sigkill);
  CHECK(child.exit_code == 0);
  CHECK(child.output.empty());
}

TEST_CASE("an armed crash point kills its process with SIGKILL after one JSON line on stderr") {
  const ChildResult child = in_child("after_commit", "1", [] {
    crash_point("after_claim");  // another point: passes
    crash_point("after_commit");
    return 0;  // not reached
  });
  CHECK(child.killed_by_sigkill);
  REQUIRE_FALSE(child.output.empty());
  CHECK(child.output.back() == '\n');
  const auto line = nlohmann::json::parse(child.output);
  CHECK(line["event"] == "crash_point.fired");
  CHECK(line["point"] == "after_commit");
  CHECK(line["pid"].get<long long>() > 0);
}

TEST_CASE("a probability of 0 never fires") {
  const ChildResult child = in_child("after_commit", "0", [] {
    for (int i = 0; i < 10000; ++i) crash_point("after_commit");
    return 0;
  });
  CHECK_FALSE(child.killed_by_sigkill);
  CHECK(child.exit_code == 0);
}

TEST_CASE("an invalid probability in the environment disarms the points and says so once") {
  const ChildResult child = in_child("after_commit", "often", [] {
    for (int i = 0; i < 10; ++i) crash_point("after_commit");
    return process_crash_point_settings().name.empty() ? 0 : 1;
  });
  CHECK_FALSE(child.killed_by_sigkill);
  CHECK(child.exit_code == 0);
  const auto line = nlohmann::json::parse(child.output);
  CHECK(line["event"] == "crash_point.invalid");
  CHECK_THAT(line["message"].get<std::string>(), Catch::Contains("often"));
}

TEST_CASE("PE_CRASH_POINT compiles to a crash point only in PE_CRASH_POINTS builds") {
  const ChildResult child = in_child("after_publish", "1", [] {
    PE_CRASH_POINT("after_publish");
    return 0;
  });
#if defined(PE_CRASH_POINTS)
  CHECK(child.killed_by_sigkill);
#else
  CHECK_FALSE(child.killed_by_sigkill);
  CHECK(child.exit_code == 0);
  CHECK(child.output.empty());
#endif
}
