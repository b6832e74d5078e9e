// `check --connect` against the real broker and database (issue 18, item 13):
// reachable, queues compatible with the config (looked up, never created),
// the table and its schema version; and `create` warning about jobs no plugin
// has (item 4), which needs both. The database is PE_TEST_DATABASE (default:
// a SQLite file of the test's own).
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_server_database.hpp"
#include "program_executor/amqp/connection.hpp"
#include "support/deployment.hpp"
#include "support/plugin_paths.hpp"

namespace fs = std::filesystem;
using namespace program_executor;

namespace {

const std::string plugins = test::fixture("good").string();

// The good fixture plugins and the suite's database.
class Deployment : public test::Deployment {
 public:
  explicit Deployment(std::string amqp_url, bool migrate = true)
      : test::Deployment([&] {
          test::DeploymentOptions settings;
          settings.amqp_url = std::move(amqp_url);
          settings.queue_prefix = "pe-check";
          settings.database = test::suite_database;
          settings.migrate = migrate;
          settings.plugin_dir = ::plugins;
          settings.log_format = "";
          settings.metrics_listen = std::nullopt;
          return settings;
        }()) {}
  test::CommandResult check_connect(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"check", "--connect", "--user",
                                     ::getpwuid(::geteuid())->pw_name};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli(args);
  }
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
