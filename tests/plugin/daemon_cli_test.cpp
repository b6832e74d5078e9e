// The operator's CLI as scripts and sysadmins meet it (issues 18 and 19):
// exit codes, errors as text or JSON, job names `create` refuses before it
// writes, read-only commands that create nothing, the unit's environment
// file, idempotent cancel, and check's warnings about the daemon's user.
// The real binary against SQLite files; no broker needed.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include "program_executor/config/config.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/migrations.hpp"
#include "support/deployment.hpp"
#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/test_environment.hpp"

namespace fs = std::filesystem;
using program_executor::test::CommandResult;
using program_executor::test::TemporaryDirectory;
using program_executor::test::run_command;

namespace {

void write(const fs::path& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(path);
    out << text;
    REQUIRE(out.good());
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

// A deployment in a temporary directory: config.yaml (mode 0600) with the
// good fixture plugins, a SQLite file that does not exist yet, and `extra`
// lines; no broker.
struct Deployment : program_executor::test::Deployment {
  explicit Deployment(const std::string& extra = "")
      : program_executor::test::Deployment([&] {
          program_executor::test::DeploymentOptions settings;
          settings.plugin_dir = program_executor::test::fixture("good").string();
          settings.log_format = "";
          settings.metrics_listen = std::nullopt;
          settings.extra_yaml = extra;
          return settings;
        }()) {
    REQUIRE(::chmod(config().c_str(), 0600) == 0);
  }
  fs::path database_file() const { return path("programs.db"); }
};

std::string error_line(const std::string& message) {
  return "program-executor: error: " + message + "\n";
}

}  // namespace

TEST_CASE("usage errors exit 2 with one error line, or JSON with --json", "[daemon][cli]") {
  const Deployment deployment;
  CommandResult result = deployment.cli({"list", "--bogus"});
  CHECK(result.exit_code == 2);
  CHECK(result.out.empty());
  CHECK(result.err == error_line("The following argument was not expected: --bogus (run with "
                                 "--help for the usage)"));

  result = deployment.cli({"list", "--limit", "0", "--json"});
  CHECK(result.exit_code == 2);
  CHECK(result.err.empty());
  const auto error = nlohmann::json::parse(result.out);
  CHECK(error.at("error") == "usage");
  CHECK(error.at("message") == "--limit: Value 0 not in range 1 to 10000");

  result = run_command({PE_DAEMON_PATH});
  CHECK(result.exit_code == 2);
  CHECK(result.err == error_line("A subcommand is required (run with --help for the usage)"));

  result = run_command({PE_DAEMON_PATH, "list", "--log-format", "yaml"});
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.err, Catch::StartsWith("program-executor: error: --log-format: "));

  // The daemon's output is its log: run says so instead of ignoring --json.
  result = deployment.cli({"run", "--json"});
  CHECK(result.exit_code == 2);
  CHECK(nlohmann::json::parse(result.out).at("error") == "usage");

  // Help and version are not errors.
  CHECK(run_command({PE_DAEMON_PATH, "--help"}).exit_code == 0);
  CHECK(run_command({PE_DAEMON_PATH, "--version"}).exit_code == 0);
}

TEST_CASE("create refuses empty job names and never takes an option for one",
          "[daemon][cli][create]") {
  const Deployment deployment;
  const auto [jobs, message] = GENERATE(table<std::string, std::string>({
      {",", "--jobs: job 1 of 2 is empty (','): give each job a name"},
      {"a,,b", "--jobs: job 2 of 3 is empty ('a,,b'): give each job a name"},
      {"a,", "--jobs: job 2 of 2 is empty ('a,'): give each job a name"},
      {"a,b c", "--jobs: job 2 of 2 'b c' is not a job name (1 to 255 characters from A-Z a-z "
                "0-9 _ . : -)"},
  }));
  CommandResult result = deployment.cli({"create", "--jobs", jobs});
  CHECK(result.exit_code == 2);
  CHECK(result.err == error_line(message));

  result = deployment.cli({"create", "--jobs", jobs, "--json"});
  CHECK(result.exit_code == 2);
  const auto error = nlohmann::json::parse(result.out);
  CHECK(error.at("error") == "usage");
  CHECK(error.at("message") == message);
  // Refused before anything was opened or written.
  CHECK_FALSE(fs::exists(deployment.database_file()));
}

TEST_CASE("create never takes the next option as a job", "[daemon][cli][create]") {
  const Deployment deployment;
  const CommandResult result = deployment.cli({"create", "--jobs", "--json"});
  CHECK(result.exit_code == 2);
  CHECK(nlohmann::json::parse(result.out).at("message") ==
        "--jobs: job 1 of 1 '--json' starts with '-': an option, not a job name");
  CHECK_FALSE(fs::exists(deployment.database_file()));
}

TEST_CASE("create --strict refuses jobs no plugin in the directory has", "[daemon][cli][create]") {
  const Deployment deployment;
  CommandResult result =
      deployment.cli({"create", "--strict", "--jobs", "fixture.echo,later.job,other.job"});
  CHECK(result.exit_code == 1);
  CHECK(result.err == error_line("no plugin in " +
                                 program_executor::test::fixture("good").string() +
                                 " has the job(s) later.job, other.job (--strict)"));
  result = deployment.cli({"create", "--strict", "--json", "--jobs", "later.job"});
  CHECK(result.exit_code == 1);
  CHECK(nlohmann::json::parse(result.out).at("error") == "unknown_jobs");
  CHECK_FALSE(fs::exists(deployment.database_file()));
}

TEST_CASE("read-only commands create no database and say so", "[daemon][cli][read_only]") {
  const Deployment deployment;
  const std::string missing =
      "the SQLite database " + deployment.database_file().string() +
      " does not exist; this command changes nothing, so it does not create it: the daemon "
      "creates it at its first start (or run `program-executor migrate` as the daemon's user)";
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"list"}, {"status", "no-such-run"}, {"migrate", "--check"}}) {
    INFO(command.front());
    CommandResult result = deployment.cli(command);
    CHECK(result.exit_code == 1);
    CHECK(result.err == error_line(missing));
    std::vector<std::string> json = command;
    json.push_back("--json");
    result = deployment.cli(json);
    CHECK(result.exit_code == 1);
    CHECK(nlohmann::json::parse(result.out) ==
          nlohmann::json{{"error", "database"}, {"message", missing}});
  }
  CHECK_FALSE(fs::exists(deployment.database_file()));

  // Once migrate made it, they read it, and still change nothing.
  REQUIRE(deployment.cli({"migrate"}).exit_code == 0);
  const auto modified = fs::last_write_time(deployment.database_file());
  CommandResult result = deployment.cli({"list"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "no programs\n");
  result = deployment.cli({"status", "no-such-run", "--json"});
  CHECK(result.exit_code == 1);
  CHECK(nlohmann::json::parse(result.out) ==
        nlohmann::json{{"error", "not_found"}, {"message", "no program with run id no-such-run"}});
  CHECK(deployment.cli({"migrate", "--check"}).exit_code == 0);
  CHECK(fs::last_write_time(deployment.database_file()) == modified);
}

TEST_CASE("a read-only command finds an old table and does not migrate it",
          "[daemon][cli][read_only]") {
  const Deployment deployment;
  {
    // A table as program-executor-js leaves it: no version table.
    program_executor::config::DatabaseSettings settings;
    settings.connection = "db=" + deployment.database_file().string();
    program_executor::store::Database database(settings, 1);
    soci::session session(database.pool());
    session << "CREATE TABLE programs (run_id VARCHAR(36) PRIMARY KEY)";
  }
  const CommandResult result = deployment.cli({"list"});
  CHECK(result.exit_code == 1);
  const int latest = program_executor::store::builtin_migrations("sqlite3").back().version;
  CHECK(result.err == error_line("table programs is at schema version 0, this program needs " +
                                 std::to_string(latest) +
                                 ": run `program-executor migrate` (this command changes nothing)"));
  CHECK(deployment.cli({"migrate", "--check"}).exit_code == 1);
}

TEST_CASE("cancel of a cancelled program is a no-op that exits 0", "[daemon][cli][cancel]") {
  const Deployment deployment;
  REQUIRE(deployment.cli({"migrate"}).exit_code == 0);
  {
    program_executor::config::DatabaseSettings settings;
    settings.connection = "db=" + deployment.database_file().string();
    program_executor::store::Database database(settings, 1);
    database.program_store()->insert({"run-to-cancel", {"fixture.echo"}, {}, {}});
  }
  CommandResult result = deployment.cli({"cancel", "run-to-cancel"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "cancelled run-to-cancel\n");

  result = deployment.cli({"cancel", "run-to-cancel"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "program run-to-cancel was already cancelled; nothing changed\n");
  CHECK(result.err.empty());
  result = deployment.cli({"cancel", "run-to-cancel", "--json"});
  CHECK(result.exit_code == 0);
  CHECK(nlohmann::json::parse(result.out) ==
        nlohmann::json{{"run_id", "run-to-cancel"},
                       {"state", "cancelled"},
                       {"note", "program run-to-cancel was already cancelled; nothing changed"}});

  result = deployment.cli({"cancel", "no-such-run", "--json"});
  CHECK(result.exit_code == 1);
  CHECK(nlohmann::json::parse(result.out).at("error") == "not_found");
}

TEST_CASE("operator commands read the unit's environment file", "[daemon][cli][environment]") {
  // The broker password comes from the environment, as the packaged unit gives it.
  const Deployment deployment(
      "amqp:\n  url: amqp://worker:${PE_TEST_CLI_AMQP_PASSWORD}@127.0.0.1:5672/\n");
  const fs::path environment = deployment.dir() / "environment";

  // Commands that only read the database do not need the broker's password.
  REQUIRE(deployment.cli({"migrate"}).exit_code == 0);
  CHECK(deployment.cli({"list"}).exit_code == 0);
  CHECK(deployment.cli({"jobs"}).exit_code == 0);

  // check needs it, and says where the unit takes it from.
  CommandResult result = deployment.cli({"check", "--user", "root"});
  CHECK(result.exit_code == 1);
  CHECK(result.err ==
        error_line(deployment.config().string() +
                   ":6:8: amqp.url: environment variable PE_TEST_CLI_AMQP_PASSWORD is not set; "
                   "the unit's environment file " +
                   environment.string() +
                   " does not exist: write NAME=value lines there (mode 0640), or set the "
                   "variable"));

  write(environment, "# as in docs/operations.md\nPE_TEST_CLI_AMQP_PASSWORD=s3cr3t-for-cli\n",
        0640);
  result = deployment.cli({"check", "--user", "root"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("environment: " + environment.string() +
                                         " (the unit's EnvironmentFile)\n"));
  CHECK(result.out.find("s3cr3t-for-cli") == std::string::npos);

  // NAME.yaml takes NAME.environment, as program-executor@NAME.service does.
  const fs::path instance = deployment.dir() / "exports.yaml";
  fs::copy_file(deployment.config(), instance);
  result = run_command({PE_DAEMON_PATH, "check", "-c", instance.string(), "--user", "root"});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains("the unit's environment file " +
                                         (deployment.dir() / "exports.environment").string()));
  result = run_command({PE_DAEMON_PATH, "check", "-c", instance.string(), "--user", "root",
                        "--environment-file", environment.string()});
  CHECK(result.exit_code == 0);
}

TEST_CASE("check warns when the daemon's user cannot read the config or write the database",
          "[daemon][cli][check]") {
  if (::getpwnam("nobody") == nullptr) {
    WARN("SKIPPED: needs a user 'nobody'");
    return;
  }
  // The temporary directory is 0700: another user cannot even reach the files.
  const Deployment deployment;
  REQUIRE(deployment.cli({"migrate"}).exit_code == 0);
  if (::geteuid() == 65534) {
    WARN("SKIPPED: the tests run as nobody");
    return;
  }
  CommandResult result = deployment.cli({"check", "--user", "nobody"});
  CHECK(result.exit_code == 0);
  const std::string config_warning =
      "program-executor: check: warning: nobody (the daemon's user) cannot read " +
      deployment.config().string() + " (owner " + ::getpwuid(::geteuid())->pw_name;
  CHECK_THAT(result.err, Catch::Contains(config_warning));
  CHECK_THAT(result.err, Catch::Contains("the config: the daemon cannot start; install -m 0640 "
                                         "-g nobody it"));
  CHECK_THAT(result.err, Catch::Contains("nobody (the daemon's user) cannot write " +
                                         deployment.database_file().string()));
  result = deployment.cli({"check", "--user", "nobody", "--strict"});
  CHECK(result.exit_code == 1);

  // The same as the test's user: nothing to warn about.
  result = deployment.cli({"check", "--user", ::getpwuid(::geteuid())->pw_name});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
}

TEST_CASE("commands log text lines on stderr whatever log.format says, unless asked",
          "[daemon][cli][log]") {
  // log.format json, as the packaged config has it.
  const Deployment deployment("log:\n  format: json\n");
  REQUIRE(deployment.cli({"migrate"}).exit_code == 0);
  {
    // A newer program-executor migrated: commands that write warn (database.schema_newer).
    program_executor::config::DatabaseSettings settings;
    settings.connection = "db=" + deployment.database_file().string();
    program_executor::store::Database database(settings, 1);
    {
      soci::session session(database.pool());  // the pool's one session, given back below
      session << "INSERT INTO programs_schema_version (version, description, applied_at) "
                 "VALUES (99, 'from the future', '2030-01-01T00:00:00Z')";
    }
    database.program_store()->insert({"run-logged", {"fixture.echo"}, {}, {}});
  }
  CommandResult result = deployment.cli({"cancel", "run-logged"});
  CHECK(result.exit_code == 0);
  CHECK(result.out == "cancelled run-logged\n");
  CHECK_THAT(result.err, Catch::Contains("database.schema_newer"));
  CHECK(result.err.find('{') == std::string::npos);  // no JSON line for a human

  result = deployment.cli({"cancel", "run-logged", "--log-format", "json"});
  CHECK(result.exit_code == 0);
  REQUIRE_FALSE(result.err.empty());
  const auto line = nlohmann::json::parse(result.err.substr(0, result.err.find('\n')));
  CHECK(line.at("event") == "database.schema_newer");
}
