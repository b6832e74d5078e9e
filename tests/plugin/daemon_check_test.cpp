// `program-executor check`: the real binary against the trust fixtures, plugin
// trees made here with bad owners or modes, and configurations that expose a
// secret. Every refusal is checked word for word: the message is the product.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/test_environment.hpp"

namespace fs = std::filesystem;
using program_executor::test::CommandResult;
using program_executor::test::TemporaryDirectory;
using program_executor::test::fixture;
using program_executor::test::run_command;

namespace {

constexpr const char* password = "Pw-only-in-this-test-7f3a";


void write(const fs::path& path, const std::string& text, mode_t mode) {
  {
    std::ofstream out(path);
    out << text;
    REQUIRE(out.good());
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// This process's user: check then judges the files as readable by the
// daemon's user, whoever runs the tests (daemon_check_access_test covers it).
std::string current_user() { return ::getpwuid(::geteuid())->pw_name; }

CommandResult check(const fs::path& config, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {PE_DAEMON_PATH, "check", "-c", config.string(), "--user",
                                    current_user()};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult result = run_command(args);
  // Whatever else it says, check never prints the password.
  CHECK(result.out.find(password) == std::string::npos);
  CHECK(result.err.find(password) == std::string::npos);
  return result;
}

// A configuration in `dir` naming `plugins` and holding `extra` lines.
fs::path config_file(const TemporaryDirectory& dir, const fs::path& plugins,
                     const std::string& extra = "", mode_t mode = 0600) {
  const fs::path path = dir.path() / "config.yaml";
  write(path, "plugins:\n  directory: " + plugins.string() + "\n" + extra, mode);
  return path;
}

std::string refused(const std::string& problem) {
  return "program-executor: check: " + problem + "\n";
}

// A warning: check still exits 0 (1 with --strict).
std::string warned(const std::string& problem) {
  return "program-executor: check: warning: " + problem + "\n";
}

}  // namespace

TEST_CASE("check accepts a sound deployment and lists its jobs", "[daemon][check]") {
  TemporaryDirectory dir;
  // A password written in the file is fine while only its owner can read it.
  const fs::path config = config_file(
      dir, fixture("good"), std::string("amqp:\n  url: amqp://worker:") + password + "@rabbit/\n");
  const CommandResult result = check(config);
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(result.out == "config: " + config.string() + ": ok\nplugins: " +
                          fixture("good").string() + ": 2 jobs: fixture.count fixture.echo\n");
}

TEST_CASE("check refuses each untrusted plugin fixture, saying why", "[daemon][check]") {
  const auto [directory, message] = GENERATE(table<std::string, std::string>({
      {"symlink_out",
       "/symlink_out/escape.so: trust: is a symbolic link to '" +
           fs::canonical(fixture("good/good.so")).string() +
           "', outside the plugin directory '" + fs::canonical(fixture("symlink_out")).string() +
           "'"},
      {"dangling",
       "/dangling/gone.so: open: is a symbolic link to 'missing.so', which cannot be opened: No "
       "such file or directory"},
      {"directory_so", "/directory_so/plugin.so: trust: is not a regular file but a directory"},
  }));
  TemporaryDirectory dir;
  const CommandResult result = check(config_file(dir, fixture(directory)));
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err == refused(fixture(directory).parent_path().string() + message));
}

TEST_CASE("check refuses plugins others could write or that another user owns",
          "[daemon][check]") {
  TemporaryDirectory dir;
  const fs::path plugins = dir.path() / "plugins";
  const fs::path plugin = plugins / "good.so";
  fs::create_directory(plugins);
  REQUIRE(::chmod(plugins.c_str(), 0755) == 0);
  fs::copy_file(fixture("good/good.so"), plugin);
  REQUIRE(::chmod(plugin.c_str(), 0644) == 0);
  const fs::path config = config_file(dir, plugins);
  REQUIRE(check(config).exit_code == 0);

  SECTION("a plugin writable by every user") {
    REQUIRE(::chmod(plugin.c_str(), 0666) == 0);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 1);
    CHECK(result.err == refused(plugin.string() +
                                ": trust: the file is writable by every user (mode 0666), so "
                                "others could change the plugin"));
  }
  SECTION("a plugin directory writable by every user") {
    REQUIRE(::chmod(plugins.c_str(), 0777) == 0);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 1);
    CHECK(result.err == refused(plugins.string() + ": trust: the plugin directory '" +
                                plugins.string() +
                                "' is writable by every user (mode 0777), so others could add "
                                "or replace plugins in it"));
  }
  SECTION("a FIFO named like a plugin") {
    const fs::path fifo = plugins / "a-pipe.so";
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 1);
    CHECK(result.err == refused(fifo.string() + ": trust: is not a regular file but a FIFO"));
  }
  SECTION("a plugin owned by another user") {
    if (::geteuid() != 0) {
      WARN("SKIPPED: needs root to give the plugin to uid 65534");
      return;
    }
    REQUIRE(::chown(plugin.c_str(), 65534, 0) == 0);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 1);
    CHECK(result.err == refused(plugin.string() +
                                ": trust: the file is owned by uid 65534 (nobody), not by root"));
  }
}

TEST_CASE("check warns about secrets other users can read", "[daemon][check]") {
  TemporaryDirectory dir;
  const fs::path password_file = dir.path() / "amqp-password";
  write(password_file, password, 0600);

  SECTION("a password written in a config file every user can read") {
    const fs::path config = config_file(
        dir, fixture("good"), std::string("amqp:\n  url: amqp://worker:") + password + "@r/\n",
        0644);
    const std::string warning = warned(config.string() +
                                       " holds a password (amqp.url) and is readable by every "
                                       "user (mode 0644): chmod o-r it, or take the password "
                                       "from amqp.password_file, a systemd credential or an "
                                       "environment variable");
    const CommandResult result = check(config);
    CHECK(result.exit_code == 0);
    CHECK(result.err == warning);
    CHECK_THAT(result.out, Catch::StartsWith("config: " + config.string() + ": ok (1 warning)\n"));
    // --strict: the warning fails the check, as nginx -t's users expect of a strict mode.
    const CommandResult strict = check(config, {"--strict"});
    CHECK(strict.exit_code == 1);
    CHECK(strict.out.empty());
    CHECK(strict.err == warning + "program-executor: check: --strict: warnings fail the check\n");
  }
  SECTION("a readable config file that holds no password is fine") {
    const fs::path config =
        config_file(dir, fixture("good"),
                    "amqp:\n  url: amqp://worker@r/\n  password_file: " +
                        password_file.string() + "\n",
                    0644);
    CHECK(check(config).exit_code == 0);
  }
  SECTION("a password file every user can read") {
    REQUIRE(::chmod(password_file.c_str(), 0644) == 0);
    const fs::path config = config_file(
        dir, fixture("good"), "amqp:\n  password_file: " + password_file.string() + "\n");
    const CommandResult result = check(config);
    CHECK(result.exit_code == 0);
    CHECK(result.err == warned(password_file.string() +
                               " (amqp.password_file) is readable by every user (mode 0644): "
                               "chmod o-r it"));
  }
  SECTION("a TLS client key every user can read") {
    const fs::path key = dir.path() / "client.key";
    write(key, "not really a key", 0644);
    const fs::path config = config_file(
        dir, fixture("good"), "amqp:\n  tls:\n    key_file: " + key.string() + "\n");
    const CommandResult result = check(config);
    CHECK(result.exit_code == 0);
    CHECK(result.err ==
          warned(key.string() + " (amqp.tls.key_file) is readable by every user (mode 0644): "
                                "chmod o-r it"));
  }
  SECTION("a config file others can write") {
    const fs::path config = config_file(dir, fixture("good"), "", 0664);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 1);
    CHECK(result.err == refused(config.string() +
                                " is writable by its group (mode 0664): whoever can write it "
                                "chooses the plugins the daemon runs; chmod go-w it"));
  }
}

TEST_CASE("check reports an invalid configuration without its secrets", "[daemon][check]") {
  TemporaryDirectory dir;
  const fs::path config = config_file(
      dir, fixture("good"),
      std::string("amqp:\n  url: ftp://worker:") + password + "@rabbit/\n");
  const CommandResult result = check(config);
  CHECK(result.exit_code == 1);
  CHECK(result.err == "program-executor: error: " + config.string() +
                          ":4:8: amqp.url: invalid value: must start with amqp:// or amqps://\n");
}

TEST_CASE("check reports an empty plugin directory", "[daemon][check]") {
  TemporaryDirectory dir;
  const CommandResult result = check(config_file(dir, fixture("readme_only")));
  CHECK(result.exit_code == 1);
  CHECK(result.err ==
        refused(fixture("readme_only").string() + ": holds no plugin (*.so): every job would be "
                                                  "skipped"));
}

TEST_CASE("check --json lists the same warnings and problems, and no secret either",
          "[daemon][check]") {
  TemporaryDirectory dir;
  const fs::path config = config_file(
      dir, fixture("good"), std::string("amqp:\n  url: amqp://worker:") + password + "@r/\n",
      0644);
  CommandResult result = check(config, {"--json"});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  auto report = nlohmann::json::parse(result.out);
  CHECK(report.at("ok") == true);
  CHECK(report.at("jobs") == nlohmann::json::array({"fixture.count", "fixture.echo"}));
  CHECK(report.at("problems").empty());
  REQUIRE(report.at("warnings").size() == 1);
  CHECK_THAT(report.at("warnings")[0].get<std::string>(),
             Catch::StartsWith(config.string() + " holds a password (amqp.url) and is readable"));
  CHECK_FALSE(report.contains("error"));

  result = check(config, {"--json", "--strict"});
  CHECK(result.exit_code == 1);
  report = nlohmann::json::parse(result.out);
  CHECK(report.at("ok") == false);
  CHECK(report.at("error") == "check_failed");

  // A problem fails the check with or without --strict.
  REQUIRE(::chmod(config.c_str(), 0664) == 0);
  result = check(config, {"--json"});
  CHECK(result.exit_code == 1);
  report = nlohmann::json::parse(result.out);
  CHECK(report.at("ok") == false);
  REQUIRE(report.at("problems").size() == 1);
  CHECK_THAT(report.at("problems")[0].get<std::string>(),
             Catch::StartsWith(config.string() + " is writable by its group"));
}
