#include "daemon_run.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "amqp_link.hpp"
#include "analysis.hpp"
#include "bench_sql.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/step_message.hpp"

extern char** environ;

namespace program_executor::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// program.recovered events and the gaps between steps, from the daemons' logs.
void read_logs(const std::vector<std::unique_ptr<Process>>& processes, const std::string& log_level,
               DaemonRunResult& result) {
  std::vector<chaos::LogEvent> events;
  for (const auto& process : processes) {
    std::ifstream in(process->log());
    for (std::string line; std::getline(in, line);) {
      if (auto event = chaos::parse_log_line(line)) events.push_back(std::move(*event));
    }
  }
  result.recovered = static_cast<int>(
      std::count_if(events.begin(), events.end(), [](const auto& e) { return e.event == "program.recovered"; }));
  result.gaps_logged = log_level == "trace" || log_level == "debug" || log_level == "info";
  if (!result.gaps_logged) return;
  const std::vector<chaos::StepGap> gaps = chaos::step_gaps(chaos::spans_from_events(events));
  result.gaps_measured = static_cast<long long>(gaps.size());
  if (const auto longest = chaos::longest_gap(gaps)) {
    result.longest_gap_seconds = longest->seconds();
    result.longest_gap_run_id = longest->run_id;
    result.longest_gap_step = longest->step;
  }
}

std::string logs_of(const std::vector<std::unique_ptr<Process>>& processes) {
  std::string text;
  for (const auto& process : processes) {
    text += "\n  last lines of " + process->log().string() + ":\n" + tail(process->log(), 15);
  }
  return text;
}

void require_running(std::vector<std::unique_ptr<Process>>& processes) {
  for (auto& process : processes) {
    if (!process->running()) {
      throw BenchError("the daemon (pid " + std::to_string(process->pid()) + ") exited" + logs_of(processes));
    }
  }
}

}  // namespace

// YAML single-quoted, with ${ escaped from the loader's variable expansion.
std::string yaml_text(const std::string& value) {
  std::string out = "'";
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\'') {
      out += "''";
    } else if (value[i] == '$' && i + 1 < value.size() && value[i + 1] == '{') {
      out += "$$";
    } else {
      out += value[i];
    }
  }
  return out + "'";
}

Process::Process(const std::vector<std::string>& args, const std::filesystem::path& log) : log_(log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const int error = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw BenchError("cannot start " + args[0] + ": " + std::strerror(error));
}

Process::~Process() {
  if (running()) terminate(5s);
}

bool Process::running() {
  if (exited_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    exited_ = true;
    status_ = status;
    return false;
  }
  return true;
}

int Process::terminate(std::chrono::seconds grace) {
  if (!running()) return status_;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + grace;
  while (running() && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  if (running()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    exited_ = true;
  }
  return status_;
}

std::string tail(const std::filesystem::path& file, std::size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string text;
  for (const auto& line : last) text += "  | " + line + "\n";
  return text;
}

// utime + stime of a process (all its threads), from /proc/PID/stat.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) throw BenchError("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// VmHWM: the peak resident set size, in kB.
long long peak_rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

std::filesystem::path write_config(const DaemonPlan& plan, const std::string& queue,
                                   const std::string& table, int workers) {
  const auto path = plan.work_dir / (queue + ".yaml");
  std::ofstream out(path);
  out << "# Written by pe-bench for one run.\n"
      << "amqp:\n";
  if (plan.amqp_urls.empty()) {
    out << "  url: " << yaml_text(plan.amqp_url) << "\n";
  } else {
    out << "  urls:\n";
    for (const std::string& url : plan.amqp_urls) out << "    - " << yaml_text(url) << "\n";
    out << "  queue_type: quorum\n";
  }
  out << "  queue: " << yaml_text(queue) << "\n"
      << "  durable: true\n";
  if (plan.prefetch) out << "  prefetch: " << *plan.prefetch << "\n";
  out << "database:\n"
      << "  backend: " << plan.backend << "\n"
      << "  connection: " << yaml_text(plan.connection) << "\n"
      << "  table: " << table << "\n"
      << "plugins:\n"
      << "  directory: " << yaml_text(plan.plugins) << "\n"
      << "workers: " << workers << "\n"
      << "shutdown_grace_seconds: 10\n"
      // A backlog older than stale_after would look lost to the recovery
      // sweeper, which would republish its steps; the sweeper still runs.
      << "recovery:\n"
      << "  stale_after_seconds: 3600\n"
      << "history:\n"
      << "  enabled: " << (plan.history ? "true" : "false") << "\n"
      << "  retention: " << history_retention_days << "\n"
      << "log:\n"
      << "  level: " << plan.log_level << "\n"
      // JSON lines: the bench reads the job events back (tests/chaos/analysis.hpp).
      << "  format: json\n"
      // P processes share one config: no two can listen on one port.
      << "metrics:\n"
      << "  listen: \"\"\n";
  if (!out) throw BenchError("cannot write " + path.string());
  return path;
}

QueueCleanup::QueueCleanup(const amqp::ConnectionSettings& broker, amqp::QueueTopology topology)
    : broker_(broker), topology_(std::move(topology)) {}

QueueCleanup::~QueueCleanup() {
  try {
    amqp::Connection connection(broker_, "pe-bench cleanup");
    for (const auto& spec : topology_.declarations()) connection.delete_queue(spec.name);
  } catch (const std::exception& e) {
    std::cerr << "pe-bench: could not delete queue " << topology_.main_queue() << ": " << e.what() << "\n";
  }
}

std::string JobMix::job_data(int index) const {
  if (!sleeps()) return "{}";
  const int ms = slow_every > 0 && index % slow_every == slow_every - 1 ? slow_ms : std::max(job_ms, 0);
  return nlohmann::json{{"demo.sleep", {{"ms", ms}}}}.dump();
}

double JobMix::mean_ms() const {
  if (!sleeps()) return 0;
  const double base = std::max(job_ms, 0);
  return slow_every > 0 ? (base * (slow_every - 1) + slow_ms) / slow_every : base;
}

std::string JobMix::describe() const {
  if (!sleeps()) return "demo.noop";
  std::string text = fmt::format("demo.sleep {} ms", std::max(job_ms, 0));
  if (slow_every > 0) text += fmt::format(", every {}th {} ms", slow_every, slow_ms);
  return text;
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = 0;
  in >> load;
  return load;
}

std::string unique_name() {
  static std::atomic<int> counter{0};
  return fmt::format("pe_bench_{}_{}_{}", std::time(nullptr) % 100000000, ::getpid(), ++counter);
}

DaemonRunResult run_daemon(const DaemonPlan& plan, const DaemonRunSpec& spec) {
  DaemonRunResult result;
  result.label = spec.label;
  result.workers = spec.workers;
  result.processes = spec.processes;
  result.filler_rows = spec.filler_rows;
  result.programs = spec.programs;
  result.mix = spec.mix;
  result.steps = static_cast<long long>(spec.programs) * spec.jobs;
  result.history = plan.history;

  const std::string table_name = unique_name();
  std::string queue = table_name;
  std::replace(queue.begin(), queue.end(), '_', '-');
  const amqp::ConnectionSettings broker = amqp::parse_url(plan.amqp_url, {}, 0);

  BenchTable table(plan.backend, plan.connection, table_name, 4);
  table.create();
  if (spec.filler_rows > 0) {
    const auto started = Clock::now();
    std::cerr << "pe-bench: filling " << table_name << " with " << spec.filler_rows << " finished rows..."
              << std::flush;
    table.fill_finished(spec.filler_rows);
    std::cerr << fmt::format(" {:.1f} s\n", seconds_between(started, Clock::now()));
  }

  std::int64_t last_old_attempt = 0;
  if (spec.old_attempts > 0) {
    const auto started = Clock::now();
    std::cerr << "pe-bench: seeding " << table_name << "_attempts with " << spec.old_attempts
              << (spec.attempts_due ? " attempts older than history.retention..." : " attempts a day old...")
              << std::flush;
    last_old_attempt = table.seed_old_attempts(spec.old_attempts, spec.attempts_due ? 2 * history_retention_days : 1);
    result.attempts_due = spec.attempts_due;
    result.old_attempts = table.count_attempts_up_to(last_old_attempt);
    result.seed_seconds = seconds_between(started, Clock::now());
    std::cerr << fmt::format(" {:.1f} s\n", result.seed_seconds);
  }

  // The daemon's own topology, declared as it will declare it.
  const amqp::QueueTopology topology(queue, true, !plan.amqp_urls.empty());
  {
    amqp::Connection control(broker, "pe-bench control");
    control.declare(topology);
  }
  QueueCleanup queues(broker, topology);

  // Programs created before the daemon starts: the queue holds every first step.
  const std::int64_t first_id = table.max_id();
  const std::vector<std::string> jobs(static_cast<std::size_t>(spec.jobs), spec.mix.job());
  {
    const std::vector<std::string> run_ids =
        table.insert_programs(spec.programs, jobs, [&](int i) { return spec.mix.job_data(i); });
    AmqpLink publisher(broker);
    publisher.enable_confirms();
    for (std::size_t i = 0; i < run_ids.size(); ++i) {
      publisher.publish(queue, executor::first_step_body(run_ids[i], jobs, nlohmann::json::object()));
      if (i % 1000 == 999) publisher.wait_confirms();
    }
    publisher.wait_confirms();
  }

  const auto config = write_config(plan, queue, table_name, spec.workers);
  result.load_before = load_average();
  std::vector<std::unique_ptr<Process>> processes;
  const auto spawned = Clock::now();
  for (int i = 0; i < spec.processes; ++i) {
    processes.push_back(std::make_unique<Process>(
        std::vector<std::string>{plan.daemon, "run", "-c", config.string()},
        plan.work_dir / fmt::format("{}-{}.log", queue, i)));
  }

  // The run starts when the first worker consumes (1 ms polls of the queue).
  AmqpLink inspector(broker);
  Clock::time_point started;
  while (true) {
    if (inspector.inspect(queue).consumers > 0) {
      started = Clock::now();
      break;
    }
    require_running(processes);
    if (Clock::now() - spawned > 60s) throw BenchError("the daemon did not consume within 60 s" + logs_of(processes));
    std::this_thread::sleep_for(1ms);
  }
  result.startup_seconds = seconds_between(spawned, started);
  double cpu_start = 0;
  for (const auto& process : processes) cpu_start += cpu_seconds(process->pid());

  // ...and ends when the last program has finished (10 ms polls of the table).
  Clock::time_point finished;
  {
    EndWatcher watcher(table, first_id);
    while (true) {
      if (watcher.all_ended()) {
        finished = Clock::now();
        break;
      }
      require_running(processes);
      if (Clock::now() - started > plan.timeout) {
        throw BenchError(fmt::format("{}: not every program ended within {} s", spec.label, plan.timeout.count()) +
                         logs_of(processes));
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  double cpu_end = 0;
  for (const auto& process : processes) cpu_end += cpu_seconds(process->pid());
  if (spec.old_attempts > 0) {
    // Counted after the CPU reading: the count is the bench's work, not the daemon's.
    result.attempts_pruned = result.old_attempts - table.count_attempts_up_to(last_old_attempt);
    result.prune_seconds = seconds_between(spawned, finished);
  }
  result.seconds = seconds_between(started, finished);
  result.cpu_seconds = cpu_end - cpu_start;
  result.load_after = load_average();
  const BenchTable::Ended ended = table.ended_after(first_id);
  if (ended.errored > 0 || ended.finished != spec.programs) {
    throw BenchError(fmt::format("{}: {} of {} programs finished, {} errored", spec.label, ended.finished,
                                 spec.programs, ended.errored) +
                     logs_of(processes));
  }

  if (spec.latency_samples > 0) {
    // One program of one job at a time on the now idle daemon, created as
    // ProgramCreator does (insert the row, publish the first step, wait for
    // its confirm), timed from just before the publish, and from just before
    // the insert, to the first poll that sees finished_at (every 100 us,
    // starting as soon as the message is handed to the publishing thread).
    // A few warm-up samples are dropped.
    constexpr int warm_up = 3;
    const auto store = table.database().program_store();
    amqp::Connection connection(broker, "pe-bench creator");
    FinishPoller poller(table);
    const std::vector<std::string> one_job = {"demo.noop"};
    std::this_thread::sleep_for(200ms);
    for (int i = 0; i < warm_up + spec.latency_samples; ++i) {
      const std::string run_id = executor::new_run_id();
      const auto begin = Clock::now();
      store->insert(store::NewProgram{run_id, one_job, nlohmann::json::object(), nlohmann::json::object()},
                    std::chrono::minutes(1));
      amqp::PublishProperties properties;
      properties.persistent = true;
      properties.timestamp = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      const std::string body = executor::first_step_body(run_id, one_job, nlohmann::json::object());
      const auto publishing = Clock::now();
      // The publish waits for its confirm (the broker's disk write) on a
      // thread of its own while this one polls: the daemon may well finish
      // the program before the creator hears the confirm.
      std::exception_ptr publish_error;
      std::thread publisher([&] {
        try {
          connection.publish(queue, body, properties);
        } catch (...) {
          publish_error = std::current_exception();
        }
      });
      bool finished = false;
      while (!(finished = poller.finished(run_id)) && Clock::now() - begin < 30s) {
        std::this_thread::sleep_for(100us);
      }
      const auto done = Clock::now();
      publisher.join();
      if (publish_error) std::rethrow_exception(publish_error);
      if (!finished) {
        throw BenchError("latency: program " + run_id + " did not finish within 30 s" + logs_of(processes));
      }
      if (i >= warm_up) {
        result.latency_ms.push_back(seconds_between(publishing, done) * 1e3);
        result.create_latency_ms.push_back(seconds_between(begin, done) * 1e3);
      }
      // Idle between samples, as programs created now and then would find it.
      std::this_thread::sleep_for(10ms);
    }
  }

  for (const auto& process : processes) {
    result.peak_rss_kb = std::max(result.peak_rss_kb, peak_rss_kb(process->pid()));
  }
  for (auto& process : processes) {
    const int status = process->terminate(30s);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "pe-bench: warning: daemon pid " << process->pid() << " ended with wait status " << status
                << " after SIGTERM\n"
                << tail(process->log(), 10);
    }
  }
  read_logs(processes, plan.log_level, result);
  return result;
}

}  // namespace program_executor::bench
