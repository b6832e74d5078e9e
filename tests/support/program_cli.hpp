// The daemon's program commands as the daemon tests run them:
// `program-executor <command> -c <config> ...`, asserting that each succeeds.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/process.hpp"

namespace program_executor::test {

/// `program-executor <command> -c <config> <args...>`.
inline CommandResult cli(const std::filesystem::path& config, const std::string& command,
                         std::vector<std::string> args = {}) {
  args.insert(args.begin(), {PE_DAEMON_PATH, command, "-c", config.string()});
  return run_command(args);
}

/// The run id `create` printed.
inline std::string run_id_of(const CommandResult& create) {
  std::string run_id = create.out;
  while (!run_id.empty() && (run_id.back() == '\n' || run_id.back() == '\r')) run_id.pop_back();
  return run_id;
}

/// Creates a program of `jobs` (comma separated); its run id.
inline std::string create_program(const std::filesystem::path& config, const std::string& jobs,
                                  const nlohmann::json& job_data = nlohmann::json::object(),
                                  const nlohmann::json& program_data = nlohmann::json::object()) {
  const CommandResult result = cli(config, "create",
                                   {"--jobs", jobs, "--job-data", job_data.dump(), "--program-data",
                                    program_data.dump()});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  std::string run_id = run_id_of(result);
  REQUIRE(run_id.size() == 36);
  return run_id;
}

/// `status --json` of a program.
inline nlohmann::json program_status(const std::filesystem::path& config, const std::string& run_id) {
  const CommandResult result = cli(config, "status", {run_id, "--json"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  return nlohmann::json::parse(result.out);
}

/// Polls the status every 100 ms until the program is no longer running.
inline nlohmann::json wait_until_ended(const std::filesystem::path& config, const std::string& run_id,
                                       std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json row;
  while (std::chrono::steady_clock::now() < deadline) {
    row = program_status(config, run_id);
    if (row["state"] != "running") return row;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("program " << run_id << " still running after " << timeout.count() << " s: " << row.dump());
  return row;
}

}  // namespace program_executor::test
