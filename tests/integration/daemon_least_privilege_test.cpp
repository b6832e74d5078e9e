// The daemon and the CLI as a database user holding exactly the grants of
// docs/security.md ("Least privilege"): the owner (PE_TEST_DATABASE_CONNECTION)
// runs `program-executor migrate` and grants user pe_least of .ci/databases
// SELECT, INSERT, UPDATE on the table, SELECT on its version table and, on
// PostgreSQL, USAGE on the id sequence; programs then run end to end as
// pe_least: several jobs, retries, failures, a job creating a program,
// cancel, resume, the recovery sweeper, restarts with migrate true and false.
// pe_least can neither delete nor create tables, so none of that needed DDL.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "daemon_server_database.hpp"
#include "support/job_gate.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The documented grants (docs/security.md), issued by the owner.
std::vector<std::string> minimal_grants(const store::Database& owner, const std::string& table) {
  const auto& dialect = owner.dialect();
  const std::string data = dialect.quote(table);
  const std::string versions = dialect.quote(store::schema_version_table(table));
  // The steps-per-minute table: each daemon adds its count and prunes old minutes.
  const std::string throughput = dialect.quote(store::throughput_table(table));
  // The attempt history: written with each step, pruned by the sweeper.
  const std::string attempts = dialect.quote(store::attempts_table(table));
  if (std::string(dialect.name()) == "mysql") {
    return {"GRANT SELECT, INSERT, UPDATE ON " + data + " TO 'pe_least'@'127.0.0.1'",
            "GRANT SELECT ON " + versions + " TO 'pe_least'@'127.0.0.1'",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON " + throughput + " TO 'pe_least'@'127.0.0.1'",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON " + attempts + " TO 'pe_least'@'127.0.0.1'"};
  }
  return {"GRANT SELECT, INSERT, UPDATE ON " + data + " TO pe_least",
          "GRANT SELECT ON " + versions + " TO pe_least",
          "GRANT SELECT, INSERT, UPDATE, DELETE ON " + throughput + " TO pe_least",
          "GRANT SELECT, INSERT, UPDATE, DELETE ON " + attempts + " TO pe_least",
          "GRANT USAGE ON SEQUENCE " + dialect.quote(table + "_id_seq") + " TO pe_least",
          "GRANT USAGE ON SEQUENCE " + dialect.quote(store::attempts_table(table) + "_id_seq") +
              " TO pe_least"};
}

// MariaDB keeps table grants after DROP TABLE: take them back first.
void revoke_grants(const store::Database& owner, const std::string& table) noexcept {
  if (std::string(owner.dialect().name()) != "mysql") return;  // PostgreSQL drops them with the table
  try {
    soci::session session(const_cast<store::Database&>(owner).pool());
    for (const std::string& name :
         {table, store::schema_version_table(table), store::throughput_table(table),
          store::attempts_table(table)}) {
      session << "REVOKE ALL PRIVILEGES ON " + owner.dialect().quote(name) +
                     " FROM 'pe_least'@'127.0.0.1'";
    }
  } catch (const std::exception&) {
  }
}

// Waits until the daemon has logged what became of a step of `run_id` after
// its job.finished (the commit's outcome: the next step published, or the
// step dropped because the program was cancelled meanwhile).
bool wait_for_step_outcome(const test::DaemonProcess& daemon, const std::string& run_id,
                           std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    std::istringstream lines(daemon.log());
    bool finished = false;
    for (std::string line; std::getline(lines, line);) {
      if (line.find(run_id) == std::string::npos) continue;
      if (finished) return true;
      finished = line.find("\"job.finished\"") != std::string::npos;
    }
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

}  // namespace

TEST_CASE("programs run end to end as a database user with data privileges only",
          "[daemon][database][least-privilege]") {
  const std::string backend = test::server_backend_name();
  if (backend.empty()) {
    SUCCEED("needs a server database (PE_TEST_DATABASE postgresql, mysql or odbc)");
    return;
  }
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto least = test::per_backend_connection(backend, "LEAST");
  if (!least) return;
  const std::string owner_connection = test::env_text("PE_TEST_DATABASE_CONNECTION");
  REQUIRE_FALSE(owner_connection.empty());

  // The deployment's config.yaml is the owner's; least.yaml and
  // least-migrate.yaml reach the same table as pe_least. The deployment
  // drops the table (as the owner) and deletes the queues at the end.
  test::DeploymentOptions options;
  options.amqp_url = *url;
  options.heartbeat_seconds = 5;
  options.database = test::server_database(backend, owner_connection);
  options.migrate = true;
  options.plugin_dir = test::demo_and_gate_plugin_dir();  // demo.* and fixture.gate
  options.workers = 2;
  options.shutdown_grace_seconds = 10;
  options.log_level = "debug";
  test::Deployment deployment(options);
  const fs::path owner_config = deployment.config();
  const config::DatabaseSettings owner_settings = deployment.database();
  const std::string& table = deployment.table();
  config::DatabaseSettings least_settings = owner_settings;
  least_settings.connection = *least;
  const fs::path config = deployment.path("least.yaml");
  deployment.write_config_to(config, least_settings, false);
  const fs::path config_migrate = deployment.path("least-migrate.yaml");
  deployment.write_config_to(config_migrate, least_settings, true);

  // Before the owner migrates, pe_least can do nothing: no table to use, and
  // no right to create one.
  const test::CommandResult refused = test::cli(config_migrate, "migrate");
  CHECK(refused.exit_code == 1);
  WARN("migrate as pe_least (" << backend << "): " << refused.err);

  const test::CommandResult migrate = test::cli(owner_config, "migrate");
  INFO(migrate.err);
  REQUIRE(migrate.exit_code == 0);
  auto owner = std::make_unique<store::Database>(owner_settings, 1);
  {
    soci::session session(owner->pool());
    for (const std::string& grant : minimal_grants(*owner, table)) session << grant;
  }

  CHECK(test::cli(config, "migrate", {"--check"}).exit_code == 0);
  {
    auto daemon = std::make_unique<test::DaemonProcess>(config, deployment.path("daemon-1.log"));
    REQUIRE(daemon->wait_for_log("\"daemon.started\"", 30s));
    const std::string multi = test::create_program(config, "demo.log,demo.sleep,demo.count,demo.log",
                                     {{"demo.sleep", {{"ms", 50}}}});
    const std::string flaky = test::create_program(config, "demo.flaky,demo.log", {{"demo.flaky", {{"failures", 2}}}});
    const std::string failing = test::create_program(config, "demo.log,demo.fail", {{"demo.fail", {{"message", "boom"}}}});
    const std::string spawner = test::create_program(config, "demo.spawn", {{"demo.spawn", {{"jobs", {"demo.log"}}}}});
    const std::string paged = test::create_program(config, "demo.paginate",
                                     {{"demo.paginate", {{"pages", 3}, {"page_ms", 20}}}});
    // Its first step runs until it has been cancelled, however slow the machine.
    const test::JobGate gate;
    const std::string slow = test::create_program(config, "fixture.gate,demo.log", gate.job_data());
    REQUIRE(daemon->wait_for_log("\"job.started\",\"job\":\"fixture.gate\"", 60s));
    const test::CommandResult cancel = test::cli(config, "cancel", {slow});
    INFO(cancel.err);
    CHECK(cancel.exit_code == 0);
    gate.open();

    json row = test::wait_until_ended(config, multi);
    CHECK(row["state"] == "finished");
    CHECK(row["step"] == 3);
    row = test::wait_until_ended(config, flaky);
    CHECK(row["state"] == "finished");
    row = test::wait_until_ended(config, failing);
    CHECK(row["state"] == "errored");
    CHECK(row["error_message"] == "boom");
    row = test::wait_until_ended(config, spawner);
    CHECK(row["state"] == "finished");
    const std::string spawned = row["job_data"]["demo.spawn"]["spawned_run_id"].get<std::string>();
    CHECK(test::wait_until_ended(config, spawned)["state"] == "finished");
    CHECK(test::wait_until_ended(config, paged)["state"] == "finished");
    CHECK(test::wait_until_ended(config, slow)["state"] == "cancelled");
    // The cancelled step has ended and its commit found the program
    // cancelled before the program is resumed, so the resumed step is not a
    // copy of a running one.
    REQUIRE(wait_for_step_outcome(*daemon, slow, 60s));

    // The cancelled program resumes (an UPDATE and a publish) and finishes.
    const test::CommandResult resume = test::cli(config, "resume", {slow});
    INFO(resume.err);
    CHECK(resume.exit_code == 0);
    CHECK(test::wait_until_ended(config, slow)["state"] == "finished");

    const test::CommandResult list = test::cli(config, "list", {"--json", "--limit", "50"});
    INFO(list.err);
    CHECK(list.exit_code == 0);
    CHECK(json::parse(list.out).size() == 7);
    CHECK(daemon->stop(SIGTERM, 30s) == 0);
    // No statement was refused along the way (retried steps would hide it).
    CHECK(daemon->count_in_log("denied") == 0);
    CHECK(daemon->count_in_log("\"database.connection_lost\"") == 0);
  }
  {
    // migrate: true with a current schema needs no DDL either.
    test::DaemonProcess daemon(config_migrate, deployment.path("daemon-2.log"));
    REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
    const std::string run_id = test::create_program(config_migrate, "demo.log,demo.log");
    CHECK(test::wait_until_ended(config_migrate, run_id)["state"] == "finished");
    CHECK(daemon.stop(SIGTERM, 30s) == 0);
  }

  // The grants are really that small: no DELETE, no DDL.
  {
    least_settings.migrate = false;
    store::Database restricted(least_settings, 1);
    soci::session session(restricted.pool());
    const std::string quoted = restricted.dialect().quote(table);
    CHECK_THROWS(session << "DELETE FROM " + quoted);
    CHECK_THROWS(session << "ALTER TABLE " + quoted + " ADD COLUMN pe_extra INTEGER");
    CHECK_THROWS(session << "CREATE TABLE " + restricted.dialect().quote(table + "_x") +
                                " (id INTEGER)");
    CHECK_THROWS(session << "INSERT INTO " +
                                restricted.dialect().quote(store::schema_version_table(table)) +
                                " (version, description) VALUES (99, 'x')");
  }
  revoke_grants(*owner, table);
  owner.reset();
}
