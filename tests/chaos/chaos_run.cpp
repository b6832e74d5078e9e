// chaos-run: the fault-injection harness of the step protocol (issue 4).
//
// Starts W real `program-executor run` processes on a queue and table of its
// own, creates N programs of M steps of the recorder plugin's `chaos.step`
// (plus P poison programs and X malformed messages), and while they run
// SIGKILLs random daemons, restarts the broker and the database, and (in a
// -DPE_CRASH_POINTS=ON build) arms named crash points. With --cluster SCRIPT
// the daemons run on a RabbitMQ cluster (tests/cluster/rabbitmq-cluster:
// amqp.urls, quorum queues), and each broker restart is a node SIGKILLed and
// started again, alternately the main queue's leader and a random node. After quiescence it
// prints counts and exits non-zero when an invariant is violated:
//
//   lost 0                 every program finished, errored (poison) or was cancelled
//   double-committed 0     no (run id, step) committed twice (daemon event step.committed)
//   overlapping 0          no (run id, step) ran on two workers at once (recorder lines)
//   queues                 main and retry empty; parked = exactly the malformed messages
//   poison                 every poison program errored by the persisted crash counter
//   innocent errored 0     with --innocent: no other program errored by the crash counter
//   skipped 0              every step of a finished program ran to its end at least once
//   died on their own 0    with --cluster: no daemon exited or died but by the harness's
//                          kills, crash points and poison (a lost node is ridden out)
//   history 0              the attempt history (<table>_attempts) agrees with every row:
//                          one `finished` attempt per committed step, none for the others,
//                          one ending attempt per errored program (analysis.cpp, check_history)
//
// plus the measured recovery times, the program.recovered events that no
// injected fault explains, and the longest gap between two steps of a program. Everything stays in
// the run directory: config.yaml, daemon-<slot>-<n>.log (one per daemon process), executions.log
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

#include <fmt/format.h>
#include <soci/soci.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "../cluster/cluster_urls.hpp"
#include "analysis.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/executor/crash_point.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/retry_policy.hpp"
#include "program_executor/executor/step_message.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
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
  // tests/cluster/rabbitmq-cluster of a running cluster: the daemons get its
  // nodes (amqp.urls) and quorum queues; a broker restart bounces a node.
  std::string cluster;
  int database_restarts = 0;
  std::string database_restart_command;
  double restart_interval = 6;
  int poison = 0;
  // Long programs beside the poison ones (issue 18): their steps must not be
  // condemned for the poison's crashes.
  int innocent = 0;
  int innocent_steps = 3;
  int innocent_ms = 3000;
  int malformed = 0;
  int cancel = 0;
  int duplicates = 0;
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
  // Only check the attempt history of the run in --run-dir again (its
  // config.yaml names the backend, connection and table); no daemon starts.
  bool check_history = false;
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

// The delay queues a daemon may declare beside `<queue>-retry-1000`: one per
// rung of the retry ladder (executor/retry_policy.hpp), `<queue>-retry-<ms>`.
std::vector<std::string> delay_queues(const std::string& queue) {
  std::set<long long> delays;
  std::chrono::milliseconds next{1};
  for (;;) {
    const auto [low, high] = executor::ladder_rungs(next);
    delays.insert(low.count());
    delays.insert(high.count());
    if (high < next) break;  // past the top rung
    next = high + std::chrono::milliseconds(1);
  }
  delays.erase(1000);
  std::vector<std::string> names;
  for (const long long ms : delays) names.push_back(queue + "-retry-" + std::to_string(ms));
  return names;
}

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

  // Ready messages in `queue` (unacknowledged ones are not counted); nullopt
  // when there is no such queue.
  std::optional<std::uint32_t> message_count_if_exists(const std::string& queue) {
    amqp_queue_declare_ok_t* ok = amqp_queue_declare(
        state_, channel_, amqp_cstring_bytes(queue.c_str()), 1, 0, 0, 0, amqp_empty_table);
    const amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
    if (ok != nullptr && reply.reply_type == AMQP_RESPONSE_NORMAL) return ok->message_count;
    if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
      const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
      const int code = close->reply_code;
      reopen_channel();
      if (code == 404) return std::nullopt;
      throw std::runtime_error("passive declare of " + queue + " failed: " + std::to_string(code));
    }
    throw std::runtime_error("passive declare of " + queue + " failed: connection lost");
  }

  std::uint32_t message_count(const std::string& queue) {
    const auto count = message_count_if_exists(queue);
    if (!count) throw std::runtime_error("queue " + queue + " does not exist");
    return *count;
  }

  // Messages waiting in every retry queue of `queue` that exists: the
  // standard one and the delay queues of the retry ladder.
  std::uint32_t retry_messages(const std::string& queue) {
    std::uint32_t total = message_count(queue + "-retry-1000");
    for (const std::string& name : delay_queues(queue))
      total += message_count_if_exists(name).value_or(0);
    return total;
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

// fork + execve with stdout and stderr appended to `output`. With
// `die_with_harness` the child gets SIGKILL when the harness dies
// (PR_SET_PDEATHSIG): an interrupted run leaves no daemons behind. A service
// restart command must not be cut between its stop and its start, so it
// runs on by itself.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& environment,
            const fs::path& output, bool die_with_harness) {
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
    if (die_with_harness) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
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
  int number_index = 0;     ///< index in Daemons::incarnations_
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

  // Waits until every current daemon logged worker.consuming.
  void wait_started(std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (int slot = 0; slot < options_.workers; ++slot) {
      for (;;) {
        reap();
        Incarnation& i = incarnations_[static_cast<std::size_t>(current_[slot])];
        // Consuming: its queues are declared, so publishing to them works.
        if (read_file(i.log).find("\"worker.consuming\"") != std::string::npos) break;
        if (i.reaped || Clock::now() > deadline) {
          throw SetupError("daemon " + std::to_string(slot) + " did not start; " + i.log.string() +
                           " ends with:\n" + tail_of(i.log));
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
              Clock::now() +
              std::chrono::milliseconds(static_cast<int>(options_.restart_delay * 1000));
        }
      }
    }
  }

  void restart_due() {
    for (int slot = 0; slot < options_.workers; ++slot) {
      auto& at = restart_at_[static_cast<std::size_t>(slot)];
      if (at && Clock::now() >= *at) {
        at.reset();
        start(slot);
      }
    }
  }

  // SIGKILLs one random running daemon; false when none is running.
  bool kill_random() {
    reap();  // a daemon that just died on its own is not a candidate
    std::vector<int> alive;
    for (int slot = 0; slot < options_.workers; ++slot) {
      const int index = current_[static_cast<std::size_t>(slot)];
      if (index >= 0 && !incarnations_[static_cast<std::size_t>(index)].reaped)
        alive.push_back(index);
    }
    if (alive.empty()) return false;
    Incarnation& victim = incarnations_[static_cast<std::size_t>(alive[random_() % alive.size()])];
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
    std::map<std::string, std::string> env{
        {"PE_CHAOS_LOG", (run_dir_ / "executions.log").string()}};
    if (options_.crash_points) {
      constexpr auto& names = executor::crash_point_names;
      i.crash_point = std::string(names[random_() % std::size(names)]);
      env["PE_CRASH_POINT"] = i.crash_point;
      env["PE_CRASH_PROBABILITY"] = fmt::format("{}", options_.crash_probability);
    } else {
      env["PE_CRASH_POINT"] = "";  // none, whatever the harness's environment says
    }
    i.started = now_ns();
    i.pid =
        spawn({options_.daemon, "run", "-c", config_.string()}, environment_with(env), i.log, true);
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
    pid_ = spawn({"/bin/sh", "-c", command}, environment_with({}), log_, false);
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
  bool innocent = false;
  Nanos created_at = 0;
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

// ---- the attempt history -----------------------------------------------------

// What the attempt history says of the run's programs, compared with their rows.
struct History {
  bool read = false;  ///< every row and history could be read
  std::string read_error;
  HistoryFigures figures;
  std::vector<HistoryViolation> violations;
  std::vector<std::string> strangers;  ///< run ids with attempts but no program of this run
  long long takeovers_of_live = 0;     ///< takeover `crashed` attempts of a pid that never died
};

HistoryAttempt history_attempt(const store::AttemptRecord& record) {
  HistoryAttempt a;
  a.step = record.step;
  a.job = record.job;
  a.outcome = record.outcome;
  a.token = record.token;
  a.has_error = record.error.has_value();
  a.worker = record.worker;
  return a;
}

HistoryRow history_row(const store::ProgramRow& row) {
  HistoryRow r;
  r.run_id = row.run_id;
  r.jobs = row.jobs;
  r.step = row.step;
  r.finished = row.finished_at.has_value();
  r.errored = row.errored_at.has_value();
  r.cancelled = row.cancelled_at.has_value();
  r.crash_count = row.step_crash_count;
  r.isolated_crash_count = row.step_isolated_crash_count;
  return r;
}

// The run ids of every attempt in the run's attempts table (the table is
// the run's own: any run id not among its programs is a stranger).
std::set<std::string> attempt_run_ids(Bookkeeping& bookkeeping, const std::string& table) {
  store::Database& database = bookkeeping.database();
  soci::session session(database.pool());
  soci::rowset<std::string> rows = session.prepare
                                   << "SELECT DISTINCT run_id FROM " +
                                          database.dialect().quote(store::attempts_table(table));
  return std::set<std::string>(rows.begin(), rows.end());
}

// Reads every program's row and attempts once the daemons stopped, and
// checks them (check_history). `deaths`: the pids known dead, for the count
// of takeovers of a live worker (reported, not checked); null when unknown.
History read_history(Bookkeeping& bookkeeping, const std::string& table,
                     const std::vector<std::string>& run_ids,
                     const std::map<long long, Nanos>* deaths) {
  History h;
  for (int attempt = 0; attempt < 30 && !h.read; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    h = History{};
    try {
      const std::set<std::string> known(run_ids.begin(), run_ids.end());
      for (const std::string& id : attempt_run_ids(bookkeeping, table)) {
        if (!known.count(id)) h.strangers.push_back(id);
      }
      for (const std::string& id : run_ids) {
        const std::optional<store::ProgramRow> row = bookkeeping.store().find(id);
        if (!row) {
          h.violations.push_back({id, -1, "no row in the programs table"});
          continue;
        }
        std::vector<HistoryAttempt> attempts;
        for (const store::AttemptRecord& record : bookkeeping.store().attempts(id)) {
          attempts.push_back(history_attempt(record));
        }
        h.figures.add(attempts);
        for (const HistoryAttempt& a : attempts) {
          if (deaths == nullptr || a.outcome != "crashed" || a.has_error) continue;
          const std::optional<long long> pid = worker_pid(a.worker);
          if (pid && !deaths->count(*pid)) ++h.takeovers_of_live;
        }
        const std::vector<HistoryViolation> found = check_history(history_row(*row), attempts);
        h.violations.insert(h.violations.end(), found.begin(), found.end());
      }
      h.read = true;
    } catch (const std::exception& e) {
      h.read_error = e.what();
      bookkeeping.reset();
    }
  }
  return h;
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
        bodies.push_back(json{
            {"runId", "unknown-" + id}, {"jobs", {"chaos.step"}}, {"programData", json::object()}}
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

// Reports the history figures and the check; `doc` gets them under "history".
void report_history(Report& report, const History& h, std::size_t programs, bool known_deaths) {
  json& doc = report.document()["history"];
  std::string outcomes;
  for (const auto& [outcome, n] : h.figures.outcomes) {
    outcomes += fmt::format("{}{} {}", outcomes.empty() ? "" : ", ", outcome, n);
  }
  report.info(
      "attempt history",
      fmt::format("{} attempts of {} programs: finished {}, crashed {} ({} by a takeover, {} "
                  "of an isolated process); by outcome: {}",
                  h.figures.attempts, programs, h.figures.finished, h.figures.crashed,
                  h.figures.crashed_takeover, h.figures.crashed_isolated,
                  outcomes.empty() ? "none" : outcomes));
  // Not checked: a worker whose lease ran out while it was alive (a slow
  // step, a stalled database) is taken over as if dead; its attempt becomes
  // `stale` only if it can still write its own ending.
  if (known_deaths) {
    report.info("takeover crashed attempts of a process that never died",
                std::to_string(h.takeovers_of_live));
  }
  std::vector<std::string> list;
  for (const HistoryViolation& v : h.violations) list.push_back(to_string(v));
  for (const std::string& id : h.strangers)
    list.push_back(id + ": attempts of a program this run never created");
  report.check(
      "attempt history disagrees with the programs table", h.read && list.empty(),
      h.read ? fmt::format("{}{}", list.size(), list.empty() ? "" : " e.g. " + first_few(list, 5))
             : "UNKNOWN: could not read it: " + h.read_error);
  doc["attempts"] = h.figures.attempts;
  doc["finished"] = h.figures.finished;
  doc["crashed"] = h.figures.crashed;
  doc["crashed_takeover"] = h.figures.crashed_takeover;
  doc["crashed_isolated"] = h.figures.crashed_isolated;
  doc["takeovers_of_live_processes"] = h.takeovers_of_live;
  doc["outcomes"] = h.figures.outcomes;
  doc["violations"] = h.read ? json(list.size()) : json(nullptr);
  doc["violation_list"] = list;
}

// ---- the run -------------------------------------------------------------------

// Where a run lives: its directory, and its queue and table of its own.
struct Deployment {
  fs::path run_dir;
  fs::path config;
  std::string suffix;
  std::string queue;
  std::string table;
  amqp::ConnectionSettings amqp;  ///< the harness's own broker (the cluster's first node)
  std::vector<std::string> cluster_urls;  ///< with --cluster: every node, for amqp.urls
  bool database_restartable = false;  ///< false for sqlite3: no server to restart
  int database_restarts = 0;          ///< restarts that will actually be made
};

Deployment prepare(Options& options, std::mt19937_64& random) {
  Deployment d;
  d.suffix = random_suffix(random);
  if (options.run_dir.empty()) {
    std::string pattern = (fs::temp_directory_path() / "pe-chaos-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw SetupError("mkdtemp failed");
    d.run_dir = pattern;
  } else {
    d.run_dir = fs::absolute(options.run_dir);
    fs::create_directories(d.run_dir);
  }
  d.queue = "pe-chaos-" + d.suffix;
  d.table = "chaos_" + d.suffix;
  if (options.connection.empty()) {
    if (options.backend != "sqlite3") {
      throw SetupError("--connection is required for " + options.backend);
    }
    options.connection = "db=" + (d.run_dir / "programs.db").string();
  }
  if (!options.cluster.empty()) {
    try {
      d.cluster_urls = cluster::cluster_urls(options.cluster);
    } catch (const std::runtime_error& e) {
      throw SetupError(e.what());
    }
    if (options.amqp_url.empty()) options.amqp_url = d.cluster_urls.front();
  }
  if (options.amqp_url.empty()) {
    const char* env = std::getenv("PE_TEST_AMQP_URL");
    options.amqp_url = env != nullptr ? env : "amqp://guest:guest@127.0.0.1:5672/";
  }
  d.amqp = amqp::parse_url(options.amqp_url, {}, 0);
  d.database_restartable = options.backend != "sqlite3";
  if (options.database_restarts > 0 && d.database_restartable &&
      options.database_restart_command.empty()) {
    throw SetupError("--database-restarts needs --database-restart-command");
  }
  d.database_restarts = d.database_restartable ? options.database_restarts : 0;

  d.config = d.run_dir / "config.yaml";
  std::ofstream out(d.config);
  out << "# written by chaos-run\n"
      << "amqp:\n";
  if (d.cluster_urls.empty()) {
    out << "  url: " << json(options.amqp_url).dump() << "\n";
  } else {
    out << "  urls:\n";
    for (const std::string& url : d.cluster_urls) out << "    - " << json(url).dump() << "\n";
    out << "  queue_type: quorum\n";
  }
  out << "  queue: " << d.queue << "\n"
      << "  heartbeat_seconds: 10\n"
      << "database:\n"
      << "  backend: " << options.backend << "\n"
      << "  connection: " << json(options.connection).dump() << "\n"
      << "  table: " << d.table << "\n"
      << "plugins:\n"
      << "  directory: " << json(options.plugin_dir).dump() << "\n"
      << "workers: " << options.threads << "\n"
      << "shutdown_grace_seconds: " << options.shutdown_grace << "\n"
      << "log:\n"
      << "  level: " << options.log_level << "\n"
      << "  format: json\n"
      << "metrics:\n"
      << "  listen: \"\"\n"
      // The default, said: the history checks read what the daemons write.
      << "history:\n"
      << "  enabled: true\n";
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
  return d;
}

struct Workload {
  std::map<std::string, ProgramInfo> programs;
  std::vector<std::string> to_cancel;  ///< in the order they are cancelled
  std::vector<std::string> malformed;  ///< bodies published
  int duplicated = 0;                  ///< programs whose first step was published twice
  int create_failures = 0;
};

// Publishes the malformed bodies, then creates the programs (poison ones
// shuffled among them) and picks those to cancel.
Workload create_workload(const Options& options, const Deployment& d, Bookkeeping& bookkeeping,
                         std::mt19937_64& random) {
  Workload w;
  // Malformed messages first, so they are parked before the faults begin.
  w.malformed = malformed_bodies(options.malformed, d.suffix);
  {
    amqp::Connection publisher(d.amqp, "chaos-run malformed");
    for (const auto& body : w.malformed) publisher.publish(d.queue, body, {});
  }
  std::vector<std::string> normal_ids;
  amqp::ReconnectingPublisher publisher(d.amqp, "chaos-run create");
  executor::ProgramCreator creator(bookkeeping.store(), publisher, d.queue, true);
  // The innocent programs first, so that their long steps are running when
  // the poison steps reach the same daemons.
  for (int i = 0; i < options.innocent; ++i) {
    sdk::ProgramRequest request;
    request.jobs.assign(static_cast<std::size_t>(options.innocent_steps), "chaos.step");
    request.program_data = {{"ms", options.innocent_ms}, {"random", false}};
    try {
      const Nanos created = now_ns();
      const std::string run_id = creator.create(request);
      w.programs[run_id].innocent = true;
      w.programs[run_id].created_at = created;
    } catch (const std::exception& e) {
      ++w.create_failures;
      std::cout << "  create failed: " << e.what() << "\n";
    }
  }
  std::vector<bool> kinds(static_cast<std::size_t>(options.programs), false);
  kinds.insert(kinds.end(), static_cast<std::size_t>(options.poison), true);
  std::shuffle(kinds.begin(), kinds.end(), random);
  // Which normal programs get their first step published twice.
  std::vector<bool> duplicate(static_cast<std::size_t>(options.programs), false);
  std::fill_n(duplicate.begin(), std::clamp(options.duplicates, 0, options.programs), true);
  std::shuffle(duplicate.begin(), duplicate.end(), random);
  std::size_t normal_index = 0;
  const json program_data = {{"ms", options.job_ms}, {"random", !options.fixed_sleep}};
  for (const bool poison : kinds) {
    sdk::ProgramRequest request;
    request.jobs.assign(static_cast<std::size_t>(options.steps), "chaos.step");
    if (poison) {
      request.jobs[static_cast<std::size_t>(std::min(1, options.steps - 1))] = "chaos.poison";
    }
    request.program_data = program_data;
    try {
      const Nanos created = now_ns();
      const std::string run_id = creator.create(request);
      w.programs[run_id].poison = poison;
      w.programs[run_id].created_at = created;
      if (!poison) normal_ids.push_back(run_id);
      if (!poison && duplicate[normal_index++]) {
        // A second copy right behind the first, as a producer retrying a
        // publish would send it: both reach workers at about the same time,
        // and must neither fork the program nor run the step twice at once.
        publisher.publish(d.queue, executor::first_step_body(run_id, request.jobs, program_data),
                          {});
        ++w.duplicated;
      }
    } catch (const std::exception& e) {
      ++w.create_failures;
      std::cout << "  create failed: " << e.what() << "\n";
    }
  }
  std::shuffle(normal_ids.begin(), normal_ids.end(), random);
  const auto cancels =
      std::min(static_cast<std::size_t>(std::max(options.cancel, 0)), normal_ids.size());
  w.to_cancel.assign(normal_ids.begin(), normal_ids.begin() + static_cast<std::ptrdiff_t>(cancels));
  for (const auto& id : w.to_cancel) w.programs[id].cancel_planned = true;
  return w;
}

struct Outcome {
  Nanos started = 0;
  Nanos ended = 0;
  bool quiescent = false;
  int harness_kills = 0;
  std::vector<ServiceRestart> restarts;
};

Clock::time_point after_seconds(double seconds) {
  return Clock::now() + std::chrono::microseconds(static_cast<long long>(seconds * 1e6));
}

// Injects faults while programs run, until every program ended and the main
// and retry queues stayed empty for --settle seconds (or the timeout).
Outcome inject_until_quiescent(const Options& options, const Deployment& d, Daemons& daemons,
                               Bookkeeping& bookkeeping, Workload& w, std::mt19937_64& random) {
  Outcome o;
  o.started = now_ns();
  const auto deadline = after_seconds(options.timeout);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  // time_point::max() stands for "never" (g++ -O2 mistakes an optional
  // time_point for uninitialized here).
  constexpr Clock::time_point never = Clock::time_point::max();
  Clock::time_point next_kill = never;
  if (options.kill_every > 0) next_kill = after_seconds(options.kill_every * jitter(random));
  // Service restarts alternate broker and database, one every restart_interval.
  std::vector<std::string> restart_plan;
  for (int i = 0; i < std::max(options.broker_restarts, d.database_restarts); ++i) {
    if (i < options.broker_restarts) restart_plan.push_back("broker");
    if (i < d.database_restarts) restart_plan.push_back("database");
  }
  std::size_t next_restart_index = 0;
  int bounced_leader = 0, bounced_any = 0;  // with --cluster: which node each bounce took
  auto next_restart = after_seconds(options.restart_interval);
  RestartRunner restarter(d.run_dir / "restarts.log");
  std::size_t next_cancel = 0;
  auto next_cancel_at = after_seconds(1.0);
  auto last_poll = Clock::now() - std::chrono::seconds(10);
  auto last_progress = Clock::now();
  Clock::time_point quiet_since = never;
  bool all_ended = false;

  while (!interrupted && Clock::now() < deadline) {
    daemons.reap();
    daemons.restart_due();
    if (auto done = restarter.poll()) {
      o.restarts.push_back(*done);
      std::cout << fmt::format("  {} restart done in {:.1f} s (exit {})\n", done->service,
                               seconds_between(done->began, done->ended), done->exit_code);
    }
    // Faults only while there is work: afterwards they would test nothing.
    if (!all_ended) {
      if (Clock::now() >= next_kill) {
        o.harness_kills += daemons.kill_random() ? 1 : 0;
        next_kill = after_seconds(options.kill_every * jitter(random));
      }
      if (next_restart_index < restart_plan.size() && !restarter.busy() &&
          Clock::now() >= next_restart) {
        const std::string& service = restart_plan[next_restart_index++];
        std::string command =
            service == "broker" ? options.broker_restart_command : options.database_restart_command;
        if (service == "broker" && !options.cluster.empty()) {
          // A node lost, not the broker: the main queue's leader, then any.
          command = fmt::format("bash {} bounce {}", options.cluster,
                                bounced_leader <= bounced_any ? d.queue : std::string("any"));
          (command.ends_with(" any") ? bounced_any : bounced_leader) += 1;
        }
        restarter.begin(service, command);
        std::cout << "  " << service << " restart begins\n";
        next_restart = after_seconds(options.restart_interval);
      }
      if (next_cancel < w.to_cancel.size() && Clock::now() >= next_cancel_at) {
        try {
          const Nanos at = now_ns();
          if (bookkeeping.store().cancel(w.to_cancel[next_cancel], cancel_message)) {
            w.programs[w.to_cancel[next_cancel]].cancelled_at = at;
          }
          ++next_cancel;
        } catch (const std::exception&) {
          bookkeeping.reset();  // the database is restarting: try again later
        }
        next_cancel_at = after_seconds(0.2);
      }
    }
    if (Clock::now() - last_poll >= std::chrono::seconds(1)) {
      last_poll = Clock::now();
      refresh(bookkeeping, w.programs);
      int running = 0, finished = 0, errored = 0;
      for (const auto& [id, p] : w.programs) {
        running += p.state == "running";
        finished += p.state == "finished";
        errored += p.state == "errored";
      }
      all_ended = running == 0 && next_cancel >= w.to_cancel.size();
      bool queues_empty = false;
      if (all_ended) {
        try {
          BrokerInspector inspector(d.amqp);
          queues_empty =
              inspector.message_count(d.queue) == 0 && inspector.retry_messages(d.queue) == 0;
        } catch (const std::exception&) {
          // the broker is restarting: not quiet yet
        }
      }
      if (all_ended && queues_empty && !restarter.busy()) {
        if (quiet_since == never) quiet_since = Clock::now();
      } else {
        quiet_since = never;
      }
      if (quiet_since != never &&
          Clock::now() - quiet_since >=
              std::chrono::milliseconds(static_cast<long long>(options.settle * 1000))) {
        o.quiescent = true;
        break;
      }
      if (Clock::now() - last_progress >= std::chrono::seconds(5)) {
        last_progress = Clock::now();
        std::cout << fmt::format(
            "  t={:.0f}s finished {} errored {} running {} | daemons up {} | kills {} | "
            "restarts {}\n",
            seconds_between(o.started, now_ns()), finished, errored, running, daemons.running(),
            o.harness_kills, o.restarts.size());
        std::cout.flush();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  o.ended = now_ns();
  if (interrupted) std::cout << "  interrupted: stopping and reporting\n";
  if (!o.quiescent && !interrupted) {
    std::cout << "  timeout: not quiescent after " << options.timeout << " s\n";
  }
  if (auto done = restarter.wait(std::chrono::seconds(120))) o.restarts.push_back(*done);
  return o;
}

// What the broker holds at the end, the daemons stopped.
struct Queues {
  std::optional<std::uint32_t> main, retry, parked;
  std::vector<std::string> parked_bodies;
};

Queues inspect_queues(const Deployment& d) {
  Queues q;
  for (int attempt = 0; attempt < 30 && !q.parked; ++attempt) {
    try {
      BrokerInspector inspector(d.amqp);
      q.main = inspector.message_count(d.queue);
      q.retry = inspector.retry_messages(d.queue);
      const std::uint32_t parked = inspector.message_count(d.queue + "-parked");
      q.parked_bodies = inspector.peek_all(d.queue + "-parked", parked + 100);
      q.parked = parked;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  return q;
}

// Everything the logs say, joined up.
struct Evidence {
  std::vector<LogEvent> events;
  std::vector<Execution> executions;
  std::map<long long, Nanos> deaths;            ///< pid -> when it died (best source)
  std::map<long long, std::string> self_kills;  ///< pid -> "crash point <name>" / "poison job"
  std::map<StepKey, int> committed;             ///< step.committed per (run id, step)
  bool commits_logged = false;
  std::string commit_event;  ///< what recovery is measured against
  std::vector<Nanos> commit_times;
  std::map<std::string, std::vector<Progress>> progress;
  std::map<std::string, Nanos> ends;  ///< run id -> when it ended (or was cancelled)
};

Evidence gather(const Deployment& d, const Daemons& daemons, const Workload& w) {
  Evidence e;
  for (const auto& i : daemons.incarnations()) {
    auto own = read_events(i.log);
    e.events.insert(e.events.end(), own.begin(), own.end());
  }
  const std::vector<ExecutionLine> lines = read_executions(d.run_dir / "executions.log");

  auto died = [&](long long pid, Nanos t) {
    auto [it, inserted] = e.deaths.emplace(pid, t);
    if (!inserted) it->second = std::min(it->second, t);
  };
  for (const auto& i : daemons.incarnations()) {
    if (i.harness_kill) died(i.pid, *i.harness_kill);
    if (i.reaped) died(i.pid, *i.reaped);
  }
  for (const auto& event : e.events) {
    if (event.event == "crash_point.fired" && event.pid > 0) {
      died(event.pid, event.t);
      e.self_kills[event.pid] = "crash point " + event.point;
    }
  }
  for (const auto& l : lines) {
    if (l.kind == "kill") {
      died(l.pid, l.t);
      e.self_kills.emplace(l.pid, "poison job");
    }
  }
  e.executions = build_executions(lines, e.deaths, now_ns());

  // Commits: the protocol's step.committed events; without any, job.finished
  // stands in for the recovery times only (it is logged before the commit).
  e.committed = count_per_step(e.events, "step.committed");
  e.commits_logged = !e.committed.empty();
  e.commit_event = e.commits_logged ? "step.committed" : "job.finished";
  for (const auto& event : e.events) {
    if (event.event == e.commit_event && !event.run_id.empty()) {
      e.commit_times.push_back(event.t);
      e.progress[event.run_id].push_back({event.t, event.step});
    } else if ((event.event == "program.finished" || event.event == "program.errored") &&
               !event.run_id.empty()) {
      e.progress[event.run_id].push_back({event.t, -1});
    }
  }
  for (const auto& [id, p] : w.programs) {
    std::optional<Nanos> end = p.ended_at;
    if (p.cancelled_at) end = end ? std::min(*end, *p.cancelled_at) : *p.cancelled_at;
    if (end) {
      e.ends[id] = *end;
      e.progress[id].push_back({*end, -1});
    }
  }
  std::sort(e.commit_times.begin(), e.commit_times.end());
  return e;
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// Prints the counts and checks; returns the exit code.
int report(const Options& options, const Deployment& d, const Daemons& daemons, const Workload& w,
           const Outcome& o, const Queues& q, const Evidence& e, const History& h) {
  Report report;
  json& doc = report.document();
  doc["run_dir"] = d.run_dir.string();
  doc["seed"] = options.seed;
  doc["table"] = d.table;
  doc["duration_seconds"] = seconds_between(o.started, o.ended);
  std::cout << fmt::format("\nchaos-run report ({:.1f} s, {})\n",
                           seconds_between(o.started, o.ended),
                           o.quiescent   ? "quiescent"
                           : interrupted ? "interrupted"
                                         : "TIMED OUT");

  // ---- programs
  int finished = 0, errored = 0, cancelled = 0, lost = 0, poison_ok = 0;
  std::vector<std::string> lost_list, crash_loop_list, failed_list, poison_list, innocent_list;
  for (const auto& [id, p] : w.programs) {
    if (p.state == "finished") {
      ++finished;
    } else if (p.state == "running") {
      ++lost;
      lost_list.push_back(fmt::format("{} at step {}{}", id, p.step, p.poison ? " (poison)" : ""));
      if (p.poison) poison_list.push_back(id + ": still running");
    } else if (p.error_message == cancel_message) {
      ++cancelled;
    } else {
      ++errored;
      const bool crash_counter = lowercase(p.error_message).find("crash") != std::string::npos;
      if (p.poison && crash_counter) {
        ++poison_ok;
      } else if (p.poison) {
        poison_list.push_back(id + ": " + p.error_message);
      } else if (crash_counter) {
        crash_loop_list.push_back(fmt::format("{} at step {}", id, p.step));
      }
      if (!p.poison && (p.innocent || crash_counter)) {
        innocent_list.push_back(fmt::format("{}{} at step {}: {}", id, p.innocent ? " (innocent)" : "",
                                            p.step, p.error_message));
      }
      if (!p.poison && !crash_counter) {
        failed_list.push_back(fmt::format("{} at step {}: {}", id, p.step, p.error_message));
      }
    }
  }

  // ---- faults
  int crash_points_fired = 0;
  for (const auto& event : e.events) crash_points_fired += event.event == "crash_point.fired";
  int broker_done = 0, database_done = 0;
  for (const auto& r : o.restarts) (r.service == "broker" ? broker_done : database_done) += 1;

  // Recovery: per death, the time until the next commit anywhere, and the time
  // until every program the daemon had in hand moved again; per service
  // restart, the time from the service being back to the next commit.
  std::map<std::string, int> death_kinds;
  std::map<std::string, std::vector<double>> recovery_any, recovery_in_flight;
  std::vector<std::string> unrecovered;
  for (const auto& i : daemons.incarnations()) {
    const auto self = e.self_kills.find(i.pid);
    std::string kind;
    if (self != e.self_kills.end()) {
      kind = self->second.rfind("crash point", 0) == 0 ? "crash point" : self->second;
    } else if (i.harness_kill) {
      kind = "SIGKILL by harness";
    } else if (i.stopped_by_harness || !i.reaped) {
      continue;  // stopped at the end of the run
    } else {
      kind = WIFSIGNALED(i.status) ? fmt::format("died of signal {}", WTERMSIG(i.status))
                                   : fmt::format("exited {}", WEXITSTATUS(i.status));
    }
    ++death_kinds[kind];
    const auto death = e.deaths.find(i.pid);
    const Nanos at = death != e.deaths.end() ? death->second : o.ended;
    if (auto next = first_after(e.commit_times, at)) {
      recovery_any[kind].push_back(seconds_between(at, *next));
    }
    std::optional<double> worst;
    for (const StepKey& key : in_flight_at_death(e.executions, i.pid, at, e.ends)) {
      if (auto resumed = resumed_after(e.progress, key, at)) {
        worst = std::max(worst.value_or(0.0), seconds_between(at, *resumed));
      } else {
        unrecovered.push_back(fmt::format("{} step {} (pid {})", key.first, key.second, i.pid));
      }
    }
    if (worst) recovery_in_flight[kind].push_back(*worst);
  }
  for (const auto& r : o.restarts) {
    if (auto next = first_after(e.commit_times, r.ended)) {
      recovery_any[r.service + " restart"].push_back(seconds_between(r.ended, *next));
    }
  }

  std::string deaths_text;
  for (const auto& [kind, n] : death_kinds) {
    deaths_text += fmt::format("{}{} {}", deaths_text.empty() ? "" : ", ", kind, n);
  }
  report.info("daemon deaths", deaths_text.empty() ? "none" : deaths_text);
  report.info("service restarts",
              fmt::format("broker {} of {}, database {} of {}{}", broker_done,
                          options.broker_restarts, database_done, options.database_restarts,
                          d.database_restartable ? "" : " (sqlite3 has no server: skipped)"));
  report.info("malformed published, duplicated first steps, cancels asked",
              fmt::format("{}, {}, {}", w.malformed.size(), w.duplicated, w.to_cancel.size()));
  report.info("programs",
              fmt::format("total {}, finished {}, errored {} (poison {}), cancelled {}, lost {}",
                          w.programs.size(), finished, errored, options.poison, cancelled, lost));
  doc["counts"] = {{"programs", w.programs.size()},
                   {"finished", finished},
                   {"errored", errored},
                   {"cancelled", cancelled},
                   {"lost", lost},
                   {"harness_kills", o.harness_kills},
                   {"crash_points_fired", crash_points_fired},
                   {"broker_restarts", broker_done},
                   {"database_restarts", database_done}};

  // ---- executions
  std::map<StepKey, int> completed;
  int cut = 0;
  for (const auto& x : e.executions) {
    if (x.completed) ++completed[{x.run_id, x.step}];
    if (x.killed) ++cut;
  }
  int repeated_steps = 0;
  for (const auto& [key, n] : completed) repeated_steps += n > 1;
  std::string after_commit = "?";
  if (e.commits_logged) {
    std::map<StepKey, Nanos> first_commit;
    for (const auto& event : e.events) {
      if (event.event != "step.committed") continue;
      auto [it, inserted] = first_commit.emplace(StepKey{event.run_id, event.step}, event.t);
      if (!inserted) it->second = std::min(it->second, event.t);
    }
    int n = 0;
    for (const auto& x : e.executions) {
      const auto c = first_commit.find({x.run_id, x.step});
      // Log times are cut to the millisecond: the commit was up to 1 ms later.
      if (c != first_commit.end() && x.start > c->second + 1'000'000) ++n;
    }
    after_commit = std::to_string(n);
  }
  report.info("executions",
              fmt::format("{} ({} cut by a death; {} steps ran to the end more than once; {} "
                          "started after their step committed)",
                          e.executions.size(), cut, repeated_steps, after_commit));
  doc["counts"]["executions"] = e.executions.size();
  doc["counts"]["steps_repeated"] = repeated_steps;
  if (!crash_loop_list.empty()) {
    // Not a violation: the counter cannot tell a poison job from a worker
    // killed from outside recovery.max_crashes times while running one step.
    report.info("non-poison programs errored by the crash counter",
                fmt::format("{} (killed max_crashes times in one step; expected only under "
                            "dense kills) e.g. {}",
                            crash_loop_list.size(), first_few(crash_loop_list)));
  }
  doc["counts"]["crash_counter_errored_non_poison"] = crash_loop_list.size();

  // Stalls: program.recovered events that no injected fault explains, and
  // how long programs stood still between two steps (from the recorder's
  // executions, nanosecond clock).
  {
    std::vector<FaultWindow> faults;
    for (const auto& [pid, t] : e.deaths) faults.push_back({t, t});
    for (const auto& r : o.restarts) faults.push_back({r.began, r.ended > 0 ? r.ended : o.ended});
    std::map<std::string, Nanos> created;
    for (const auto& [id, p] : w.programs) created[id] = p.created_at;
    const std::vector<StepSpan> spans = spans_from_executions(e.executions);
    int recovered = 0;
    for (const auto& event : e.events) recovered += event.event == "program.recovered";
    const std::vector<LogEvent> outside = recoveries_outside_faults(e.events, spans, created, faults);
    std::vector<std::string> outside_list;
    for (const auto& event : outside) outside_list.push_back(fmt::format("{} step {}", event.run_id, event.step));
    report.info("program.recovered events outside injected faults",
                fmt::format("{} of {} (none since the program last moved){}", outside.size(), recovered,
                            outside.empty() ? "" : " e.g. " + first_few(outside_list)));
    doc["stalls"]["recovered_events"] = recovered;
    doc["stalls"]["recovered_outside_faults"] = outside.size();
    doc["stalls"]["recovered_outside_faults_runs"] = outside_list;
    const std::vector<StepGap> gaps = step_gaps(spans);
    std::vector<StepGap> quiet;  // gaps during which no fault acted
    for (const auto& g : gaps) {
      if (!fault_within(faults, g.from, g.to)) quiet.push_back(g);
    }
    const auto describe = [](const std::optional<StepGap>& g) {
      return g ? fmt::format("{:.3f} s ({} step {} -> {})", g->seconds(), g->run_id, g->step - 1, g->step)
               : std::string("none measured");
    };
    const auto gap_json = [](const std::optional<StepGap>& g) {
      return g ? json{{"seconds", g->seconds()}, {"run_id", g->run_id}, {"step", g->step}} : json(nullptr);
    };
    const auto longest = longest_gap(gaps);
    const auto longest_quiet = longest_gap(quiet);
    report.info("longest gap between two steps of one program", describe(longest));
    report.info("longest such gap with no fault within it", describe(longest_quiet));
    doc["stalls"]["gaps_measured"] = gaps.size();
    doc["stalls"]["longest_gap"] = gap_json(longest);
    doc["stalls"]["longest_gap_without_fault"] = gap_json(longest_quiet);
  }

  // ---- checks
  std::vector<std::string> failed_restarts;
  for (const auto& r : o.restarts) {
    if (r.exit_code != 0)
      failed_restarts.push_back(fmt::format("{} exit {}", r.service, r.exit_code));
  }
  report.check("service restart commands succeeded", failed_restarts.empty(),
               failed_restarts.empty() ? "yes" : first_few(failed_restarts) + " (restarts.log)");
  if (!options.cluster.empty()) {
    // Issue 14: a lost node is ridden out. A daemon that exited or died of
    // anything but the harness's kills, its crash points and the poison is
    // one that a node's loss stopped.
    std::vector<std::string> own_deaths;
    for (const auto& [kind, n] : death_kinds) {
      if (kind != "SIGKILL by harness" && kind != "crash point" && kind != "poison job") {
        own_deaths.push_back(fmt::format("{} {}", kind, n));
      }
    }
    report.check("daemons that died on their own (node losses)", own_deaths.empty(),
                 own_deaths.empty() ? "0" : first_few(own_deaths) + " (daemon-*.log)");
    // A run that ended before its node losses proved nothing about them.
    report.check("broker nodes lost and restarted while programs ran",
                 broker_done == options.broker_restarts,
                 fmt::format("{} of {} (restarts.log)", broker_done, options.broker_restarts));
  }
  report.check("programs created", w.create_failures == 0,
               fmt::format("{} failures", w.create_failures));
  report.check("lost programs (still running)", lost == 0,
               fmt::format("{}{}", lost, lost ? " e.g. " + first_few(lost_list) : ""));
  report.check("programs errored by something else than a crash", failed_list.empty(),
               fmt::format("{}{}", failed_list.size(),
                           failed_list.empty() ? "" : " e.g. " + first_few(failed_list)));
  if (options.innocent > 0) {
    // Issue 18: only the poison may be condemned. Any other program the
    // crash counter stopped (or an innocent one stopped by anything) shared a
    // process with the poison and was blamed for its crashes.
    report.check("innocent programs errored 0", innocent_list.empty(),
                 fmt::format("{} (of {} innocent and {} other non-poison programs){}", innocent_list.size(),
                             options.innocent, options.programs,
                             innocent_list.empty() ? "" : " e.g. " + first_few(innocent_list)));
  }
  doc["counts"]["innocent"] = options.innocent;
  doc["counts"]["innocent_errored"] = innocent_list.size();
  report.check("poison programs errored by the crash counter", poison_ok == options.poison,
               fmt::format("{} of {}{}", poison_ok, options.poison,
                           poison_list.empty() ? "" : "; " + first_few(poison_list)));

  const auto doubles = repeated(e.committed);
  std::vector<std::string> double_list;
  for (const auto& [key, n] : doubles) {
    double_list.push_back(fmt::format("{} step {} x{}", key.first, key.second, n));
  }
  report.check("double-committed steps", e.commits_logged && doubles.empty(),
               e.commits_logged
                   ? fmt::format("{} (of {} committed steps){}", doubles.size(), e.committed.size(),
                                 doubles.empty() ? "" : " e.g. " + first_few(double_list))
                   : "UNKNOWN: no step.committed event in any daemon log (--log-level debug?)");
  doc["counts"]["double_committed"] = e.commits_logged ? json(doubles.size()) : json(nullptr);

  const std::vector<Overlap> overlaps = find_overlaps(e.executions);
  std::vector<std::string> overlap_list;
  for (const auto& x : overlaps) {
    overlap_list.push_back(fmt::format(
        "{} step {}: pid {} [{:.3f}, {:.3f}] and pid {} [{:.3f}, {:.3f}]", x.first.run_id,
        x.first.step, x.first.pid, seconds_between(o.started, x.first.start),
        seconds_between(o.started, x.first.end), x.second.pid,
        seconds_between(o.started, x.second.start), seconds_between(o.started, x.second.end)));
  }
  report.check("overlapping executions of one step", overlaps.empty(),
               fmt::format("{}{}", overlaps.size(),
                           overlaps.empty() ? "" : " e.g. " + first_few(overlap_list, 2)));
  doc["counts"]["overlapping"] = overlaps.size();

  std::vector<std::string> skipped;
  for (const auto& [id, p] : w.programs) {
    if (p.state != "finished") continue;
    const int steps = p.innocent ? options.innocent_steps : options.steps;
    for (int s = 0; s < steps; ++s) {
      if (completed.count({id, s}) == 0) skipped.push_back(fmt::format("{} step {}", id, s));
    }
  }
  report.check(
      "steps of finished programs never completed", skipped.empty(),
      fmt::format("{}{}", skipped.size(), skipped.empty() ? "" : " e.g. " + first_few(skipped)));

  const auto show = [](const std::optional<std::uint32_t>& n) {
    return n ? std::to_string(*n) : std::string("?");
  };
  report.check("main and retry queues empty", q.main == 0u && q.retry == 0u,
               fmt::format("main {}, retry {}", show(q.main), show(q.retry)));
  {
    // Exactly the malformed bodies, each at least once: a worker that dies
    // between parking a message and acking it parks it again on redelivery.
    const std::set<std::string> expected(w.malformed.begin(), w.malformed.end());
    std::map<std::string, int> seen;
    for (const auto& b : q.parked_bodies) ++seen[b];
    int missing = 0, twice = 0, others = 0;
    for (const auto& b : expected) missing += seen.count(b) == 0;
    std::vector<std::string> other_list;
    for (const auto& [b, n] : seen) {
      if (expected.count(b)) {
        twice += n - 1;
      } else {
        others += n;
        other_list.push_back(b.substr(0, 120));
      }
    }
    report.check("parking queue holds exactly the malformed",
                 q.parked.has_value() && missing == 0 && others == 0,
                 fmt::format("parked {}, malformed {}: missing {}, other {}, parked twice {}{}",
                             show(q.parked), w.malformed.size(), missing, others, twice,
                             others ? " e.g. " + first_few(other_list, 2) : ""));
    doc["counts"]["parked"] = q.parked ? json(*q.parked) : json(nullptr);
  }

  report.info("recovery measured against",
              e.commit_event + " events" + (e.commits_logged ? "" : " (no step.committed logged)"));
  for (const auto& [kind, sample] : recovery_any) {
    report.info("recovery, next commit after " + kind, format_summary(summarize(sample)));
    doc["recovery"]["next_commit"][kind] = sample;
  }
  for (const auto& [kind, sample] : recovery_in_flight) {
    report.info("recovery, in-flight programs moved after " + kind,
                format_summary(summarize(sample)));
    doc["recovery"]["in_flight"][kind] = sample;
  }
  report.check("in-flight programs of dead daemons that never moved", unrecovered.empty(),
               fmt::format("{}{}", unrecovered.size(),
                           unrecovered.empty() ? "" : " e.g. " + first_few(unrecovered)));

  report_history(report, h, w.programs.size(), true);

  const auto failures = report.failures();
  doc["failures"] = failures;
  std::ofstream(d.run_dir / "report.json") << doc.dump(2) << "\n";
  if (failures.empty()) {
    std::cout << "RESULT: PASS (every invariant held)\n";
    return 0;
  }
  std::cout << "RESULT: FAIL (" << failures.size() << " violated: " << first_few(failures, 10)
            << ")\n  logs: " << d.run_dir.string() << "\n";
  return 1;
}

// Leaves the broker and the database as found (the logs stay in the run directory).
void clean_up(const Options& options, const Deployment& d, Bookkeeping& bookkeeping) {
  if (options.keep) return;
  try {
    amqp::Connection cleanup(d.amqp, "chaos-run cleanup");
    for (const auto& q : {d.queue, d.queue + "-retry-1000", d.queue + "-parked"}) {
      cleanup.delete_queue(q);
    }
    for (const auto& q : delay_queues(d.queue)) cleanup.delete_queue(q);
  } catch (const std::exception& e) {
    std::cout << "  (could not delete the queues: " << e.what() << ")\n";
  }
  if (options.backend == "sqlite3") return;  // the file stays in the run directory
  // The table and whatever the store keeps beside it under the same prefix
  // (its schema version, say): every name starting with this run's table.
  try {
    soci::session session(bookkeeping.database().pool());
    const std::string catalog =
        options.backend == "postgresql"
            ? "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
              " AND tablename LIKE :prefix"
            : "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
              " AND table_name LIKE :prefix";
    const std::string prefix = d.table + "%";
    std::vector<std::string> tables(100);
    session << catalog, soci::use(prefix), soci::into(tables);
    // The owned table last: the others may refer to it.
    std::sort(tables.begin(), tables.end(), [&](const std::string& a, const std::string& b) {
      return (a == d.table) < (b == d.table) || ((a == d.table) == (b == d.table) && a < b);
    });
    const char quote = options.backend == "postgresql" ? '"' : '`';
    for (const auto& t : tables) {
      if (t.rfind(d.table, 0) == 0) session << "DROP TABLE " + std::string(1, quote) + t + quote;
    }
  } catch (const std::exception& e) {
    std::cout << "  (could not drop table " << d.table << ": " << e.what() << ")\n";
  }
}

// chaos-run --check-history --run-dir DIR: the history check of a run that
// ended, once more (after a row was changed by hand, say). The run's
// config.yaml, written by prepare(), names the backend, connection and table;
// every program of that table is checked. Exits 1 on a violation.
int check_history_again(const Options& options) {
  const fs::path config = fs::absolute(options.run_dir) / "config.yaml";
  std::ifstream in(config);
  if (options.run_dir.empty() || !in) {
    throw SetupError("--check-history needs the --run-dir of a run (no " + config.string() + ")");
  }
  std::map<std::string, std::string> values;
  for (std::string line; std::getline(in, line);) {
    for (const char* key : {"backend", "connection", "table"}) {
      const std::string prefix = fmt::format("  {}: ", key);
      if (line.rfind(prefix, 0) == 0) values[key] = line.substr(prefix.size());
    }
  }
  if (values.size() != 3)
    throw SetupError(config.string() + " names no database backend, connection and table");
  config::DatabaseSettings settings;
  settings.backend = store::parse_backend(values["backend"]);
  settings.connection = json::parse(values["connection"]).get<std::string>();
  settings.table = values["table"];
  Bookkeeping bookkeeping(settings);
  std::vector<std::string> run_ids;
  {
    soci::session session(bookkeeping.database().pool());
    soci::rowset<std::string> rows = session.prepare
                                     << "SELECT run_id FROM " +
                                            bookkeeping.database().dialect().quote(settings.table);
    run_ids.assign(rows.begin(), rows.end());
  }
  std::cout << fmt::format("chaos-run: the attempt history of table {} ({} programs), {}\n",
                           settings.table, run_ids.size(), config.parent_path().string());
  Report report;
  const History history = read_history(bookkeeping, settings.table, run_ids, nullptr);
  report_history(report, history, run_ids.size(), false);
  // Every violation, one a line (the check's line shows a few).
  for (const HistoryViolation& v : history.violations) std::cout << "    " << to_string(v) << "\n";
  for (const std::string& id : history.strangers) std::cout << "    " << id << ": a stranger\n";
  const auto failures = report.failures();
  std::cout << (failures.empty() ? "RESULT: PASS (the history agrees with the table)\n"
                                 : "RESULT: FAIL (the history disagrees with the table)\n");
  return failures.empty() ? 0 : 1;
}

int run(Options options) {
  if (options.check_history) return check_history_again(options);
  std::mt19937_64 random(options.seed);
  const Deployment d = prepare(options, random);
  std::cout << fmt::format(
      "chaos-run: {} programs x {} steps (+{} poison, +{} innocent x {} steps of {} ms), {} daemons x {} "
      "threads, {} backend\n"
      "  run dir {}\n  queue {}, table {}, seed {}\n",
      options.programs, options.steps, options.poison, options.innocent, options.innocent_steps,
      options.innocent_ms, options.workers, options.threads,
      options.backend, d.run_dir.string(), d.queue, d.table, options.seed);
  std::cout.flush();

  config::DatabaseSettings database_settings;
  database_settings.backend = store::parse_backend(options.backend);
  database_settings.connection = options.connection;
  database_settings.table = d.table;
  Bookkeeping bookkeeping(database_settings);
  bookkeeping.database().ensure_schema();

  Daemons daemons(options, d.run_dir, d.config, random);
  daemons.start_all();
  daemons.wait_started(std::chrono::seconds(60));

  Workload workload = create_workload(options, d, bookkeeping, random);
  std::cout << fmt::format("  created {} programs ({} failures), published {} malformed\n",
                           workload.programs.size(), workload.create_failures,
                           workload.malformed.size());
  std::cout.flush();

  const Outcome outcome =
      inject_until_quiescent(options, d, daemons, bookkeeping, workload, random);
  daemons.stop_all(std::chrono::seconds(options.shutdown_grace + 5));
  bool rows_read = false;
  for (int attempt = 0; attempt < 30 && !rows_read; ++attempt) {
    rows_read = refresh(bookkeeping, workload.programs);
    if (!rows_read) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  const Queues queues = inspect_queues(d);
  const Evidence evidence = gather(d, daemons, workload);
  std::vector<std::string> run_ids;
  for (const auto& [id, p] : workload.programs) run_ids.push_back(id);
  const History history = read_history(bookkeeping, d.table, run_ids, &evidence.deaths);
  const int code = report(options, d, daemons, workload, outcome, queues, evidence, history);
  clean_up(options, d, bookkeeping);
  return code;
}

}  // namespace
}  // namespace program_executor::chaos

int main(int argc, char** argv) {
  using program_executor::chaos::Options;
  Options options;
  options.seed = std::random_device{}();
  CLI::App app{"chaos-run: fault-injection harness of program-executor's step protocol"};
  // A later occurrence wins, so a script's defaults can be overridden by appending.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--programs", options.programs, "Programs to create (besides the poison ones)")
      ->capture_default_str();
  app.add_option("--steps", options.steps, "Steps (chaos.step jobs) per program")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--workers", options.workers, "Daemon processes")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Worker threads per daemon")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--job-ms", options.job_ms,
                 "Sleep of each step, in ms (a random 0..ms unless --fixed-sleep)")
      ->capture_default_str();
  app.add_flag("--fixed-sleep", options.fixed_sleep, "Every step sleeps exactly --job-ms");
  app.add_option("--backend", options.backend, "Database backend")
      ->check(CLI::IsMember(std::vector<std::string>{"sqlite3", "postgresql", "mysql"}))
      ->capture_default_str();
  app.add_option("--connection", options.connection,
                 "SOCI connection string (default for sqlite3: a file in the run directory)");
  app.add_option("--amqp-url", options.amqp_url,
                 "Broker (default: $PE_TEST_AMQP_URL or amqp://guest:guest@127.0.0.1:5672/)");
  app.add_option("--kill-every", options.kill_every,
                 "SIGKILL a random daemon about every SECONDS (0: never), then restart it")
      ->capture_default_str();
  app.add_flag(
      "--crash-points", options.crash_points,
      "Arm a random crash point in every daemon started (needs a -DPE_CRASH_POINTS=ON build)");
  app.add_option("--crash-probability", options.crash_probability,
                 "Probability of the armed crash point firing on each pass")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--broker-restarts", options.broker_restarts, "Broker restarts while programs run")
      ->capture_default_str();
  app.add_option("--broker-restart-command", options.broker_restart_command,
                 "Shell command restarting the broker")
      ->capture_default_str();
  app.add_option("--cluster", options.cluster,
                 "tests/cluster/rabbitmq-cluster of a running cluster: the daemons get its nodes "
                 "(amqp.urls) and quorum queues, and each of --broker-restarts SIGKILLs a node and "
                 "starts it again (the main queue's leader, then a random node, alternately)");
  app.add_option("--database-restarts", options.database_restarts,
                 "Database restarts while programs run (skipped for sqlite3)")
      ->capture_default_str();
  app.add_option(
      "--database-restart-command", options.database_restart_command,
      "Shell command restarting the database, e.g. 'bash .ci/databases restart postgresql'");
  app.add_option("--restart-interval", options.restart_interval,
                 "Seconds between service restarts (the first after as long)")
      ->capture_default_str();
  app.add_option("--poison", options.poison,
                 "Programs with a chaos.poison step (kills its daemon every time)")
      ->capture_default_str();
  app.add_option("--innocent", options.innocent,
                 "Long programs created first, beside the poison ones; with it, any non-poison program "
                 "errored by the crash counter fails the run")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--innocent-steps", options.innocent_steps, "Steps of each innocent program")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--innocent-ms", options.innocent_ms, "Milliseconds each innocent step runs")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  app.add_option("--malformed", options.malformed,
                 "Malformed messages to publish (must all be parked)")
      ->capture_default_str();
  app.add_option("--cancel", options.cancel, "Programs to cancel while they run")
      ->capture_default_str();
  app.add_option("--duplicates", options.duplicates,
                 "Programs whose first step message is published twice")
      ->capture_default_str();
  app.add_option("--timeout", options.timeout, "Seconds to wait for quiescence")
      ->capture_default_str();
  app.add_option("--settle", options.settle,
                 "Seconds the queues must stay empty after the last program ended")
      ->capture_default_str();
  app.add_option("--restart-delay", options.restart_delay,
                 "Seconds before a dead daemon is started again")
      ->capture_default_str();
  app.add_option("--shutdown-grace", options.shutdown_grace,
                 "shutdown_grace_seconds of the daemons")
      ->capture_default_str();
  app.add_option("--run-dir", options.run_dir,
                 "Directory for config, logs and report (default: a new /tmp/pe-chaos-XXXXXX)");
  app.add_option("--daemon", options.daemon, "program-executor binary")->capture_default_str();
  app.add_option("--plugin-dir", options.plugin_dir, "Plugin directory holding chaos_recorder.so")
      ->capture_default_str();
  app.add_option("--lease-seconds", options.lease_seconds,
                 "recovery.lease_seconds of the daemons (0: their default)")
      ->capture_default_str();
  app.add_option("--stale-after-seconds", options.stale_after_seconds,
                 "recovery.stale_after_seconds (0: default)")
      ->capture_default_str();
  app.add_option("--sweep-interval-seconds", options.sweep_interval_seconds,
                 "recovery.sweep_interval_seconds (0: default)")
      ->capture_default_str();
  app.add_option("--max-crashes", options.max_crashes, "recovery.max_crashes (0: default)")
      ->capture_default_str();
  app.add_option("--config-extra", options.config_extra,
                 "YAML appended to the generated config (keys it does not set itself)");
  app.add_option("--log-level", options.log_level,
                 "Daemon log level (step.committed, which the checks count, is a debug event)")
      ->capture_default_str();
  app.add_flag("--keep", options.keep, "Keep the queues and (server databases) the table");
  app.add_flag(
      "--check-history", options.check_history,
      "Only check the attempt history of the finished run in --run-dir again (no daemon runs)");
  app.add_option("--seed", options.seed,
                 "Random seed (printed; reuse it to repeat the fault schedule)");
  CLI11_PARSE(app, argc, argv);
#if !defined(PE_CRASH_POINTS)
  if (options.crash_points && options.daemon == PE_CHAOS_DAEMON_PATH) {
    std::cerr << "chaos-run: warning: this build has no crash points (configure with "
                 "-DPE_CRASH_POINTS=ON); --crash-points arms nothing\n";
  }
#endif

  struct sigaction action {};
  action.sa_handler = program_executor::chaos::on_interrupt;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  program_executor::log::configure(program_executor::log::Level::warn,
                                   program_executor::log::Format::text);
  try {
    return program_executor::chaos::run(options);
  } catch (const std::exception& e) {
    std::cerr << "chaos-run: " << e.what() << "\n";
    return 2;
  }
}
