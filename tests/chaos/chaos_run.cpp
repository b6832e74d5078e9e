// chaos-run: the fault-injection harness of the step protocol (issue 4).
//
// Starts W real `program-executor run` processes on a queue and table of its
// own, creates N programs of M steps of the recorder plugin's `chaos.step`
// (plus P poison programs and X malformed messages), and while they run
// SIGKILLs random daemons, restarts the broker and the database, and (in a
// -DPE_CRASH_POINTS=ON build) arms named crash points. After quiescence it
// prints counts and exits non-zero when an invariant is violated:
//
//   lost 0                 every program finished, errored (poison) or was cancelled
//   double-committed 0     no (run id, step) committed twice (daemon event step.committed)
//   overlapping 0          no (run id, step) ran on two workers at once (recorder lines)
//   queues                 main and retry empty; parked = exactly the malformed messages
//   poison                 every poison program errored by the persisted crash counter
//   skipped 0              every step of a finished program ran to its end at least once
//
// plus the measured recovery times. Everything stays in the run directory:
// config.yaml, daemon-<slot>-<n>.log (one per daemon process), executions.log
// (the recorder's lines), restarts.log and report.json. See tests/chaos/README.md.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include "analysis.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/executor/crash_point.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/step_message.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/program_store.hpp"

extern char** environ;

namespace program_executor::chaos {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* cancel_message = "cancelled by chaos-run";

// Set by SIGINT/SIGTERM: the harness stops injecting, stops its daemons and
// still reports. A signal handler can only reach a static flag.
volatile std::sig_atomic_t interrupted = 0;
void on_interrupt(int) { interrupted = 1; }

class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  int programs = 100;
  int steps = 5;
  int workers = 3;
  int threads = 2;
  int job_ms = 40;
  bool fixed_sleep = false;
  std::string backend = "sqlite3";
  std::string connection;
  std::string amqp_url;
  double kill_every = 0;
  bool crash_points = false;
  double crash_probability = 0.05;
  int broker_restarts = 0;
  std::string broker_restart_command = "rabbitmqctl stop_app && rabbitmqctl start_app";
  int database_restarts = 0;
  std::string database_restart_command;
  double restart_interval = 6;
  int poison = 0;
  int malformed = 0;
  int cancel = 0;
  double timeout = 600;
  double settle = 3;
  double restart_delay = 0.3;
  int shutdown_grace = 10;
  // recovery.* of the daemons (0: leave the daemon's default); short, so a
  // run of minutes sees the sweeper and the crash counter at work.
  int lease_seconds = 3;
  int stale_after_seconds = 2;
  int sweep_interval_seconds = 1;
  int max_crashes = 3;
  std::string run_dir;
  std::string daemon = PE_CHAOS_DAEMON_PATH;
  std::string plugin_dir = PE_CHAOS_PLUGIN_DIR;
  std::string config_extra;
  std::string log_level = "debug";  // step.committed is a debug event
  bool keep = false;
  std::uint64_t seed = 0;
};

std::string random_suffix(std::mt19937_64& random) {
  return fmt::format("{}_{:06x}", ::getpid(), random() & 0xFFFFFF);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string tail_of(const fs::path& path, std::size_t bytes = 2000) {
  const std::string text = read_file(path);
  return text.size() <= bytes ? text : text.substr(text.size() - bytes);
}

double seconds_between(Nanos from, Nanos to) { return static_cast<double>(to - from) / 1e9; }

// ---- the broker, seen from outside -----------------------------------------

// A plain rabbitmq-c connection for what amqp::Connection does not offer:
// message counts (passive declare) and reading the parking queue without
// consuming it (basic.get without ack; closing the connection requeues).
class BrokerInspector {
 public:
  explicit BrokerInspector(const amqp::ConnectionSettings& settings) {
    if (settings.tls) throw std::runtime_error("chaos-run inspects brokers over amqp:// only");
    state_ = amqp_new_connection();
    amqp_socket_t* socket = amqp_tcp_socket_new(state_);
    if (socket == nullptr) throw std::runtime_error("amqp_tcp_socket_new failed");
    timeval timeout{5, 0};
    if (amqp_socket_open_noblock(socket, settings.host.c_str(), settings.port, &timeout) !=
        AMQP_STATUS_OK) {
      throw std::runtime_error("cannot connect to " + settings.describe());
    }
    amqp_set_rpc_timeout(state_, &timeout);
    const amqp_rpc_reply_t login =
        amqp_login(state_, settings.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                   settings.user.c_str(), settings.password.c_str());
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
      throw std::runtime_error("cannot log in to " + settings.describe());
    }
    open_channel();
  }
  ~BrokerInspector() {
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(state_);
  }
  BrokerInspector(const BrokerInspector&) = delete;
  BrokerInspector& operator=(const BrokerInspector&) = delete;

  // Ready messages in `queue` (unacknowledged ones are not counted).
  std::uint32_t message_count(const std::string& queue) {
    amqp_queue_declare_ok_t* ok = amqp_queue_declare(
        state_, channel_, amqp_cstring_bytes(queue.c_str()), 1, 0, 0, 0, amqp_empty_table);
    if (ok == nullptr || amqp_get_rpc_reply(state_).reply_type != AMQP_RESPONSE_NORMAL) {
      reopen_channel();
      throw std::runtime_error("passive declare of " + queue + " failed (no such queue?)");
    }
    return ok->message_count;
  }

  // Every body in `queue`, read with basic.get and left unacknowledged: they
  // return to the queue when this connection closes.
  std::vector<std::string> peek_all(const std::string& queue, std::size_t limit) {
    std::vector<std::string> bodies;
    while (bodies.size() < limit) {
      amqp_maybe_release_buffers(state_);
      const amqp_rpc_reply_t reply =
          amqp_basic_get(state_, channel_, amqp_cstring_bytes(queue.c_str()), 0);
      if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        throw std::runtime_error("basic.get on " + queue + " failed");
      }
      if (reply.reply.id != AMQP_BASIC_GET_OK_METHOD) break;  // get-empty
      amqp_message_t message;
      if (amqp_read_message(state_, channel_, &message, 0).reply_type != AMQP_RESPONSE_NORMAL) {
        throw std::runtime_error("reading a message of " + queue + " failed");
      }
      bodies.emplace_back(static_cast<const char*>(message.body.bytes), message.body.len);
      amqp_destroy_message(&message);
    }
    return bodies;
  }

 private:
  void open_channel() {
    amqp_channel_open(state_, channel_);
    if (amqp_get_rpc_reply(state_).reply_type != AMQP_RESPONSE_NORMAL) {
      throw std::runtime_error("cannot open an AMQP channel");
    }
  }
  // A failed passive declare closes the channel: answer and use a new one.
  void reopen_channel() {
    const amqp_channel_close_ok_t close_ok{};
    amqp_send_method(state_, channel_, AMQP_CHANNEL_CLOSE_OK_METHOD,
                     const_cast<amqp_channel_close_ok_t*>(&close_ok));
    ++channel_;
    open_channel();
  }

  amqp_connection_state_t state_ = nullptr;
  amqp_channel_t channel_ = 1;
};

// ---- child processes -------------------------------------------------------

// fork + execve with stdout and stderr appended to `output`. The child dies
// with the harness (PR_SET_PDEATHSIG): an interrupted run leaves no daemons.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& environment,
            const fs::path& output) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw SetupError("cannot open " + output.string());
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw SetupError("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_fd, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::setpgid(0, 0);  // a terminal's ^C goes to the harness only; it stops the daemons itself
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

std::vector<std::string> environment_with(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (overrides.count(name) == 0) out.push_back(entry);
  }
  for (const auto& [name, value] : overrides) out.push_back(name + "=" + value);
  return out;
}

// ---- the daemons -----------------------------------------------------------

struct Incarnation {
  int slot = 0;
  int number = 0;
  pid_t pid = -1;
  fs::path log;
  std::string crash_point;  ///< armed point, empty when none
  int number_index = 0;  ///< index in Daemons::incarnations_
  Nanos started = 0;
  std::optional<Nanos> harness_kill;  ///< when the harness SIGKILLed it (taken before kill())
  std::optional<Nanos> reaped;
  int status = 0;
  bool stopped_by_harness = false;  ///< SIGTERM at the end of the run
};

class Daemons {
 public:
  Daemons(const Options& options, fs::path run_dir, fs::path config, std::mt19937_64& random)
      : options_(options),
        run_dir_(std::move(run_dir)),
        config_(std::move(config)),
        random_(random),
        current_(static_cast<std::size_t>(options.workers), -1),
        restart_at_(static_cast<std::size_t>(options.workers)) {}

  ~Daemons() {
    for (auto& i : incarnations_) {
      if (!i.reaped) {
        ::kill(i.pid, SIGKILL);
        ::waitpid(i.pid, nullptr, 0);
      }
    }
  }

  void start_all() {
    for (int slot = 0; slot < options_.workers; ++slot) start(slot);
  }

  // Waits until every current daemon logged daemon.started.
  void wait_started(std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (int slot = 0; slot < options_.workers; ++slot) {
      for (;;) {
        reap();
        Incarnation& i = incarnations_[static_cast<std::size_t>(current_[slot])];
        // Consuming: its queues are declared, so publishing to them works.
        if (read_file(i.log).find("\"worker.consuming\"") != std::string::npos) break;
        if (i.reaped || Clock::now() > deadline) {
          throw SetupError("daemon " + std::to_string(slot) + " did not start; " +
                           i.log.string() + " ends with:\n" + tail_of(i.log));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

  // Reaps exited daemons and schedules their restart.
  void reap() {
    for (auto& i : incarnations_) {
      if (i.reaped) continue;
      int status = 0;
      if (::waitpid(i.pid, &status, WNOHANG) == i.pid) {
        i.reaped = now_ns();
        i.status = status;
        if (current_[static_cast<std::size_t>(i.slot)] == i.number_index) {
          restart_at_[static_cast<std::size_t>(i.slot)] =
              Clock::now() + std::chrono::milliseconds(static_cast<int>(options_.restart_delay * 1000));
        }
      }
    }
  }

  void restart_due(bool allowed) {
    for (int slot = 0; slot < options_.workers; ++slot) {
      auto& at = restart_at_[static_cast<std::size_t>(slot)];
      if (at && Clock::now() >= *at) {
        at.reset();
        if (allowed) start(slot);
      }
    }
  }

  // SIGKILLs one random running daemon; false when none is running.
  bool kill_random() {
    std::vector<int> alive;
    for (int slot = 0; slot < options_.workers; ++slot) {
      const int index = current_[static_cast<std::size_t>(slot)];
      if (index >= 0 && !incarnations_[static_cast<std::size_t>(index)].reaped) alive.push_back(index);
    }
    if (alive.empty()) return false;
    Incarnation& victim =
        incarnations_[static_cast<std::size_t>(alive[random_() % alive.size()])];
    // The time before kill(): the process is certainly alive until then and
    // dead very soon after, so executions it cut are never stretched.
    victim.harness_kill = now_ns();
    ::kill(victim.pid, SIGKILL);
    return true;
  }

  // SIGTERM to all, then SIGKILL to those still running after the grace.
  void stop_all(std::chrono::seconds grace) {
    for (auto& i : incarnations_) {
      if (!i.reaped) {
        i.stopped_by_harness = true;
        ::kill(i.pid, SIGTERM);
      }
    }
    const auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline && running() > 0) {
      reap();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& i : incarnations_) {
      if (!i.reaped) {
        ::kill(i.pid, SIGKILL);
        int status = 0;
        ::waitpid(i.pid, &status, 0);
        i.reaped = now_ns();
        i.status = status;
      }
    }
  }

  int running() const {
    int n = 0;
    for (const auto& i : incarnations_) n += i.reaped ? 0 : 1;
    return n;
  }

  const std::vector<Incarnation>& incarnations() const { return incarnations_; }

 private:
  void start(int slot) {
    Incarnation i;
    i.slot = slot;
    i.number_index = static_cast<int>(incarnations_.size());
    i.number = 0;
    for (const auto& other : incarnations_) i.number += other.slot == slot ? 1 : 0;
    i.log = run_dir_ / fmt::format("daemon-{}-{}.log", slot, i.number);
    std::map<std::string, std::string> env{{"PE_CHAOS_LOG", (run_dir_ / "executions.log").string()}};
    if (options_.crash_points) {
      constexpr auto& names = executor::crash_point_names;
      i.crash_point = std::string(names[random_() % std::size(names)]);
      env["PE_CRASH_POINT"] = i.crash_point;
      env["PE_CRASH_PROBABILITY"] = fmt::format("{}", options_.crash_probability);
    }
    i.started = now_ns();
    i.pid = spawn({options_.daemon, "run", "-c", config_.string()}, environment_with(env), i.log);
    current_[static_cast<std::size_t>(slot)] = i.number_index;
    incarnations_.push_back(std::move(i));
  }

  const Options& options_;
  fs::path run_dir_;
  fs::path config_;
  std::mt19937_64& random_;
  std::vector<Incarnation> incarnations_;
  std::vector<int> current_;  ///< index into incarnations_ per slot
  std::vector<std::optional<Clock::time_point>> restart_at_;
};

// ---- service restarts --------------------------------------------------------

struct ServiceRestart {
  std::string service;  ///< "broker" or "database"
  Nanos began = 0;
  Nanos ended = 0;
  int exit_code = -1;
};

// One restart command at a time, run by /bin/sh without blocking the harness.
class RestartRunner {
 public:
  explicit RestartRunner(fs::path log) : log_(std::move(log)) {}

  bool busy() const { return pid_ > 0; }

  void begin(const std::string& service, const std::string& command) {
    {
      std::ofstream out(log_, std::ios::app);
      out << "---- " << service << " restart: " << command << "\n";
    }
    current_ = ServiceRestart{service, now_ns(), 0, -1};
    pid_ = spawn({"/bin/sh", "-c", command}, environment_with({}), log_);
  }

  // Returns the finished restart once its command exited.
  std::optional<ServiceRestart> poll() {
    if (pid_ <= 0) return std::nullopt;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    pid_ = -1;
    current_.ended = now_ns();
    current_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return current_;
  }

  std::optional<ServiceRestart> wait(std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (busy() && Clock::now() < deadline) {
      if (auto done = poll()) return done;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (busy()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    return std::nullopt;
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  ServiceRestart current_;
};

// ---- the bookkeeping table ---------------------------------------------------

// The store, reopened after any failure (a database restart breaks pooled sessions).
class Bookkeeping {
 public:
  explicit Bookkeeping(config::DatabaseSettings settings) : settings_(std::move(settings)) {}

  store::ProgramStore& store() {
    if (!store_) {
      database_ = std::make_unique<store::Database>(settings_, 1);
      store_ = database_->program_store();
    }
    return *store_;
  }
  store::Database& database() {
    store();
    return *database_;
  }
  void reset() {
    store_.reset();
    database_.reset();
  }
  const config::DatabaseSettings& settings() const { return settings_; }

 private:
  config::DatabaseSettings settings_;
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<store::ProgramStore> store_;
};

struct ProgramInfo {
  bool poison = false;
  bool cancel_planned = false;
  std::optional<Nanos> cancelled_at;  ///< the harness's cancel matched a running row
  std::string state = "running";      ///< running, finished, errored
  int step = 0;
  std::string error_message;
  std::optional<Nanos> ended_at;
};

// Reads the rows of programs not known to have ended; false when the database
// could not be read this time.
bool refresh(Bookkeeping& bookkeeping, std::map<std::string, ProgramInfo>& programs) {
  try {
    for (auto& [run_id, info] : programs) {
      if (info.state != "running") continue;
      const std::optional<store::ProgramRow> row = bookkeeping.store().find(run_id);
      if (!row) continue;
      info.step = row->step;
      info.error_message = row->error_message.value_or("");
      if (row->finished_at) {
        info.state = "finished";
        info.ended_at = parse_iso_utc(*row->finished_at);
      } else if (row->errored_at) {
        info.state = "errored";
        info.ended_at = parse_iso_utc(*row->errored_at);
      }
    }
    return true;
  } catch (const std::exception&) {
    bookkeeping.reset();
    return false;
  }
}

// ---- malformed messages ----------------------------------------------------

// X bodies the daemon must park, each unique so the parking queue can be
// checked body by body: not JSON, wrong shape, unknown run id, 2 MiB, nesting 1000 deep.
std::vector<std::string> malformed_bodies(int count, const std::string& tag) {
  std::vector<std::string> bodies;
  for (int i = 0; i < count; ++i) {
    const std::string id = fmt::format("{}-{}", tag, i);
    switch (i % 5) {
      case 0:
        bodies.push_back("this is not JSON {" + id);
        break;
      case 1:
        bodies.push_back(json{{"runId", 42}, {"jobs", "chaos.step"}, {"chaos", id}}.dump());
        break;
      case 2:
        bodies.push_back(json{{"runId", "unknown-" + id},
                              {"jobs", {"chaos.step"}},
                              {"programData", json::object()}}
                             .dump());
        break;
      case 3:
        bodies.push_back(json{{"runId", "oversized-" + id},
                              {"jobs", {"chaos.step"}},
                              {"padding", std::string(2 * 1024 * 1024, 'x')}}
                             .dump());
        break;
      default:
        bodies.push_back("{\"runId\":\"nested-" + id + "\",\"jobs\":[\"chaos.step\"],\"x\":" +
                         std::string(1000, '[') + std::string(1000, ']') + "}");
        break;
    }
  }
  return bodies;
}

// ---- logs --------------------------------------------------------------------

std::vector<ExecutionLine> read_executions(const fs::path& path) {
  std::vector<ExecutionLine> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (auto parsed = parse_execution_line(line)) lines.push_back(*parsed);
  }
  return lines;
}

std::vector<LogEvent> read_events(const fs::path& path) {
  std::vector<LogEvent> events;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"event\"") == std::string::npos) continue;
    if (auto parsed = parse_log_line(line)) events.push_back(std::move(*parsed));
  }
  return events;
}

// ---- the report --------------------------------------------------------------

struct Check {
  std::string name;
  bool ok = true;
  std::string detail;
};

class Report {
 public:
  void check(const std::string& name, bool ok, const std::string& detail) {
    checks_.push_back({name, ok, detail});
    std::cout << fmt::format("  {:<58} {:<4} {}\n", name, ok ? "ok" : "FAIL", detail);
    document_["checks"].push_back({{"name", name}, {"ok", ok}, {"detail", detail}});
  }
  void info(const std::string& name, const std::string& detail) {
    std::cout << fmt::format("  {:<58} {:<4} {}\n", name, "", detail);
    document_["info"][name] = detail;
  }
  json& document() { return document_; }
  std::vector<std::string> failures() const {
    std::vector<std::string> out;
    for (const auto& c : checks_) {
      if (!c.ok) out.push_back(c.name);
    }
    return out;
  }

 private:
  std::vector<Check> checks_;
  json document_ = json::object();
};

std::string first_few(const std::vector<std::string>& items, std::size_t n = 3) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < n; ++i) out += (i ? "; " : "") + items[i];
  if (items.size() > n) out += fmt::format("; ... ({} more)", items.size() - n);
  return out;
}

// ---- the run -------------------------------------------------------------------

int run(Options options) {
  std::mt19937_64 random(options.seed);
  const std::string suffix = random_suffix(random);

  // Run directory, config, names unique to this run.
  fs::path run_dir;
  if (options.run_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "pe-chaos-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw SetupError("mkdtemp failed");
    run_dir = pattern;
  } else {
    run_dir = fs::absolute(options.run_dir);
    fs::create_directories(run_dir);
  }
  const std::string queue = "pe-chaos-" + suffix;
  const std::string table = "chaos_" + suffix;
  if (options.connection.empty()) {
    if (options.backend != "sqlite3") throw SetupError("--connection is required for " + options.backend);
    options.connection = "db=" + (run_dir / "programs.db").string();
  }
  if (options.amqp_url.empty()) {
    const char* env = std::getenv("PE_TEST_AMQP_URL");
    options.amqp_url = env != nullptr ? env : "amqp://guest:guest@127.0.0.1:5672/";
  }
  const bool database_restartable = options.backend != "sqlite3";
  if (options.database_restarts > 0 && database_restartable &&
      options.database_restart_command.empty()) {
    throw SetupError("--database-restarts needs --database-restart-command");
  }
  const int database_restarts = database_restartable ? options.database_restarts : 0;

  const fs::path config_path = run_dir / "config.yaml";
  {
    std::ofstream out(config_path);
    out << "# written by chaos-run\n"
        << "amqp:\n"
        << "  url: " << json(options.amqp_url).dump() << "\n"
        << "  queue: " << queue << "\n"
        << "  heartbeat_seconds: 10\n"
        << "database:\n"
        << "  backend: " << options.backend << "\n"
        << "  connection: " << json(options.connection).dump() << "\n"
        << "  table: " << table << "\n"
        << "plugins:\n"
        << "  directory: " << json(options.plugin_dir).dump() << "\n"
        << "workers: " << options.threads << "\n"
        << "shutdown_grace_seconds: " << options.shutdown_grace << "\n"
        << "log:\n"
        << "  level: " << options.log_level << "\n"
        << "  format: json\n"
        << "metrics:\n"
        << "  listen: \"\"\n";
    std::string recovery;
    const std::pair<const char*, int> recovery_keys[] = {
        {"lease_seconds", options.lease_seconds},
        {"stale_after_seconds", options.stale_after_seconds},
        {"sweep_interval_seconds", options.sweep_interval_seconds},
        {"max_crashes", options.max_crashes}};
    for (const auto& [key, value] : recovery_keys) {
      if (value > 0) recovery += fmt::format("  {}: {}\n", key, value);
    }
    if (!recovery.empty()) out << "recovery:\n" << recovery;
    if (!options.config_extra.empty()) out << options.config_extra << "\n";
  }

  std::cout << fmt::format(
      "chaos-run: {} programs x {} steps (+{} poison), {} daemons x {} threads, {} backend\n"
      "  run dir {}\n  queue {}, table {}, seed {}\n",
      options.programs, options.steps, options.poison, options.workers, options.threads,
      options.backend, run_dir.string(), queue, table, options.seed);
  std::cout.flush();

  const amqp::ConnectionSettings amqp_settings = amqp::parse_url(options.amqp_url, {}, 0);
  config::DatabaseSettings database_settings;
  database_settings.backend = options.backend;
  database_settings.connection = options.connection;
  database_settings.table = table;
  Bookkeeping bookkeeping(database_settings);
  bookkeeping.database().ensure_schema();

  Daemons daemons(options, run_dir, config_path, random);
  daemons.start_all();
  daemons.wait_started(std::chrono::seconds(60));

  // Malformed messages first, so they are parked before the faults begin.
  const std::vector<std::string> malformed = malformed_bodies(options.malformed, suffix);
  {
    amqp::Connection publisher(amqp_settings, "chaos-run malformed");
    for (const auto& body : malformed) publisher.publish(queue, body, {});
  }

  // The programs, in random order among them the poison ones.
  std::map<std::string, ProgramInfo> programs;
  std::vector<std::string> normal_ids;
  int create_failures = 0;
  {
    amqp::ReconnectingPublisher publisher(amqp_settings, "chaos-run create");
    executor::ProgramCreator creator(bookkeeping.store(), publisher, queue, true);
    std::vector<bool> kinds(static_cast<std::size_t>(options.programs), false);
    kinds.insert(kinds.end(), static_cast<std::size_t>(options.poison), true);
    std::shuffle(kinds.begin(), kinds.end(), random);
    const json program_data = {{"ms", options.job_ms}, {"random", !options.fixed_sleep}};
    for (const bool poison : kinds) {
      sdk::ProgramRequest request;
      request.jobs.assign(static_cast<std::size_t>(options.steps), "chaos.step");
      if (poison) request.jobs[static_cast<std::size_t>(std::min(1, options.steps - 1))] = "chaos.poison";
      request.program_data = program_data;
      try {
        const std::string run_id = creator.create(request);
        programs[run_id].poison = poison;
        if (!poison) normal_ids.push_back(run_id);
      } catch (const std::exception& e) {
        ++create_failures;
        std::cout << "  create failed: " << e.what() << "\n";
      }
    }
  }
  std::shuffle(normal_ids.begin(), normal_ids.end(), random);
  std::vector<std::string> to_cancel(
      normal_ids.begin(),
      normal_ids.begin() + std::min<std::ptrdiff_t>(options.cancel, static_cast<std::ptrdiff_t>(normal_ids.size())));
  for (const auto& id : to_cancel) programs[id].cancel_planned = true;
  std::cout << fmt::format("  created {} programs ({} failures), published {} malformed\n",
                           programs.size(), create_failures, malformed.size());
  std::cout.flush();

  // ---- faults until quiescence ------------------------------------------------
  const Nanos run_started = now_ns();
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::milliseconds(static_cast<long long>(options.timeout * 1000));
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  auto after_seconds = [](double s) {
    return Clock::now() + std::chrono::microseconds(static_cast<long long>(s * 1e6));
  };
  std::optional<Clock::time_point> next_kill;
  if (options.kill_every > 0) next_kill = after_seconds(options.kill_every * jitter(random));
  // Service restarts alternate broker and database, one every restart_interval.
  std::vector<std::string> restart_plan;
  for (int i = 0; i < std::max(options.broker_restarts, database_restarts); ++i) {
    if (i < options.broker_restarts) restart_plan.push_back("broker");
    if (i < database_restarts) restart_plan.push_back("database");
  }
  std::size_t next_restart_index = 0;
  auto next_restart = after_seconds(options.restart_interval);
  RestartRunner restarter(run_dir / "restarts.log");
  std::vector<ServiceRestart> restarts;
  std::size_t next_cancel = 0;
  auto next_cancel_at = after_seconds(1.0);
  int harness_kills = 0;

  auto last_poll = Clock::now() - std::chrono::seconds(10);
  auto last_progress = Clock::now();
  std::optional<Clock::time_point> quiet_since;
  bool all_ended = false;
  bool quiescent = false;
  std::uint32_t main_count = 0, retry_count = 0;

  while (!interrupted && Clock::now() < deadline) {
    daemons.reap();
    daemons.restart_due(true);
    if (auto done = restarter.poll()) {
      restarts.push_back(*done);
      std::cout << fmt::format("  {} restart done in {:.1f} s (exit {})\n", done->service,
                               seconds_between(done->began, done->ended), done->exit_code);
    }
    if (!all_ended) {
      if (next_kill && Clock::now() >= *next_kill) {
        harness_kills += daemons.kill_random() ? 1 : 0;
        next_kill = after_seconds(options.kill_every * jitter(random));
      }
      if (next_restart_index < restart_plan.size() && !restarter.busy() &&
          Clock::now() >= next_restart) {
        const std::string& service = restart_plan[next_restart_index++];
        restarter.begin(service, service == "broker" ? options.broker_restart_command
                                                     : options.database_restart_command);
        std::cout << "  " << service << " restart begins\n";
        next_restart = after_seconds(options.restart_interval);
      }
      if (next_cancel < to_cancel.size() && Clock::now() >= next_cancel_at) {
        try {
          const Nanos at = now_ns();
          if (bookkeeping.store().cancel(to_cancel[next_cancel], cancel_message)) {
            programs[to_cancel[next_cancel]].cancelled_at = at;
          }
          ++next_cancel;
        } catch (const std::exception&) {
          bookkeeping.reset();
        }
        next_cancel_at = after_seconds(0.2);
      }
    }
    if (Clock::now() - last_poll >= std::chrono::seconds(1)) {
      last_poll = Clock::now();
      refresh(bookkeeping, programs);
      int running = 0, finished = 0, errored = 0;
      for (const auto& [id, p] : programs) {
        running += p.state == "running";
        finished += p.state == "finished";
        errored += p.state == "errored";
      }
      all_ended = running == 0 && next_cancel >= to_cancel.size();
      bool queues_empty = false;
      if (all_ended) {
        try {
          BrokerInspector inspector(amqp_settings);
          main_count = inspector.message_count(queue);
          retry_count = inspector.message_count(queue + "-retry-1000");
          queues_empty = main_count == 0 && retry_count == 0;
        } catch (const std::exception&) {
        }
      }
      if (all_ended && queues_empty && !restarter.busy()) {
        if (!quiet_since) quiet_since = Clock::now();
      } else {
        quiet_since.reset();
      }
      if (quiet_since && Clock::now() - *quiet_since >=
                             std::chrono::milliseconds(static_cast<long long>(options.settle * 1000))) {
        quiescent = true;
        break;
      }
      if (Clock::now() - last_progress >= std::chrono::seconds(5)) {
        last_progress = Clock::now();
        std::cout << fmt::format(
            "  t={:.0f}s finished {} errored {} running {} | daemons up {} | kills {} | restarts {}\n",
            seconds_between(run_started, now_ns()), finished, errored, running, daemons.running(),
            harness_kills, restarts.size());
        std::cout.flush();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const Nanos run_ended = now_ns();
  if (interrupted) std::cout << "  interrupted: stopping and reporting\n";
  if (!quiescent && !interrupted) std::cout << "  timeout: not quiescent after " << options.timeout << " s\n";

  // ---- stop, then look ------------------------------------------------------------
  if (auto done = restarter.wait(std::chrono::seconds(120))) restarts.push_back(*done);
  daemons.stop_all(std::chrono::seconds(options.shutdown_grace + 5));

  bool rows_read = false;
  for (int attempt = 0; attempt < 30 && !rows_read; ++attempt) {
    rows_read = refresh(bookkeeping, programs);
    if (!rows_read) std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  std::optional<std::uint32_t> final_main, final_retry, final_parked;
  std::vector<std::string> parked_bodies;
  for (int attempt = 0; attempt < 30 && !final_parked; ++attempt) {
    try {
      BrokerInspector inspector(amqp_settings);
      final_main = inspector.message_count(queue);
      final_retry = inspector.message_count(queue + "-retry-1000");
      final_parked = inspector.message_count(queue + "-parked");
      parked_bodies = inspector.peek_all(queue + "-parked", *final_parked + 100);
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }

  // ---- analysis -------------------------------------------------------------------
  std::vector<LogEvent> events;
  std::map<long long, std::vector<LogEvent>> events_by_pid;
  for (const auto& i : daemons.incarnations()) {
    auto own = read_events(i.log);
    events.insert(events.end(), own.begin(), own.end());
    events_by_pid[i.pid] = std::move(own);
  }
  const std::vector<ExecutionLine> lines = read_executions(run_dir / "executions.log");

  // When each daemon process died, from the best source available.
  std::map<long long, Nanos> deaths;
  auto died = [&](long long pid, Nanos t) {
    auto [it, inserted] = deaths.emplace(pid, t);
    if (!inserted) it->second = std::min(it->second, t);
  };
  for (const auto& i : daemons.incarnations()) {
    if (i.harness_kill) died(i.pid, *i.harness_kill);
    if (i.reaped) died(i.pid, *i.reaped);
  }
  std::map<long long, std::string> self_kills;  // pid -> "crash point <name>" / "poison job"
  for (const auto& e : events) {
    if (e.event == "crash_point.fired" && e.pid > 0) {
      died(e.pid, e.t);
      self_kills[e.pid] = "crash point " + e.point;
    }
  }
  for (const auto& l : lines) {
    if (l.kind == "kill") {
      died(l.pid, l.t);
      self_kills.emplace(l.pid, "poison job");
    }
  }
  const std::vector<Execution> executions = build_executions(lines, deaths, now_ns());
  const std::vector<Overlap> overlaps = find_overlaps(executions);

  // Commits: the protocol's step.committed events; without any, job.finished
  // stands in for the recovery times only (it is logged before the commit).
  const auto committed = count_per_step(events, "step.committed");
  const bool commits_logged = !committed.empty();
  const std::string commit_event = commits_logged ? "step.committed" : "job.finished";
  std::vector<Nanos> commit_times;
  std::map<std::string, std::vector<Progress>> progress;
  std::map<std::string, Nanos> ends;
  for (const auto& e : events) {
    if (e.event == commit_event && !e.run_id.empty()) {
      commit_times.push_back(e.t);
      progress[e.run_id].push_back({e.t, e.step});
    } else if ((e.event == "program.finished" || e.event == "program.errored") && !e.run_id.empty()) {
      progress[e.run_id].push_back({e.t, -1});
    }
  }
  for (const auto& [id, p] : programs) {
    std::optional<Nanos> end = p.ended_at;
    if (p.cancelled_at) end = end ? std::min(*end, *p.cancelled_at) : *p.cancelled_at;
    if (end) {
      ends[id] = *end;
      progress[id].push_back({*end, -1});
    }
  }
  std::sort(commit_times.begin(), commit_times.end());

  // Recovery: per fault, the time until the next commit anywhere, and for a
  // dead daemon the time until every program it had in hand moved again.
  std::map<std::string, std::vector<double>> recovery_any, recovery_in_flight;
  int unrecovered = 0;
  std::vector<std::string> unrecovered_examples;
  std::map<std::string, int> death_kinds;
  for (const auto& i : daemons.incarnations()) {
    if (i.stopped_by_harness && !i.harness_kill && self_kills.count(i.pid) == 0) continue;
    std::string kind;
    if (i.harness_kill) {
      kind = "SIGKILL by harness";
    } else if (auto s = self_kills.find(i.pid); s != self_kills.end()) {
      kind = s->second.rfind("crash point", 0) == 0 ? "crash point" : s->second;
    } else if (i.reaped) {
      kind = WIFSIGNALED(i.status) ? fmt::format("died of signal {}", WTERMSIG(i.status))
                                   : fmt::format("exited {}", WEXITSTATUS(i.status));
    } else {
      continue;
    }
    ++death_kinds[kind];
    const Nanos at = deaths.count(i.pid) ? deaths[i.pid] : run_ended;
    if (auto next = first_after(commit_times, at)) recovery_any[kind].push_back(seconds_between(at, *next));
    double worst = 0;
    bool any = false;
    for (const StepKey& key : in_flight_at_death(executions, i.pid, at, ends)) {
      any = true;
      if (auto resumed = resumed_after(progress, key, at)) {
        worst = std::max(worst, seconds_between(at, *resumed));
      } else {
        ++unrecovered;
        unrecovered_examples.push_back(fmt::format("{} step {} (pid {})", key.first, key.second, i.pid));
      }
    }
    if (any) recovery_in_flight[kind].push_back(worst);
  }
  for (const auto& r : restarts) {
    if (auto next = first_after(commit_times, r.ended)) {
      recovery_any[r.service + " restart"].push_back(seconds_between(r.ended, *next));
    }
  }

  // ---- the report ---------------------------------------------------------------
  Report report;
  json& doc = report.document();
  doc["run_dir"] = run_dir.string();
  doc["seed"] = options.seed;
  doc["duration_seconds"] = seconds_between(run_started, run_ended);
  std::cout << fmt::format("\nchaos-run report ({:.1f} s, {})\n", seconds_between(run_started, run_ended),
                           quiescent ? "quiescent" : interrupted ? "interrupted" : "TIMED OUT");

  int finished = 0, errored = 0, cancelled = 0, lost = 0, poison_ok = 0, unexpected_errors = 0;
  std::vector<std::string> lost_examples, unexpected_examples, poison_examples;
  for (const auto& [id, p] : programs) {
    if (p.state == "finished") {
      ++finished;
    } else if (p.state == "running") {
      ++lost;
      lost_examples.push_back(fmt::format("{} at step {}{}", id, p.step, p.poison ? " (poison)" : ""));
    } else if (p.error_message == cancel_message) {
      ++cancelled;
    } else {
      ++errored;
      if (p.poison) {
        std::string lower = p.error_message;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (lower.find("crash") != std::string::npos) {
          ++poison_ok;
        } else {
          poison_examples.push_back(id + ": " + p.error_message);
        }
      } else {
        ++unexpected_errors;
        unexpected_examples.push_back(id + " at step " + std::to_string(p.step) + ": " + p.error_message);
      }
    }
  }
  for (const auto& [id, p] : programs) {
    if (p.poison && p.state == "running") poison_examples.push_back(id + ": still running");
  }

  int crash_points_fired = 0;
  for (const auto& e : events) crash_points_fired += e.event == "crash_point.fired";
  std::string deaths_text;
  for (const auto& [kind, n] : death_kinds) deaths_text += fmt::format("{}{} {}", deaths_text.empty() ? "" : ", ", kind, n);
  int broker_done = 0, database_done = 0;
  for (const auto& r : restarts) (r.service == "broker" ? broker_done : database_done) += 1;
  report.info("daemon deaths", deaths_text.empty() ? "none" : deaths_text);
  report.info("service restarts",
              fmt::format("broker {} of {}, database {} of {}{}", broker_done,
                          options.broker_restarts, database_done, options.database_restarts,
                          database_restartable ? "" : " (sqlite3 has no server: skipped)"));
  report.info("malformed published / cancels asked", fmt::format("{} / {}", malformed.size(), to_cancel.size()));
  report.info("programs", fmt::format("total {}, finished {}, errored {} (poison {}), cancelled {}, lost {}",
                                      programs.size(), finished, errored, options.poison, cancelled, lost));
  doc["counts"] = {{"programs", programs.size()},
                   {"finished", finished},
                   {"errored", errored},
                   {"cancelled", cancelled},
                   {"lost", lost},
                   {"harness_kills", harness_kills},
                   {"crash_points_fired", crash_points_fired},
                   {"broker_restarts", broker_done},
                   {"database_restarts", database_done}};

  // Executions.
  std::map<StepKey, int> completed_runs;
  int killed_mid_job = 0;
  for (const auto& e : executions) {
    if (e.completed) ++completed_runs[{e.run_id, e.step}];
    if (e.killed) ++killed_mid_job;
  }
  int repeated_steps = 0;
  for (const auto& [key, n] : completed_runs) repeated_steps += n > 1;
  int after_commit = 0;
  if (commits_logged) {
    std::map<StepKey, Nanos> first_commit;
    for (const auto& e : events) {
      if (e.event != "step.committed") continue;
      auto [it, inserted] = first_commit.emplace(StepKey{e.run_id, e.step}, e.t);
      if (!inserted) it->second = std::min(it->second, e.t);
    }
    for (const auto& e : executions) {
      const auto c = first_commit.find({e.run_id, e.step});
      // Log times are cut to the millisecond: the commit was up to 1 ms later.
      if (c != first_commit.end() && e.start > c->second + 1'000'000) ++after_commit;
    }
  }
  report.info("executions",
              fmt::format("{} ({} cut by a death; {} steps ran to the end more than once; {} started "
                          "after their step committed)",
                          executions.size(), killed_mid_job, repeated_steps,
                          commits_logged ? std::to_string(after_commit) : "?"));
  doc["counts"]["executions"] = executions.size();
  doc["counts"]["steps_repeated"] = repeated_steps;

  report.check("programs created", create_failures == 0, fmt::format("{} failures", create_failures));
  report.check("lost programs (still running)", lost == 0,
               fmt::format("{}{}", lost, lost ? " e.g. " + first_few(lost_examples) : ""));
  report.check("unexpectedly errored programs", unexpected_errors == 0,
               fmt::format("{}{}", unexpected_errors,
                           unexpected_errors ? " e.g. " + first_few(unexpected_examples) : ""));
  report.check("poison programs errored by the crash counter", poison_ok == options.poison,
               fmt::format("{} of {}{}", poison_ok, options.poison,
                           poison_examples.empty() ? "" : "; " + first_few(poison_examples)));

  const auto doubles = repeated(committed);
  std::vector<std::string> double_examples;
  for (const auto& [key, n] : doubles) double_examples.push_back(fmt::format("{} step {} x{}", key.first, key.second, n));
  report.check("double-committed steps", commits_logged && doubles.empty(),
               commits_logged ? fmt::format("{} (of {} committed steps){}", doubles.size(), committed.size(),
                                            doubles.empty() ? "" : " e.g. " + first_few(double_examples))
                              : "UNKNOWN: no step.committed event in any daemon log");
  doc["counts"]["double_committed"] = commits_logged ? json(doubles.size()) : json(nullptr);

  std::vector<std::string> overlap_examples;
  for (const auto& o : overlaps) {
    overlap_examples.push_back(fmt::format("{} step {}: pid {} [{:.3f}, {:.3f}] and pid {} [{:.3f}, {:.3f}]",
                                           o.first.run_id, o.first.step, o.first.pid,
                                           seconds_between(run_started, o.first.start),
                                           seconds_between(run_started, o.first.end), o.second.pid,
                                           seconds_between(run_started, o.second.start),
                                           seconds_between(run_started, o.second.end)));
  }
  report.check("overlapping executions of one step", overlaps.empty(),
               fmt::format("{}{}", overlaps.size(), overlaps.empty() ? "" : " e.g. " + first_few(overlap_examples, 2)));
  doc["counts"]["overlapping"] = overlaps.size();

  // Every step of a finished program ran to its end at least once.
  int skipped = 0;
  std::vector<std::string> skipped_examples;
  for (const auto& [id, p] : programs) {
    if (p.state != "finished") continue;
    for (int s = 0; s < options.steps; ++s) {
      if (completed_runs.count({id, s}) == 0) {
        ++skipped;
        skipped_examples.push_back(fmt::format("{} step {}", id, s));
      }
    }
  }
  report.check("steps of finished programs never completed", skipped == 0,
               fmt::format("{}{}", skipped, skipped ? " e.g. " + first_few(skipped_examples) : ""));

  const auto show = [](const std::optional<std::uint32_t>& n) { return n ? std::to_string(*n) : std::string("?"); };
  report.check("main and retry queues empty", final_main == 0u && final_retry == 0u,
               fmt::format("main {}, retry {}", show(final_main), show(final_retry)));
  {
    const std::set<std::string> expected(malformed.begin(), malformed.end());
    std::map<std::string, int> seen;
    for (const auto& b : parked_bodies) ++seen[b];
    int missing = 0, duplicates = 0, others = 0;
    for (const auto& b : expected) {
      if (seen.count(b) == 0) ++missing;
    }
    std::vector<std::string> other_examples;
    for (const auto& [b, n] : seen) {
      if (expected.count(b)) {
        duplicates += n - 1;
      } else {
        others += n;
        other_examples.push_back(b.substr(0, 120));
      }
    }
    const bool ok = final_parked.has_value() && missing == 0 && others == 0;
    report.check("parking queue holds exactly the malformed", ok,
                 fmt::format("parked {}, malformed {}: missing {}, other {}, parked twice {}{}", show(final_parked),
                             malformed.size(), missing, others, duplicates,
                             others ? " e.g. " + first_few(other_examples, 2) : ""));
    doc["counts"]["parked"] = final_parked ? json(*final_parked) : json(nullptr);
  }

  report.info("recovery measured against", commit_event + " events" +
                                               (commits_logged ? "" : " (no step.committed logged)"));
  for (const auto& [kind, sample] : recovery_any) {
    report.info("recovery, next commit after " + kind, format_summary(summarize(sample)));
    doc["recovery"]["next_commit"][kind] = sample;
  }
  for (const auto& [kind, sample] : recovery_in_flight) {
    report.info("recovery, in-flight moved after " + kind, format_summary(summarize(sample)));
    doc["recovery"]["in_flight"][kind] = sample;
  }
  report.check("in-flight programs of dead daemons that never moved", unrecovered == 0,
               fmt::format("{}{}", unrecovered,
                           unrecovered ? " e.g. " + first_few(unrecovered_examples) : ""));

  // Leave the broker and the database as found (logs stay in the run directory).
  if (!options.keep) {
    try {
      amqp::Connection cleanup(amqp_settings, "chaos-run cleanup");
      for (const auto& q : {queue, queue + "-retry-1000", queue + "-parked"}) cleanup.delete_queue(q);
    } catch (const std::exception& e) {
      std::cout << "  (could not delete the queues: " << e.what() << ")\n";
    }
    if (options.backend != "sqlite3") {
      try {
        soci::session session(bookkeeping.database().pool());
        session << "DROP TABLE " + table;
      } catch (const std::exception& e) {
        std::cout << "  (could not drop table " << table << ": " << e.what() << ")\n";
      }
    }
  }

  const auto failures = report.failures();
  doc["failures"] = failures;
  std::ofstream(run_dir / "report.json") << doc.dump(2) << "\n";
  if (failures.empty()) {
    std::cout << "RESULT: PASS (every invariant held)\n";
    return 0;
  }
  std::cout << "RESULT: FAIL (" << failures.size() << " violated: " << first_few(failures, 10)
            << ")\n  logs: " << run_dir.string() << "\n";
  return 1;
}

}  // namespace
}  // namespace program_executor::chaos

int main(int argc, char** argv) {
  using program_executor::chaos::Options;
  Options options;
  options.seed = std::random_device{}();
  CLI::App app{"chaos-run: fault-injection harness of program-executor's step protocol"};
  app.add_option("--programs", options.programs, "Programs to create (besides the poison ones)")->capture_default_str();
  app.add_option("--steps", options.steps, "Steps (chaos.step jobs) per program")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--workers", options.workers, "Daemon processes")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--threads", options.threads, "Worker threads per daemon")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--job-ms", options.job_ms, "Sleep of each step, in ms (a random 0..ms unless --fixed-sleep)")->capture_default_str();
  app.add_flag("--fixed-sleep", options.fixed_sleep, "Every step sleeps exactly --job-ms");
  app.add_option("--backend", options.backend, "Database backend")->check(CLI::IsMember(std::vector<std::string>{"sqlite3", "postgresql", "mysql"}))->capture_default_str();
  app.add_option("--connection", options.connection, "SOCI connection string (default for sqlite3: a file in the run directory)");
  app.add_option("--amqp-url", options.amqp_url, "Broker (default: $PE_TEST_AMQP_URL or amqp://guest:guest@127.0.0.1:5672/)");
  app.add_option("--kill-every", options.kill_every, "SIGKILL a random daemon about every SECONDS (0: never), then restart it")->capture_default_str();
  app.add_flag("--crash-points", options.crash_points, "Arm a random crash point in every daemon started (needs a -DPE_CRASH_POINTS=ON build)");
  app.add_option("--crash-probability", options.crash_probability, "Probability of the armed crash point firing on each pass")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--broker-restarts", options.broker_restarts, "Broker restarts while programs run")->capture_default_str();
  app.add_option("--broker-restart-command", options.broker_restart_command, "Shell command restarting the broker")->capture_default_str();
  app.add_option("--database-restarts", options.database_restarts, "Database restarts while programs run (skipped for sqlite3)")->capture_default_str();
  app.add_option("--database-restart-command", options.database_restart_command, "Shell command restarting the database, e.g. 'bash .ci/databases restart postgresql'");
  app.add_option("--restart-interval", options.restart_interval, "Seconds between service restarts (the first after as long)")->capture_default_str();
  app.add_option("--poison", options.poison, "Programs with a chaos.poison step (kills its daemon every time)")->capture_default_str();
  app.add_option("--malformed", options.malformed, "Malformed messages to publish (must all be parked)")->capture_default_str();
  app.add_option("--cancel", options.cancel, "Programs to cancel while they run")->capture_default_str();
  app.add_option("--timeout", options.timeout, "Seconds to wait for quiescence")->capture_default_str();
  app.add_option("--settle", options.settle, "Seconds the queues must stay empty after the last program ended")->capture_default_str();
  app.add_option("--restart-delay", options.restart_delay, "Seconds before a dead daemon is started again")->capture_default_str();
  app.add_option("--shutdown-grace", options.shutdown_grace, "shutdown_grace_seconds of the daemons")->capture_default_str();
  app.add_option("--run-dir", options.run_dir, "Directory for config, logs and report (default: a new /tmp/pe-chaos-XXXXXX)");
  app.add_option("--daemon", options.daemon, "program-executor binary")->capture_default_str();
  app.add_option("--plugin-dir", options.plugin_dir, "Plugin directory holding chaos_recorder.so")->capture_default_str();
  app.add_option("--lease-seconds", options.lease_seconds, "recovery.lease_seconds of the daemons (0: their default)")->capture_default_str();
  app.add_option("--stale-after-seconds", options.stale_after_seconds, "recovery.stale_after_seconds (0: default)")->capture_default_str();
  app.add_option("--sweep-interval-seconds", options.sweep_interval_seconds, "recovery.sweep_interval_seconds (0: default)")->capture_default_str();
  app.add_option("--max-crashes", options.max_crashes, "recovery.max_crashes (0: default)")->capture_default_str();
  app.add_option("--config-extra", options.config_extra, "YAML appended to the generated config (keys it does not set itself)");
  app.add_option("--log-level", options.log_level, "Daemon log level (step.committed and job.* are info)")->capture_default_str();
  app.add_flag("--keep", options.keep, "Keep the queues and (server databases) the table");
  app.add_option("--seed", options.seed, "Random seed (printed; reuse it to repeat the fault schedule)");
  CLI11_PARSE(app, argc, argv);

  struct sigaction action {};
  action.sa_handler = program_executor::chaos::on_interrupt;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  program_executor::log::configure(program_executor::log::Level::warn, program_executor::log::Format::text);
  try {
    return program_executor::chaos::run(options);
  } catch (const std::exception& e) {
    std::cerr << "chaos-run: " << e.what() << "\n";
    return 2;
  }
}
