// database.password_file against the real servers: the CLI and the daemon log
// in as pe_secret (.ci/databases), whose password is only in a file and holds
// every character the connection string syntaxes treat specially; a wrong
// password is refused with the server's message and never printed. Runs for
// the server backend of PE_TEST_DATABASE (postgresql, mysql, odbc); sqlite3
// has no password and is refused by the loader (unit/config_database_password_test).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_server_database.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/config/database_password.hpp"
#include "support/deployment.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string first_line(const fs::path& path) {
  std::string line = read_text(path);
  return line.substr(0, line.find('\n'));
}

void write_secret(const fs::path& path, const std::string& password) {
  {
    std::ofstream out(path, std::ios::binary);
    out << password << "\n";
    REQUIRE(out.good());
  }
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

// The value of `key` in a key=value connection string (unquoted values only).
std::string parameter(const std::string& connection, const std::string& key) {
  std::istringstream words(connection);
  for (std::string word; words >> word;) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return "";
}

// The connection strings to try for `backend`, each naming user pe_secret
// and either no password or a wrong one, which the file's must replace.
std::vector<std::string> forms(const std::string& backend, const std::string& connection) {
  if (backend == "postgresql") {
    return {connection + " password=wrong-in-the-string",
            "postgresql://pe_secret:wrong-in-the-url@" + parameter(connection, "host") + ":" +
                parameter(connection, "port") + "/" + parameter(connection, "dbname") +
                "?connect_timeout=5"};
  }
  if (backend == "mysql") return {"password=wrong-in-the-string " + connection};
  return {connection + ";PWD={wrong-in-the-string}"};
}

// What a server says when it refuses pe_secret's password.
std::string refusal(const std::string& backend) {
  if (backend == "mysql") return "Access denied for user 'pe_secret'@";
  return "password authentication failed for user \"pe_secret\"";
}

std::string unique_secret() {
  std::random_device random;
  return "pe-db-secret-" + std::to_string(random()) + "-" + std::to_string(random());
}

// The command line and thread names of `pid`, and its environment.
std::string process_exposure(pid_t pid) {
  const fs::path proc = "/proc/" + std::to_string(pid);
  std::string text = read_text(proc / "cmdline") + "\n" + read_text(proc / "environ") + "\n";
  for (const auto& task : fs::directory_iterator(proc / "task")) text += read_text(task.path() / "comm");
  return text;
}

// `program-executor COMMAND` with $CREDENTIALS_DIRECTORY set, as systemd does.
test::CommandResult cli_with_credentials(const fs::path& credentials, const fs::path& config,
                                         const std::string& command,
                                         std::vector<std::string> args = {}) {
  args.insert(args.begin(), {"/usr/bin/env", "CREDENTIALS_DIRECTORY=" + credentials.string(),
                             PE_DAEMON_PATH, command, "-c", config.string()});
  return test::run_command(args);
}

// A deployment on the server database `backend` as the user of `connection`,
// whose password is in `password_file`, with a table and a queue of its own.
test::DeploymentOptions password_file_deployment(const std::string& amqp_url,
                                                 const std::string& backend,
                                                 const std::string& connection,
                                                 const std::string& password_file) {
  test::DeploymentOptions settings;
  settings.amqp_url = amqp_url;
  settings.heartbeat_seconds = 5;
  settings.database = test::server_database(backend, connection);
  settings.database_password_file = password_file;
  settings.migrate = true;
  settings.workers = 2;
  settings.shutdown_grace_seconds = 10;
  settings.log_level = "debug";
  return settings;
}

}  // namespace

TEST_CASE("the CLI and the daemon log in to the database with the password from a file",
          "[daemon][secrets][database]") {
  const std::string backend = test::server_backend_name();
  if (backend.empty()) {
    SUCCEED("needs a server database (PE_TEST_DATABASE postgresql, mysql or odbc)");
    return;
  }
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto connection = test::per_backend_connection(backend, "SECRET");
  if (!connection) return;
  const fs::path secret_file = test::env_text("PE_TEST_DB_SECRET_PASSWORD_FILE");
  REQUIRE(fs::is_regular_file(secret_file));
  const std::string password = first_line(secret_file);
  REQUIRE(password.find('\'') != std::string::npos);  // the syntaxes' hard cases are in it
  REQUIRE(password.find('}') != std::string::npos);

  for (const std::string& form : forms(backend, *connection)) {
    INFO("connection: " << form);
    // A systemd credential: the config names ${CREDENTIALS_DIRECTORY}/db-password.
    test::DeploymentOptions settings =
        password_file_deployment(*url, backend, form, "${CREDENTIALS_DIRECTORY}/db-password");
    settings.workers = 1;
    // The end drops the table as pe_secret with the password in the string.
    settings.owner_connection = config::with_database_password(store::parse_backend(backend), form, password);
    test::Deployment deployment(std::move(settings));
    const fs::path credentials = deployment.path("credentials");
    fs::create_directory(credentials);
    write_secret(credentials / "db-password", password);
    const fs::path config = deployment.config();
    const auto absent = [&](const std::string& text) {
      return text.find(password) == std::string::npos;
    };

    const test::CommandResult migrate = cli_with_credentials(credentials, config, "migrate", {"--json"});
    INFO(migrate.err);
    REQUIRE(migrate.exit_code == 0);
    CHECK(json::parse(migrate.out)["to"] == 6);
    const test::CommandResult create = cli_with_credentials(
        credentials, config, "create", {"--jobs", "demo.log,demo.log", "--program-data", "{}"});
    INFO(create.err);
    REQUIRE(create.exit_code == 0);
    const std::string run_id = test::run_id_of(create);
    {
      test::DaemonProcess daemon(config, deployment.path("daemon.log"),
                                 {{"CREDENTIALS_DIRECTORY", credentials.string()}});
      REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
      CHECK(daemon.wait_for_log("\"program.finished\"", 30s));
      CHECK(absent(process_exposure(daemon.pid())));
      CHECK(daemon.stop(SIGTERM, 30s) == 0);
      CHECK(absent(daemon.log()));
    }
    const test::CommandResult status = cli_with_credentials(credentials, config, "status", {run_id, "--json"});
    REQUIRE(status.exit_code == 0);
    CHECK(json::parse(status.out)["state"] == "finished");
    const test::CommandResult check = cli_with_credentials(credentials, config, "check", {"--json"});
    for (const auto* result : {&migrate, &create, &status, &check}) {
      CHECK(absent(result->out));
      CHECK(absent(result->err));
    }
  }
}

TEST_CASE("a wrong database password from a file is refused and appears in no output",
          "[daemon][secrets][database]") {
  const std::string backend = test::server_backend_name();
  if (backend.empty()) {
    SUCCEED("needs a server database (PE_TEST_DATABASE postgresql, mysql or odbc)");
    return;
  }
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto connection = test::per_backend_connection(backend, "SECRET");
  if (!connection) return;
  // The password is refused, so no table is made: the end only deletes the queues.
  test::Deployment deployment(password_file_deployment(*url, backend, *connection, ""));
  const std::string secret = unique_secret();
  write_secret(deployment.path("db-password"), secret);
  deployment.options().database_password_file = deployment.path("db-password").string();
  deployment.write_config();
  const fs::path config = deployment.config();

  std::vector<test::CommandResult> results = {
      test::cli(config, "migrate"),
      test::cli(config, "migrate", {"--check", "--json"}),
      test::cli(config, "create", {"--jobs", "demo.log"}),
      test::cli(config, "status", {"00000000-0000-0000-0000-000000000000", "--json"}),
      test::cli(config, "list", {"--json"}),
  };
  for (const auto& result : results) {
    INFO(result.err);
    CHECK(result.exit_code == 1);
    // With --json the error is JSON on stdout (docs/operations.md, section 8).
    const bool json = result.err.empty() && !result.out.empty();
    const std::string message =
        json ? "program-executor: error: " +
                   nlohmann::json::parse(result.out).at("message").get<std::string>()
             : result.err;
    if (json) CHECK(nlohmann::json::parse(result.out).at("error") == "database");
    CHECK_THAT(message, Catch::StartsWith("program-executor: error: cannot open database (" +
                                          backend + "): ") &&
                            Catch::Contains(refusal(backend)));
    CHECK(result.out.find(secret) == std::string::npos);
    CHECK(result.err.find(secret) == std::string::npos);
  }
  // The message the operator sees, for the record (docs/security.md).
  WARN("refused (" << backend << "): " << results.front().err);

  test::DaemonProcess daemon(config, deployment.path("daemon.log"));
  CHECK(daemon.stop(0, 30s) == 1);  // signal 0: only waits for the exit
  const std::string log = daemon.log();
  CHECK_THAT(log, Catch::Contains(refusal(backend)));
  CHECK(log.find(secret) == std::string::npos);
}

TEST_CASE("a mysql:// URL carries any password from a file", "[daemon][secrets][database]") {
  if (test::server_backend_name() != "mysql") {
    SUCCEED("PE_TEST_DATABASE=mysql only");
    return;
  }
  const auto connection = test::per_backend_connection("mysql", "SECRET");
  if (!connection) return;
  const fs::path secret_file = test::env_text("PE_TEST_DB_SECRET_PASSWORD_FILE");
  REQUIRE(fs::is_regular_file(secret_file));
  test::DeploymentOptions settings = password_file_deployment(
      "amqp://guest:guest@127.0.0.1:5672/",  // not used by migrate --check
      "mysql",
      "mysql://pe_secret:wrong@" + parameter(*connection, "host") + ":" +
          parameter(*connection, "port") + "/" + parameter(*connection, "db"),
      secret_file.string());
  settings.delete_queues = false;  // no queue was declared, and no broker is needed
  test::Deployment deployment(std::move(settings));
  const fs::path config = deployment.config();
  // The password holds ' and \, which the URL's translation into SOCI
  // parameters must quote (core/src/store/database.cpp, soci_parameter).
  const test::CommandResult check = test::cli(config, "migrate", {"--check", "--json"});
  INFO(check.err);
  CHECK(check.exit_code == 1);  // the table does not exist: logged in, schema behind
  CHECK(json::parse(check.out.empty() ? "{}" : check.out).value("exists", true) == false);
  CHECK(check.err.find(first_line(secret_file)) == std::string::npos);
}
