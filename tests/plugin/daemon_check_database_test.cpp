// `program-executor check` on the database password: written into a config
// file other users can read, or in a password file they can read. Checked
// word for word (check does not connect; no server needed).
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/test_environment.hpp"

namespace fs = std::filesystem;
using program_executor::test::CommandResult;
using program_executor::test::TemporaryDirectory;
using program_executor::test::run_command;

namespace {

constexpr const char* password = "Db-pw-only-in-this-test-91c2";

void write(const fs::path& path, const std::string& text, mode_t mode) {
  {
    std::ofstream out(path);
    out << text;
    REQUIRE(out.good());
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

CommandResult check(const fs::path& config, bool json = false) {
  // As this process's user: the access checks do not depend on the host's users.
  std::vector<std::string> args = {PE_DAEMON_PATH, "check", "-c", config.string(), "--user",
                                   ::getpwuid(::geteuid())->pw_name};
  if (json) args.push_back("--json");
  CommandResult result = run_command(args);
  CHECK(result.out.find(password) == std::string::npos);
  CHECK(result.err.find(password) == std::string::npos);
  return result;
}

fs::path config_file(const TemporaryDirectory& dir, const std::string& extra, mode_t mode) {
  const fs::path path = dir.path() / "config.yaml";
  write(path,
        "plugins:\n  directory: " + program_executor::test::fixture("good").string() + "\n" +
            extra,
        mode);
  return path;
}

// A warning: check still exits 0 (1 with --strict).
std::string warned(const std::string& problem) {
  return "program-executor: check: warning: " + problem + "\n";
}

}  // namespace

TEST_CASE("check warns about a database password other users can read", "[daemon][check]") {
  TemporaryDirectory dir;
  const fs::path password_file = dir.path() / "db-password";
  write(password_file, password, 0600);

  SECTION("written in the connection string of a config file every user can read") {
    const fs::path config = config_file(
        dir,
        std::string("database:\n  backend: postgresql\n  connection: \"host=db user=pe "
                    "password=") + password + "\"\n",
        0644);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 0);
    CHECK(result.err == warned(config.string() +
                               " holds a password (database.connection) and is readable by "
                               "every user (mode 0644): chmod o-r it, or take the password "
                               "from database.password_file, a systemd credential or an "
                               "environment variable"));
    const CommandResult json = check(config, true);
    CHECK(json.exit_code == 0);
    const auto report = nlohmann::json::parse(json.out);
    CHECK(report["ok"] == true);
    CHECK(report["problems"].empty());
    REQUIRE(report["warnings"].size() == 1);
    CHECK_THAT(report["warnings"][0].get<std::string>(),
               Catch::Contains("holds a password (database.connection)"));
  }
  SECTION("in both the broker URL and the connection string") {
    const fs::path config = config_file(
        dir,
        std::string("amqp:\n  url: amqp://w:") + password + "@r/\n" +
            "database:\n  backend: mysql\n  connection: mysql://pe:" + password + "@db/jobs\n",
        0604);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 0);
    CHECK(result.err == warned(config.string() +
                               " holds a password (amqp.url, database.connection) and is "
                               "readable by every user (mode 0604): chmod o-r it, or take the "
                               "password from amqp.password_file and database.password_file, a "
                               "systemd credential or an environment variable"));
  }
  SECTION("from database.password_file, the readable config file is fine") {
    const fs::path config = config_file(
        dir,
        "database:\n  backend: odbc\n  connection: \"DSN=jobs;UID=pe\"\n  password_file: " +
            password_file.string() + "\n",
        0644);
    const CommandResult result = check(config);
    INFO(result.err);
    CHECK(result.exit_code == 0);
  }
  SECTION("a database password file every user can read") {
    REQUIRE(::chmod(password_file.c_str(), 0644) == 0);
    const fs::path config = config_file(
        dir,
        "database:\n  backend: postgresql\n  connection: \"host=db\"\n  password_file: " +
            password_file.string() + "\n",
        0600);
    const CommandResult result = check(config);
    CHECK(result.exit_code == 0);
    CHECK(result.err == warned(password_file.string() +
                               " (database.password_file) is readable by every user (mode "
                               "0644): chmod o-r it"));
  }
  SECTION("a database password file that cannot be read, and sqlite3") {
    const fs::path missing = dir.path() / "missing";
    fs::path config = config_file(
        dir,
        "database:\n  backend: postgresql\n  password_file: " + missing.string() + "\n", 0600);
    CommandResult result = check(config);
    CHECK(result.exit_code == 1);
    CHECK(result.err == "program-executor: error: " + config.string() +
                            ":5:18: database.password_file: cannot read '" + missing.string() +
                            "': No such file or directory\n");
    config = config_file(dir, "database:\n  password_file: " + password_file.string() + "\n",
                         0600);
    result = check(config);
    CHECK(result.exit_code == 1);
    CHECK(result.err == "program-executor: error: " + config.string() +
                            ":4:18: database.password_file: database.backend sqlite3 takes no "
                            "password (database.password_file is for postgresql, mysql and "
                            "odbc)\n");
  }
}
