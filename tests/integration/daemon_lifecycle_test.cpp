// The daemon's life under a supervisor: readiness, watchdog, reload (SIGHUP).
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/amqp/connection.hpp"
#include "daemon_server_database.hpp"
#include "support/deployment.hpp"
#include "support/job_gate.hpp"
#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/program_cli.hpp"
#include "support/tcp_forwarder.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A deployment whose plugin directory the test fills itself; `database`: a
// server database instead of the SQLite file (DeploymentOptions::database).
class PluginDeployment : public test::Deployment {
 public:
  explicit PluginDeployment(
      std::string amqp_url,
      std::function<config::DatabaseSettings(const fs::path&)> database = {})
      : test::Deployment([&] {
          test::DeploymentOptions settings;
          settings.amqp_url = std::move(amqp_url);
          settings.database = std::move(database);
          settings.queue_prefix = "pe-life";
          settings.own_plugin_directory = true;
          settings.workers = 1;
          settings.extra_queue_suffixes = {"-retry-2000"};
          return settings;
        }()) {}
};

const fs::path demo_plugin = test::demo_plugin();
const fs::path fixture_plugin = test::fixture("good/good.so");
const fs::path gate_plugin = fs::path(test::demo_and_gate_plugin_dir()) / "gate.so";

// Receives what the daemon tells systemd through $NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    timeval timeout{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~NotifySocket() { ::close(fd_); }

  // Waits for a datagram containing `text`; collects everything seen.
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) continue;
      const std::string message(buffer, static_cast<std::size_t>(n));
      seen.push_back(message);
      if (message.find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::vector<std::string> seen;

 private:
  fs::path path_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE("the daemon tells systemd it is ready, pings the watchdog, reloads and stops",
          "[daemon][systemd]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  NotifySocket notify(deployment.path("notify.sock"));
  test::DaemonProcess daemon(
      deployment.config(), deployment.path("daemon.log"),
      {{"NOTIFY_SOCKET", deployment.path("notify.sock").string()}, {"WATCHDOG_USEC", "400000"}});
  CHECK(notify.wait_for("READY=1", 30s));
  // Pings every 200 ms while the worker loop turns (the deadlines are only
  // there to end the test: they allow for a loaded machine).
  CHECK(notify.wait_for("WATCHDOG=1", 30s));
  CHECK(notify.wait_for("WATCHDOG=1", 30s));
  ::kill(daemon.pid(), SIGHUP);
  CHECK(notify.wait_for("RELOADING=1", 30s));
  CHECK(notify.wait_for("READY=1", 30s));
  ::kill(daemon.pid(), SIGTERM);
  CHECK(notify.wait_for("STOPPING=1", 30s));
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}

namespace {

// The test broker's URL with its host and port replaced by 127.0.0.1:`port`.
std::string url_through(const amqp::ConnectionSettings& broker, int port) {
  return "amqp://" + broker.user + ":" + broker.password + "@127.0.0.1:" + std::to_string(port) +
         (broker.vhost == "/" ? "/" : "/" + broker.vhost);
}

// The suite's server database (PE_TEST_DATABASE), or nothing on SQLite: a
// test of a database server's start-up runs in the server backends' passes.
std::optional<config::DatabaseSettings> suite_server() {
  const config::DatabaseSettings server = test::suite_database(fs::temp_directory_path());
  if (server.backend != config::DatabaseBackend::sqlite3) return server;
  SUCCEED("a server backend's test: PE_TEST_DATABASE=postgresql, mysql or odbc runs it");
  return std::nullopt;
}

// The started daemon runs a demo.count program once, then stops cleanly.
void runs_a_program_then_stops(test::Deployment& deployment, test::DaemonProcess& daemon) {
  const std::string run_id = deployment.create("demo.count");
  const json row = deployment.wait_until_ended(run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["job_data"]["demo.count"]["runs"] == 1);
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}

bool any_contains(const std::vector<std::string>& messages, const std::string& text) {
  for (const auto& message : messages) {
    if (message.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a broker that comes up late is waited for: READY once connected, then programs run",
          "[daemon][systemd][startup]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto broker = amqp::parse_url(*url, {}, 0);
  // Refuses connections until listen(), then forwards them to the test broker.
  test::TcpForwarder late_broker(broker.host, broker.port);
  PluginDeployment deployment(url_through(broker, late_broker.port()));
  deployment.install_plugin(demo_plugin, "demo.so");
  NotifySocket notify(deployment.path("notify.sock"));
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"),
                             {{"NOTIFY_SOCKET", deployment.path("notify.sock").string()}});

  // Each refused attempt is logged, and systemd hears why the start takes long.
  REQUIRE(daemon.wait_for_log("\"amqp.waiting\"", 30s, 2));
  CHECK(notify.wait_for("STATUS=waiting for the broker", 10s));
  CHECK(daemon.running());
  CHECK_FALSE(any_contains(notify.seen, "READY=1"));
  CHECK(daemon.count_in_log("\"daemon.started\"") == 0);

  late_broker.listen();
  CHECK(notify.wait_for("READY=1", 60s));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
  CHECK(daemon.count_in_log("\"amqp.ready\"") == 1);
  runs_a_program_then_stops(deployment, daemon);
}

TEST_CASE("a database server that comes up late is waited for by run and serve: READY once connected",
          "[daemon][systemd][startup]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto server = suite_server();
  if (!server) return;
  // The suite's server through a port that refuses connections until listen().
  std::smatch port;
  REQUIRE(std::regex_search(server->connection, port, std::regex("(?:port|PORT)=([0-9]+)")));
  test::TcpForwarder late_database("127.0.0.1", std::stoi(port[1].str()));
  PluginDeployment deployment(*url, [&](const fs::path&) {
    config::DatabaseSettings through = *server;
    through.connection = std::regex_replace(server->connection, std::regex("((?:port|PORT)=)[0-9]+"),
                                            "$01" + std::to_string(late_database.port()));
    return through;
  });
  deployment.install_plugin(demo_plugin, "demo.so");
  // `serve` too (the HTTP API), which needs a token file.
  const fs::path tokens = deployment.path("operator-tokens");
  std::ofstream(tokens) << "late-database-operator-token-0123456789\n";
  fs::permissions(tokens, fs::perms::owner_read | fs::perms::owner_write);
  deployment.rewrite_config("web:\n  listen: \"127.0.0.1:0\"\n  operator_token_file: " +
                            test::yaml_quoted(tokens.string()) + "\n");
  NotifySocket notify(deployment.path("notify.sock"));
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"),
                             {{"NOTIFY_SOCKET", deployment.path("notify.sock").string()}});
  test::DaemonProcess serve(deployment.config(), deployment.path("serve.log"), {}, "serve");

  // Each refused attempt is logged, the daemon stays up, and systemd hears why.
  REQUIRE(daemon.wait_for_log("\"database.waiting\"", 30s, 2));
  CHECK(notify.wait_for("STATUS=waiting for the database", 10s));
  CHECK(daemon.running());
  CHECK_FALSE(any_contains(notify.seen, "READY=1"));
  CHECK(daemon.count_in_log("\"database.ready\"") == 0);
  CHECK(daemon.count_in_log("\"amqp.ready\"") == 0);  // the database comes first

  REQUIRE(serve.wait_for_log("\"database.waiting\"", 30s, 2));
  CHECK(serve.count_in_log("\"web.listening\"") == 0);

  late_database.listen();
  CHECK(notify.wait_for("READY=1", 60s));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
  CHECK(daemon.count_in_log("\"database.ready\"") == 1);
  CHECK(serve.wait_for_log("\"web.listening\"", 60s));
  CHECK(serve.stop(SIGTERM, 20s) == 0);
  runs_a_program_then_stops(deployment, daemon);
}

TEST_CASE("a database that answers and refuses is not waited for: the start fails at once",
          "[daemon][startup]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto server = suite_server();
  if (!server) return;
  // The suite's server and user, with a password it refuses. (The table is
  // never created, so the deployment has none to drop.)
  PluginDeployment deployment(*url, [&](const fs::path&) {
    config::DatabaseSettings refused = *server;
    refused.connection = std::regex_replace(server->connection, std::regex("((?:password|PWD)=)[^ ;]+"),
                                            "$01not-the-password");
    return refused;
  });
  deployment.install_plugin(demo_plugin, "demo.so");
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"));
  CHECK(daemon.wait_for_exit(30s) == 1);
  CHECK(daemon.count_in_log("\"database.waiting\"") == 0);
  CHECK(daemon.count_in_log("cannot open database") == 1);
}

TEST_CASE("SIGTERM while waiting for the broker stops the daemon cleanly, never READY",
          "[daemon][systemd][startup]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto broker = amqp::parse_url(*url, {}, 0);
  test::TcpForwarder absent_broker(broker.host, broker.port);  // never listens
  PluginDeployment deployment(url_through(broker, absent_broker.port()));
  deployment.install_plugin(demo_plugin, "demo.so");
  NotifySocket notify(deployment.path("notify.sock"));
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"),
                             {{"NOTIFY_SOCKET", deployment.path("notify.sock").string()}});
  REQUIRE(daemon.wait_for_log("\"amqp.waiting\"", 30s));
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
  CHECK(daemon.count_in_log("\"daemon.stopped\"") == 1);
  notify.wait_for("READY=1", 500ms);  // collect what was sent
  CHECK_FALSE(any_contains(notify.seen, "READY=1"));
}

TEST_CASE("SIGHUP loads new plugins for the next steps, a bad reload keeps the running set",
          "[daemon][reload]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));

  // Not loaded yet: skipped, as any unknown job.
  std::string run_id = deployment.create("fixture.count");
  CHECK(deployment.wait_until_ended(run_id)["job_data"].is_object());
  CHECK(daemon.count_in_log("\"job.skipped\"") == 1);

  deployment.install_plugin(fixture_plugin, "fixture.so");
  ::kill(daemon.pid(), SIGHUP);
  REQUIRE(daemon.wait_for_log("\"daemon.reloaded\"", 30s));
  run_id = deployment.create("fixture.count,demo.log");
  CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
  CHECK(daemon.count_in_log("\"job.skipped\"") == 1);  // fixture.count ran this time
  CHECK(daemon.count_in_log("\"job\":\"fixture.count\"") >= 2);

  // A plugin that cannot load makes the reload fail as a whole.
  std::ofstream(deployment.plugins() / "broken.so") << "not a shared object";
  ::kill(daemon.pid(), SIGHUP);
  REQUIRE(daemon.wait_for_log("\"daemon.reload_failed\"", 30s));
  CHECK(daemon.count_in_log("broken.so") >= 1);
  fs::remove(deployment.plugins() / "broken.so");
  run_id = deployment.create("fixture.count,demo.log");
  CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
  CHECK(daemon.count_in_log("\"job.skipped\"") == 1);

  // So does a config that does not validate; the daemon keeps working.
  deployment.rewrite_config("workers: many\n");
  ::kill(daemon.pid(), SIGHUP);
  REQUIRE(daemon.wait_for_log("\"daemon.reload_failed\"", 30s, 2));
  CHECK(daemon.count_in_log("workers") >= 1);
  deployment.rewrite_config("");
  run_id = deployment.create("demo.log");
  CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}

TEST_CASE("a .so replaced under the same name serves the next steps after a reload",
          "[daemon][reload]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.install_plugin(fixture_plugin, "jobs.so");
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
  std::string run_id = deployment.create("fixture.count");
  CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");

  // The same file name now holds other jobs.
  deployment.install_plugin(demo_plugin, "jobs.so");
  ::kill(daemon.pid(), SIGHUP);
  REQUIRE(daemon.wait_for_log("\"daemon.reloaded\"", 30s));
  run_id = deployment.create("demo.count,fixture.count");
  const json row = deployment.wait_until_ended(run_id);
  CHECK(row["state"] == "finished");
  CHECK(row["job_data"]["demo.count"]["runs"] == 1);  // the new library ran
  CHECK(daemon.count_in_log("\"job.skipped\"") == 1);  // the old one's job is gone
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}

TEST_CASE("a step whose worker was killed is taken over once its claim expires", "[daemon][recovery]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  deployment.install_plugin(gate_plugin, "gate.so");
  // The claim outlives the second daemon's start however slow the machine
  // is, so the redelivered message meets it still held.
  deployment.rewrite_config(
      "recovery:\n  lease_seconds: 15\n  stale_after_seconds: 1\n  sweep_interval_seconds: 1\n");
  auto first =
      std::make_unique<test::DaemonProcess>(deployment.config(), deployment.path("first.log"));
  REQUIRE(first->wait_for_log("\"daemon.started\"", 30s));
  const test::JobGate gate;  // closed while the first daemon runs the step
  auto result =
      test::run_command({PE_DAEMON_PATH, "create", "-c", deployment.config().string(), "--jobs",
                         "fixture.gate,demo.count", "--job-data", gate.job_data().dump()});
  REQUIRE(result.exit_code == 0);
  const std::string run_id = result.out.substr(0, 36);
  REQUIRE(first->wait_for_log("\"job.started\"", 30s));
  CHECK(first->stop(SIGKILL, 30s) == 128 + SIGKILL);  // dies holding the claim
  gate.open();

  test::DaemonProcess second(deployment.config(), deployment.path("second.log"));
  const json row = deployment.wait_until_ended(run_id, 120s);
  CHECK(row["state"] == "finished");
  CHECK(row["job_data"]["demo.count"]["runs"] == 1);
  // The redelivered message met the dead worker's live claim and was dropped;
  // once the claim ran out the sweeper republished the step, counted as a crash.
  CHECK(second.count_in_log("\"step.busy\"") == 1);
  CHECK(second.count_in_log("\"program.recovered\"") >= 1);
  CHECK(second.count_in_log("\"job.started\"") == 2);  // fixture.gate again, then demo.count
  CHECK(second.stop(SIGTERM, 30s) == 0);
}

TEST_CASE("programs run on quorum queues", "[daemon][quorum]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  deployment.rewrite_config("");
  {
    // The keys belong in the amqp section written above.
    std::ifstream in(deployment.config());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = text.find("database:");
    text.insert(at, "  queue_type: quorum\n  delivery_limit: 10\n");
    std::ofstream(deployment.config()) << text;
  }
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
  const std::string run_id = deployment.create("demo.flaky,demo.count");
  const json row = deployment.wait_until_ended(run_id);
  CHECK(row["state"] == "finished");
  CHECK(daemon.count_in_log("\"job.retry\"") == 1);  // the retry queue works on quorum queues too
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}

namespace {

// How many of `pid`'s open files are `file`.
int open_handles(pid_t pid, const fs::path& file) {
  const fs::path wanted = fs::canonical(file);
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code error;
    const fs::path target = fs::read_symlink(entry.path(), error);
    if (!error && target == wanted) ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("a daemon on SQLite opens its database once, whatever its workers", "[daemon][sqlite]") {
  // One session for the process: a session per worker took turns writing
  // and dropped each other's page cache at every step (docs/databases.md).
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.options().workers = 4;
  deployment.install_plugin(demo_plugin, "demo.so");
  deployment.rewrite_config("");
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
  std::vector<std::string> run_ids;
  for (int i = 0; i < 8; ++i) {
    run_ids.push_back(deployment.create("demo.count,demo.count,demo.count"));
  }
  for (const std::string& run_id : run_ids) {
    CHECK(deployment.wait_until_ended(run_id)["state"] == "finished");
  }
  CHECK(daemon.count_in_log("\"workers\":4") >= 1);
  CHECK(open_handles(daemon.pid(), deployment.path("programs.db")) == 1);
  CHECK(open_handles(daemon.pid(), deployment.path("programs.db-wal")) == 1);
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}

TEST_CASE("retry policies: a delay queue per delay, and a limit that errors the program",
          "[daemon][retry]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  deployment.rewrite_config(
      "retry:\n  max_attempts: 10\n  jobs:\n    demo.flaky:\n"
      "      delay_ms: 2000\n      max_attempts: 2\n");
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
  const auto started = std::chrono::steady_clock::now();
  auto result =
      test::run_command({PE_DAEMON_PATH, "create", "-c", deployment.config().string(), "--jobs",
                         "demo.flaky", "--job-data", R"({"demo.flaky":{"failures":5}})"});
  REQUIRE(result.exit_code == 0);
  const json row = deployment.wait_until_ended(result.out.substr(0, 36));
  CHECK(row["state"] == "errored");
  CHECK(row["error_message"] ==
        "job demo.flaky failed 2 times, its retry limit; last error: flaky failure 2 of 5");
  // The one retry waited in the 2000 ms delay queue.
  CHECK(std::chrono::steady_clock::now() - started >= 2s);
  CHECK(daemon.count_in_log("\"delay_ms\":2000") == 1);
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}

TEST_CASE("the operator's commands: list, resume, jobs, version, with --json", "[daemon][cli]") {
  auto url = test::amqp_url_or_skip();
  if (!url) return;
  PluginDeployment deployment(*url);
  deployment.install_plugin(demo_plugin, "demo.so");
  const std::string config = deployment.config().string();
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), PE_DAEMON_PATH);
    args.insert(args.begin() + 2, {"-c", config});
    return test::run_command(args);
  };
  test::DaemonProcess daemon(deployment.config(), deployment.path("daemon.log"));
  REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));

  const std::string finishing = deployment.create("demo.log");
  auto created = cli({"create", "--jobs", "demo.fail,demo.count", "--json", "--job-data",
                      R"({"demo.fail":{"message":"disk full"}})"});
  REQUIRE(created.exit_code == 0);
  const std::string failing = json::parse(created.out)["run_id"];
  CHECK(deployment.wait_until_ended(finishing)["state"] == "finished");
  CHECK(deployment.wait_until_ended(failing)["state"] == "errored");

  auto listed = cli({"list", "--state", "errored", "--json"});
  REQUIRE(listed.exit_code == 0);
  json rows = json::parse(listed.out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["run_id"] == failing);
  CHECK(rows[0]["error_message"] == "disk full");
  rows = json::parse(cli({"list", "--job", "demo.log", "--json"}).out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["run_id"] == finishing);
  // Newest first, a page at a time.
  CHECK(json::parse(cli({"list", "--limit", "1", "--json"}).out)[0]["run_id"] == failing);
  CHECK(json::parse(cli({"list", "--limit", "1", "--page", "2", "--json"}).out)[0]["run_id"] == finishing);
  const auto table = cli({"list"});
  CHECK_THAT(table.out, Catch::Contains("RUN ID") && Catch::Contains(failing) &&
                            Catch::Contains("errored") && Catch::Contains("1/2"));

  // Resume past the failed step: demo.count runs, the job data is kept.
  auto resumed = cli({"resume", failing, "--from-step", "2"});
  CHECK(resumed.exit_code == 0);
  CHECK_THAT(resumed.out, Catch::Contains("resumed " + failing + " at step 2 of 2 (demo.count)"));
  const json row = deployment.wait_until_ended(failing);
  CHECK(row["state"] == "finished");
  CHECK(row["error_message"].is_null());
  CHECK(row["job_data"]["demo.fail"]["message"] == "disk full");
  CHECK(row["job_data"]["demo.count"]["runs"] == 1);

  auto refused = cli({"resume", finishing});
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("is finished; only errored or cancelled programs resume"));
  CHECK_THAT(cli({"resume", "no-such-run"}).err, Catch::Contains("no program with run id no-such-run"));

  const json jobs = json::parse(cli({"jobs", "--json"}).out);
  REQUIRE(jobs.size() == 9);
  CHECK(jobs[0]["job"] == "demo.count");
  CHECK_THAT(jobs[0]["plugin"].get<std::string>(), Catch::EndsWith("demo.so"));
  CHECK_THAT(cli({"jobs"}).out, Catch::Contains("demo.paginate"));
  CHECK(json::parse(test::run_command({PE_DAEMON_PATH, "version", "--json"}).out)["plugin_abi"] == 1);
  // The test config writes the broker password into a file others can read:
  // check warns (exit 0, as nginx -t), and still lists the jobs it loaded.
  // As this process's user: the daemon's user may not exist on this host.
  auto check = cli({"check", "--json", "--user", ::getpwuid(::geteuid())->pw_name});
  CHECK(check.exit_code == 0);
  const json checked = json::parse(check.out);
  CHECK(checked["ok"] == true);
  CHECK(checked["problems"].empty());
  REQUIRE(checked["warnings"].size() == 1);
  CHECK_THAT(checked["warnings"][0].get<std::string>(), Catch::Contains("holds a password (amqp.url)"));
  CHECK(checked["jobs"].size() == 9);
  const json schema = json::parse(cli({"migrate", "--check", "--json"}).out);
  CHECK(schema["current"] == true);
  CHECK(schema["version"] == schema["latest"]);
  CHECK(daemon.stop(SIGTERM, 20s) == 0);
}
