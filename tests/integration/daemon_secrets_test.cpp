// The broker password travels from a file to the login and nowhere else: not
// into the log, an error message, `status --json` or the process title. The
// real binary, the real broker (PE_TEST_AMQP_URL) and a real SQLite file.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "program_executor/amqp/connection.hpp"
#include "support/deployment.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A secret no other text of the test could contain by chance.
std::string unique_secret() {
  std::random_device random;
  return "pe-secret-" + std::to_string(random()) + "-" + std::to_string(random());
}

// A queue, a database and a configuration whose password comes from a file.
class SecretDeployment : public test::Deployment {
 public:
  // `broker` is a URL without password (ConnectionSettings::describe()), so
  // the queues are the test's to delete.
  SecretDeployment(const std::string& broker, const std::string& password)
      : test::Deployment([&] {
          test::DeploymentOptions settings;
          settings.amqp_url = broker;
          settings.workers = 1;
          settings.shutdown_grace_seconds = 5;
          settings.log_level = "debug";
          settings.delete_queues = false;
          return settings;
        }()) {
    const fs::path password_file = path("amqp-password");
    {
      std::ofstream out(password_file);
      out << password << "\n";
    }
    fs::permissions(password_file, fs::perms::owner_read | fs::perms::owner_write);
    options().amqp_password_file = password_file.string();
    write_config();
  }
};

// What the kernel shows every user about `pid`: the command line and the
// names of the process and its threads.
std::string process_title(pid_t pid) {
  const fs::path proc = "/proc/" + std::to_string(pid);
  std::string text = read_text(proc / "cmdline") + "\n" + read_text(proc / "comm") + "\n";
  for (const auto& task : fs::directory_iterator(proc / "task")) {
    text += read_text(task.path() / "comm");
  }
  return text;
}

// Its environment (readable by its user and root): inherited from the test,
// so checked only for a secret the test never put in its own environment.
std::string process_environment(pid_t pid) {
  return read_text("/proc/" + std::to_string(pid) + "/environ");
}

// A TCP port that accepts connections (the kernel does, into the backlog) and
// never answers: a broker that hangs in the AMQP handshake.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_CASE("a running daemon shows no secret in its title, environment or log",
          "[daemon][secrets]") {
  const std::string secret = unique_secret();
  const SilentListener broker;
  SecretDeployment deployment("amqp://worker@127.0.0.1:" + std::to_string(broker.port()) + "/",
                              secret);
  const fs::path log = deployment.dir() / "daemon.log";
  test::DaemonProcess daemon(deployment.config(), log);
  // The configuration, and so the password, has been read once the database
  // is open; the daemon now waits in the login the silent broker never answers.
  REQUIRE(daemon.wait_for_log("\"database.ready\"", 30s));
  const std::string title = process_title(daemon.pid());
  CHECK_THAT(title, Catch::Contains(deployment.config().string()));  // the title was read
  CHECK(title.find(secret) == std::string::npos);
  const std::string environment = process_environment(daemon.pid());
  CHECK_THAT(environment, Catch::Contains("PATH="));  // the environment was read
  CHECK(environment.find(secret) == std::string::npos);
  CHECK(daemon.log().find(secret) == std::string::npos);
  daemon.stop(SIGKILL, 10s);
}

TEST_CASE("a refused password from a file appears in no error", "[daemon][secrets]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = amqp::parse_url(*url, {}, 0);
  const std::string secret = unique_secret();
  SecretDeployment deployment(settings.describe(), secret);

  const test::CommandResult create = deployment.cli({"create", "--jobs", "demo.count"});
  CHECK(create.exit_code == 1);
  CHECK_THAT(create.err, Catch::Contains("logging in as '" + settings.user + "'"));
  CHECK(create.out.find(secret) == std::string::npos);
  CHECK(create.err.find(secret) == std::string::npos);

  const test::CommandResult run = deployment.cli({"run"});
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("logging in as '" + settings.user + "'"));
  CHECK(run.out.find(secret) == std::string::npos);
  CHECK(run.err.find(secret) == std::string::npos);
}

TEST_CASE("the password from a file logs in, and no output repeats it", "[daemon][secrets]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = amqp::parse_url(*url, {}, 0);
  SecretDeployment deployment(settings.describe(), settings.password);
  // guest/guest: the password is also the user name, which output may show.
  const bool distinctive = settings.password.size() >= 8 &&
                           settings.describe().find(settings.password) == std::string::npos;
  if (!distinctive) {
    WARN("the broker password '" << settings.password
                                 << "' is not distinctive: only the login is checked here");
  }
  const auto absent = [&](const std::string& text) {
    return !distinctive || text.find(settings.password) == std::string::npos;
  };

  const test::CommandResult create =
      deployment.cli({"create", "--jobs", "demo.count", "--program-data", "{\"n\":1}"});
  REQUIRE(create.exit_code == 0);  // the login took the password from the file
  std::string run_id = create.out;
  while (!run_id.empty() && run_id.back() == '\n') run_id.pop_back();
  CHECK(absent(create.out + create.err));

  {
    test::DaemonProcess daemon(deployment.config(), deployment.dir() / "daemon.log");
    REQUIRE(daemon.wait_for_log("\"daemon.started\"", 30s));
    REQUIRE(daemon.wait_for_log("\"program.finished\"", 30s));
    CHECK(absent(process_title(daemon.pid())));
    CHECK(daemon.stop(SIGTERM, 30s) == 0);
    CHECK(absent(daemon.log()));
  }
  for (const bool json : {false, true}) {
    std::vector<std::string> args = {"status", run_id};
    if (json) args.push_back("--json");
    const test::CommandResult status = deployment.cli(args);
    CHECK(status.exit_code == 0);
    CHECK_THAT(status.out, Catch::Contains(run_id));
    CHECK(absent(status.out + status.err));
  }

  amqp::Connection cleanup(settings, "test cleanup");
  for (const std::string& queue :
       {deployment.queue(), deployment.queue() + "-retry-1000", deployment.queue() + "-parked"}) {
    cleanup.delete_queue(queue);
  }
}
