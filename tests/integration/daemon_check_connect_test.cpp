// `check --connect` against the real broker and database (issue 18, item 13):
// reachable, queues compatible with the config (looked up, never created),
// the table and its schema version; and `create` warning about jobs no plugin
// has (item 4), which needs both. The database is PE_TEST_DATABASE (default:
// a SQLite file of the test's own).
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/test_environment.hpp"

namespace fs = std::filesystem;
using namespace program_executor;

namespace {

const std::string plugins = test::fixture("good").string();

// A YAML single-quoted scalar; "$${" keeps the loader from expanding "${".
std::string yaml_quoted(const std::string& text) {
  std::string quoted = "'";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\'') {
      quoted += "''";
    } else if (text.compare(i, 2, "${") == 0) {
      quoted += "$$";
      quoted += text[i];
    } else {
      quoted += text[i];
    }
  }
  return quoted + "'";
}

class Deployment {
 public:
  Deployment(std::string amqp_url, bool migrate = true)
      : amqp_url_(std::move(amqp_url)), queue_(test::unique_name("pe-check")) {
    const char* backend = std::getenv("PE_TEST_DATABASE");
    database_.backend = backend != nullptr && *backend != '\0' ? backend : "sqlite3";
    database_.table = test::unique_name("pe_check");
    if (database_.backend == "sqlite3") {
      database_.connection = "db=" + (dir_.path() / "programs.db").string();
    } else {
      const char* connection = std::getenv("PE_TEST_DATABASE_CONNECTION");
      if (connection == nullptr || *connection == '\0') {
        FAIL("PE_TEST_DATABASE=" << database_.backend << " needs PE_TEST_DATABASE_CONNECTION");
      }
      database_.connection = connection;
    }
    std::ofstream out(config_);
    out << "amqp:\n  url: " << yaml_quoted(amqp_url_) << "\n  queue: " << queue_ << "\n"
        << "database:\n  backend: " << database_.backend
        << "\n  connection: " << yaml_quoted(database_.connection)
        << "\n  table: " << database_.table << "\n  migrate: " << (migrate ? "true" : "false")
        << "\nplugins:\n  directory: " << plugins << "\n";
  }
  ~Deployment() {
    try {
      amqp::Connection connection(amqp::parse_url(amqp_url_, {}, 0), "test cleanup");
      for (const auto& q : {queue_, queue_ + "-retry-1000", queue_ + "-parked"}) {
        connection.delete_queue(q);
      }
    } catch (const std::exception&) {
    }
    if (database_.backend != "sqlite3") {
      try {
        store::Database database(database_, 1);
        soci::session session(database.pool());
        for (const auto& table : {database_.table, store::schema_version_table(database_.table)}) {
          session << "DROP TABLE IF EXISTS " + database.dialect().quote(table);
        }
      } catch (const std::exception&) {
      }
    }
  }
  test::CommandResult cli(std::vector<std::string> args) const {
    args.insert(args.begin(), PE_DAEMON_PATH);
    args.insert(args.begin() + 2, {"-c", config_.string()});
    return test::run_command(args);
  }
  test::CommandResult check_connect(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"check", "--connect", "--user",
                                     ::getpwuid(::geteuid())->pw_name};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli(args);
  }
  const std::string& queue() const { return queue_; }
  const std::string& table() const { return database_.table; }
  const std::string& amqp_url() const { return amqp_url_; }

 private:
  std::string amqp_url_;
  std::string queue_;
  test::TemporaryDirectory dir_;
  fs::path config_ = dir_.path() / "config.yaml";
  config::DatabaseSettings database_;
};

}  // namespace

TEST_CASE("check --connect reaches the broker and the database and changes nothing",
          "[daemon][check][connect]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const Deployment deployment(*url);

  test::CommandResult result = deployment.check_connect();
  INFO(result.err);
  CHECK(result.exit_code == 0);
  const std::string q = deployment.queue();
  CHECK_THAT(result.out, Catch::Contains(": ok; queues: " + q + " (missing: run declares it) " + q +
                                         "-retry-1000 (missing: run declares it) " + q +
                                         "-parked (missing: run declares it)\n"));
  // Nothing was declared.
  {
    amqp::Connection connection(amqp::parse_url(deployment.amqp_url(), {}, 0), "test");
    CHECK_FALSE(connection.queue_exists(q));
  }

  // Once a daemon's migrate and declarations are there, both are reported ok.
  REQUIRE(deployment.cli({"migrate"}).exit_code == 0);
  {
    amqp::Connection connection(amqp::parse_url(deployment.amqp_url(), {}, 0), "test");
    config::AmqpSettings settings;
    settings.queue = q;
    connection.declare(amqp::QueueTopology::from(settings));
  }
  result = deployment.check_connect();
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains(q + " (compatible) " + q + "-retry-1000 (compatible) " +
                                         q + "-parked (compatible)\n"));
  CHECK_THAT(result.out, Catch::Contains(": table " + deployment.table() +
                                         ": ok, schema version "));
}

TEST_CASE("check --connect refuses queues the broker would refuse to the daemon",
          "[daemon][check][connect]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const Deployment deployment(*url);
  {
    // Declared elsewhere as non-durable; the config wants durable queues.
    amqp::Connection connection(amqp::parse_url(*url, {}, 0), "test");
    connection.declare(amqp::QueueSpec{deployment.queue(), false, {}});
  }
  const test::CommandResult result = deployment.check_connect({"--json"});
  CHECK(result.exit_code == 1);
  const auto report = nlohmann::json::parse(result.out);
  CHECK(report.at("ok") == false);
  CHECK(report.at("error") == "check_failed");
  REQUIRE(report.at("problems").size() == 1);
  CHECK_THAT(report.at("problems")[0].get<std::string>(),
             Catch::StartsWith("broker: queue '" + deployment.queue() +
                               "' already exists with other settings: ") &&
                 Catch::Contains("amqp.durable must match the existing queue"));
  // The queue is as it was, and the others were not created.
  amqp::Connection connection(amqp::parse_url(*url, {}, 0), "test");
  CHECK(connection.queue_exists(deployment.queue()));
  CHECK_FALSE(connection.queue_exists(deployment.queue() + "-parked"));
}

TEST_CASE("check --connect refuses a missing table when run would not create it",
          "[daemon][check][connect]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const Deployment deployment(*url, /*migrate=*/false);
  if (std::getenv("PE_TEST_DATABASE") == nullptr ||
      std::string(std::getenv("PE_TEST_DATABASE")) == "sqlite3") {
    REQUIRE(deployment.cli({"migrate"}).exit_code == 0);  // the file exists, the table too
    return;
  }
  const test::CommandResult result = deployment.check_connect();
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains("database: ") &&
                             Catch::Contains(": table " + deployment.table() +
                                             " does not exist; database.migrate is false: run "
                                             "`program-executor migrate`"));
}

TEST_CASE("check --connect reports a broker it cannot reach", "[daemon][check][connect]") {
  const Deployment deployment("amqp://guest:guest@127.0.0.1:1/");
  const test::CommandResult result = deployment.check_connect();
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::StartsWith("program-executor: check: broker: "));
}

TEST_CASE("create warns about jobs no plugin has, and still creates the program",
          "[daemon][create]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const Deployment deployment(*url);
  test::CommandResult result =
      deployment.cli({"create", "--jobs", "fixture.echo,later.job", "--json"});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.err == "program-executor: warning: no plugin in " + plugins +
                          " has the job(s) later.job: a daemon that has not loaded a job skips "
                          "it (job.skipped); deploy the plugin and reload before the program "
                          "gets there\n");
  const auto created = nlohmann::json::parse(result.out);
  CHECK(created.at("unknown_jobs") == nlohmann::json::array({"later.job"}));
  CHECK(created.at("run_id").get<std::string>().size() == 36);

  // Known jobs only: no warning.
  result = deployment.cli({"create", "--jobs", "fixture.echo"});
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
}
