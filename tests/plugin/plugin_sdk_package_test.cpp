// The SDK as an outside developer gets it: installs the sdk component of this
// build tree into a temporary prefix, builds tests/sdk/example_plugin against
// it with find_package + program_executor_add_plugin, checks what the .so
// exports and where INSTALL puts it, then loads it through the real loader and
// runs its job.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fixtures/fake_job_environment.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "support/process.hpp"
#include "support/test_environment.hpp"

namespace fs = std::filesystem;
namespace sdk = program_executor::sdk;
using nlohmann::json;
using program_executor::plugin::JobRegistry;
using program_executor::test::CommandResult;
using program_executor::test::FakeJobContext;
using program_executor::test::FakeJobData;
using program_executor::test::run_command;
using program_executor::test::TemporaryDirectory;

namespace {

const fs::path sdk_tests_dir = fs::path(PE_SOURCE_DIR) / "tests" / "sdk";

// Runs cmake with `args`, failing the test with its output unless it succeeds.
CommandResult cmake(std::vector<std::string> args, bool expect_success = true) {
  args.insert(args.begin(), PE_SDK_TEST_CMAKE);
  // Configuring and compiling the plugin on a loaded machine takes a while.
  CommandResult result = run_command(args, std::chrono::seconds(300));
  std::string command;
  for (const auto& arg : args) command += arg + " ";
  INFO("command: " << command << "\nexit code: " << result.exit_code << "\nstdout:\n"
                   << result.out << "\nstderr:\n"
                   << result.err);
  if (expect_success) {
    REQUIRE(result.exit_code == 0);
  } else {
    REQUIRE(result.exit_code != 0);
  }
  return result;
}

// `cmake --install` of only the sdk component, as a plugin developer's SDK
// package would be built; the daemon, its unit and its config are left out.
void install_sdk(const fs::path& prefix) {
  cmake({"--install", PE_BINARY_DIR, "--prefix", prefix.string(), "--component", "sdk"});
}

// The cache arguments that make an out-of-tree build use this build's tools
// (and, unless `cxx_flags` says otherwise, its sanitizer flags).
std::vector<std::string> configure_args(const fs::path& source, const fs::path& build,
                                        const fs::path& prefix,
                                        const std::string& cxx_flags = PE_SDK_TEST_CXX_FLAGS) {
  std::vector<std::string> args = {"-S", source.string(), "-B", build.string(),
                                   "-G", PE_SDK_TEST_GENERATOR,
                                   "-DCMAKE_PREFIX_PATH=" + prefix.string(),
                                   // Only the package just installed may be found.
                                   "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
                                   "-DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF",
                                   "-DCMAKE_BUILD_TYPE=" + std::string(PE_SDK_TEST_BUILD_TYPE),
                                   "-DCMAKE_CXX_FLAGS=" + cxx_flags};
  if (!std::string(PE_SDK_TEST_MAKE_PROGRAM).empty()) {
    args.push_back("-DCMAKE_MAKE_PROGRAM=" + std::string(PE_SDK_TEST_MAKE_PROGRAM));
  }
  return args;
}

std::set<std::string> entries_of(const fs::path& directory) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// The value of `key` in a CMakeCache.txt ("KEY:TYPE=value"), or "".
std::string cache_value(const fs::path& build, const std::string& key) {
  std::ifstream cache(build / "CMakeCache.txt");
  std::string line;
  while (std::getline(cache, line)) {
    if (line.rfind(key + ":", 0) == 0) return line.substr(line.find('=') + 1);
  }
  return "";
}

// `text` with every run of whitespace made one space: CMake wraps its messages.
std::string squeezed(const std::string& text) {
  std::istringstream words(text);
  std::string result;
  std::string word;
  while (words >> word) result += (result.empty() ? "" : " ") + word;
  return result;
}

// Names of the dynamic symbols `file` defines (what another object could bind to).
std::set<std::string> exported_symbols(const fs::path& file) {
  const CommandResult nm = run_command({PE_SDK_TEST_NM, "-D", "--defined-only", file.string()});
  INFO(nm.err);
  REQUIRE(nm.exit_code == 0);
  std::set<std::string> symbols;
  std::istringstream lines(nm.out);
  std::string line;
  while (std::getline(lines, line)) {
    // "<address> <type> <name>"
    const auto space = line.rfind(' ');
    if (space != std::string::npos) symbols.insert(line.substr(space + 1));
  }
  return symbols;
}

}  // namespace

TEST_CASE("the sdk component installs only the SDK headers and its CMake package",
          "[plugin][sdk]") {
  TemporaryDirectory temp;
  const fs::path prefix = temp.path() / "prefix";
  install_sdk(prefix);

  CHECK(entries_of(prefix / "include" / "program_executor") == std::set<std::string>{"sdk"});
  CHECK(entries_of(prefix / "include" / "program_executor" / "sdk") ==
        std::set<std::string>{"abi.hpp", "errors.hpp", "job.hpp", "plugin.hpp", "sdk.hpp"});
  CHECK_FALSE(fs::exists(prefix / "bin"));

  std::vector<fs::path> configs;
  for (const auto& entry : fs::recursive_directory_iterator(prefix)) {
    if (entry.path().filename() == "ProgramExecutorSDKConfig.cmake") configs.push_back(entry.path());
  }
  REQUIRE(configs.size() == 1);
  const fs::path package_dir = configs.front().parent_path();
  CHECK(package_dir.filename() == "ProgramExecutorSDK");
  CHECK(package_dir.parent_path().filename() == "cmake");
  CHECK(entries_of(package_dir) ==
        std::set<std::string>{"ProgramExecutorSDKConfig.cmake",
                              "ProgramExecutorSDKConfigVersion.cmake",
                              "ProgramExecutorSDKTargets.cmake", "ProgramExecutorPlugin.cmake",
                              "program_executor_plugin.map"});
}

TEST_CASE("the SDK package accepts its own minor version and the daemon's compiler only",
          "[plugin][sdk]") {
  TemporaryDirectory temp;
  const fs::path prefix = temp.path() / "prefix";
  install_sdk(prefix);
  const fs::path source = sdk_tests_dir / "package_check";
  const std::string version = PE_SDK_TEST_VERSION;  // "0.1.0"
  const std::string minor_version = version.substr(0, version.rfind('.'));

  auto configure = [&](const std::string& build, const std::string& requested,
                       const std::string& compiler, bool expect_success) {
    // No sanitizer flags: the other compiler may lack their run-time libraries,
    // and nothing is linked here beyond CMake's compiler check.
    auto args = configure_args(source, temp.path() / build, prefix, "");
    args.push_back("-DREQUESTED_VERSION=" + requested);
    args.push_back("-DCMAKE_CXX_COMPILER=" + compiler);
    return cmake(args, expect_success);
  };

  configure("same_minor", minor_version, PE_SDK_TEST_CXX_COMPILER, true);
  configure("same_patch", version, PE_SDK_TEST_CXX_COMPILER, true);

  // SameMinorVersion: the plugin ABI may change with any minor version before 1.0.
  const std::string next_minor = "0." + std::to_string(std::stoi(minor_version.substr(2)) + 1);
  const CommandResult newer = configure("next_minor", next_minor, PE_SDK_TEST_CXX_COMPILER, false);
  CHECK_THAT(squeezed(newer.err), Catch::Contains("ProgramExecutorSDK") && Catch::Contains(version));
  configure("major_only", "0", PE_SDK_TEST_CXX_COMPILER, false);

  const std::string other_compiler = PE_SDK_TEST_OTHER_CXX_COMPILER;
  if (other_compiler.empty()) {
    WARN("no second C++ compiler found: the compiler check of the package is not tested");
  } else {
    const CommandResult other = configure("other_compiler", minor_version, other_compiler, false);
    CHECK_THAT(squeezed(other.err), Catch::Contains("same compiler major version"));
  }
}

TEST_CASE("a plugin built out of tree against the installed SDK loads and runs",
          "[plugin][sdk]") {
  TemporaryDirectory temp;
  const fs::path prefix = temp.path() / "prefix";
  const fs::path build = temp.path() / "build";
  install_sdk(prefix);

  auto args = configure_args(sdk_tests_dir / "example_plugin", build, prefix);
  args.push_back("-DCMAKE_CXX_COMPILER=" + std::string(PE_SDK_TEST_CXX_COMPILER));
  cmake(args);
  // Found through CMAKE_PREFIX_PATH in the temporary prefix, not anywhere else.
  const std::string package_dir = cache_value(build, "ProgramExecutorSDK_DIR");
  CHECK(package_dir.rfind(prefix.string() + "/", 0) == 0);
  cmake({"--build", build.string()});

  // my_jobs.so, no "lib" prefix, exporting the two entry points and nothing else.
  const fs::path plugin_file = build / "my_jobs.so";
  REQUIRE(fs::is_regular_file(plugin_file));
  CHECK(exported_symbols(plugin_file) ==
        std::set<std::string>{"program_executor_abi", "program_executor_register"});

  // INSTALL puts it in the plugin directory of the prefix the SDK was
  // installed to (PROGRAM_EXECUTOR_PLUGIN_DIR follows a relocated install).
  const fs::path stage = temp.path() / "stage";
  cmake({"-E", "env", "DESTDIR=" + stage.string(), PE_SDK_TEST_CMAKE, "--install",
         build.string()});
  CHECK(fs::is_regular_file(fs::path(stage.string() + prefix.string()) / PE_SDK_TEST_PLUGIN_SUBDIR /
                            "my_jobs.so"));

  JobRegistry registry;
  program_executor::plugin::load_plugin(plugin_file, registry);
  const auto jobs = registry.jobs();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs.front().name == "example.greet");
  CHECK(jobs.front().plugin_file == plugin_file.string());

  const json program_data = {{"name", "Ada"}};
  const json message = {{"jobs", {"example.greet"}}, {"programData", program_data},
                        {"runId", "run-under-test"}};

  auto job = registry.create("example.greet", program_data);
  REQUIRE(job);
  FakeJobData job_data(json{{"kept", true}});
  FakeJobContext context("example.greet");
  job->execute(message, job_data, context);
  CHECK(job_data.data() == json{{"kept", true}, {"greeting", "Hello, Ada!"}});
  REQUIRE(context.logs.size() == 1);
  CHECK(context.logs.front().level == sdk::LogLevel::info);
  CHECK(context.logs.front().message == "greeted Ada");

  // The SDK's exception types thrown inside the plugin are caught by type in
  // the host, although the plugin exports no typeinfo.
  context.stop = true;
  FakeJobData untouched;
  CHECK_THROWS_AS(registry.create("example.greet", program_data)->execute(message, untouched, context),
                  sdk::RetryableError);
  CHECK(untouched.data() == json::object());

  FakeJobContext nameless_context("example.greet");
  FakeJobData nameless_data;
  CHECK_THROWS_AS(registry.create("example.greet", json::object())
                      ->execute(message, nameless_data, nameless_context),
                  sdk::IgnorableError);
}
