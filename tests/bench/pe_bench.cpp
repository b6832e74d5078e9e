// pe-bench: the daemon's steps per second beside the floor that the broker and
// the database allow, in one run (issue 6; docs/performance.md). A benchmark,
// not a test: it prints figures, and fails only when something does not work
// (or, with --max-gap, when a program stalled: issue 17).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "../cluster/cluster_urls.hpp"
#include "amqp_link.hpp"
#include "api_run.hpp"
#include "bench_sql.hpp"
#include "daemon_run.hpp"
#include "floor.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/executor/step_message.hpp"
#include "program_executor/log/logger.hpp"
#include "report.hpp"

namespace program_executor::bench {
namespace {

struct Options {
  std::string backend = "sqlite3";
  std::string connection;
  std::string amqp_url;
  std::string cluster;  ///< tests/cluster/rabbitmq-cluster; empty: amqp_url alone
  std::string daemon = PE_BENCH_DAEMON_PATH;
  std::string plugins = PE_BENCH_PLUGIN_DIR;
  int workers = 2;
  int processes = 1;
  std::optional<int> prefetch;
  int programs = 1000;
  int jobs = 5;
  int latency_samples = 200;
  std::string table_rows;
  int rss_workers = 4;
  bool skip_floor = false;
  bool json = false;
  std::string log_level = "info";
  std::string history = "on";  ///< history.enabled of the daemons: on, off, or both (alternating pairs)
  long long prune_rows = 0;    ///< > 0: pairs of runs without and with this backlog of old attempts
  bool repeat_given = false;   ///< --repeat on the command line (else --history both takes 3 pairs)
  std::string job_ms;  ///< comma separated: one demo.sleep run per duration
  std::string mixed;   ///< "EVERY:MS": one run where every EVERY-th program sleeps MS, the rest 0
  double max_gap = 0;  ///< > 0: fail on program.recovered or a longer gap between steps
  int timeout_seconds = 600;
  int repeat = 1;
  bool api = false;       ///< the HTTP API phase (program-executor serve)
  bool api_only = false;  ///< that phase alone
  double api_seconds = 10;
  // Sixteen: producers are many; with few clients each create waits on its
  // round trips (database, broker confirm) and the cores idle.
  int api_clients = 16;
  long long api_rows = 1000000;
  int api_samples = 200;
  std::string work_dir;
};

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// "8:30" -> every 8th program's jobs sleep 30 ms, the others' 0 ms.
JobMix parse_mixed(const std::string& text) {
  JobMix mix;
  const auto colon = text.find(':');
  try {
    std::size_t used = 0;
    if (colon == std::string::npos) throw std::invalid_argument(text);
    mix.job_ms = 0;
    mix.slow_every = std::stoi(text.substr(0, colon), &used);
    if (used != colon || mix.slow_every < 2) throw std::invalid_argument(text);
    const std::string ms = text.substr(colon + 1);
    mix.slow_ms = std::stoi(ms, &used);
    if (used != ms.size() || mix.slow_ms < 0) throw std::invalid_argument(text);
  } catch (const std::exception&) {
    throw CLI::ValidationError("--mixed", "expected EVERY:MS with EVERY >= 2 and MS >= 0, e.g. 8:30: " + text);
  }
  return mix;
}

// Every daemon run of the report, for the stall check.
std::vector<const DaemonRunResult*> daemon_runs(const BenchReport& report) {
  std::vector<const DaemonRunResult*> runs;
  if (report.daemon) runs.push_back(&*report.daemon);
  if (report.daemon_rss) runs.push_back(&*report.daemon_rss);
  for (const auto& run : report.table_sizes) runs.push_back(&run);
  for (const auto& run : report.job_durations) runs.push_back(&run);
  if (report.mixed) runs.push_back(&*report.mixed);
  if (report.history_cost) {
    for (const auto& run : report.history_cost->off) runs.push_back(&run);
    for (const auto& run : report.history_cost->on) runs.push_back(&run);
  }
  if (report.prune) {
    for (const auto& run : report.prune->plain) runs.push_back(&run);
    for (const auto& run : report.prune->backlog) runs.push_back(&run);
  }
  return runs;
}

std::vector<long long> parse_sizes(const std::string& text, const std::string& option) {
  std::vector<long long> sizes;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) continue;
    std::size_t used = 0;
    const long long size = std::stoll(item, &used);
    if (used != item.size() || size <= 0) throw CLI::ValidationError(option, "not a positive number: " + item);
    sizes.push_back(size);
  }
  return sizes;
}

// Removes the bench's own scratch directory, unless a failure left logs worth reading.
class WorkDir {
 public:
  explicit WorkDir(const std::string& requested) {
    if (!requested.empty()) {
      path_ = requested;
      std::filesystem::create_directories(path_);
      return;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "pe-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw BenchError("cannot create a temporary directory");
    path_ = pattern;
    owned_ = true;
  }
  ~WorkDir() {
    if (!owned_) return;
    if (keep_) {
      std::cerr << "pe-bench: kept " << path_ << " (daemon configs and logs)\n";
      return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }
  void keep() noexcept { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool owned_ = false;
  bool keep_ = false;
};

FloorRun measure_floor(const Options& options, const amqp::ConnectionSettings& broker, bool pipelined) {
  const std::string table_name = unique_name();
  std::string queue = "pe-bench-floor-" + table_name.substr(std::string("pe_bench_").size());
  std::replace(queue.begin(), queue.end(), '_', '-');
  BenchTable table(options.backend, options.connection, table_name, static_cast<std::size_t>(options.workers) + 1);
  table.create();
  struct QueueGuard {
    const amqp::ConnectionSettings& broker;
    const std::string& queue;
    ~QueueGuard() {
      try {
        amqp::Connection(broker, "pe-bench cleanup").delete_queue(queue);
      } catch (const std::exception& e) {
        std::cerr << "pe-bench: could not delete queue " << queue << ": " << e.what() << "\n";
      }
    }
  } queue_guard{broker, queue};

  const std::vector<std::string> jobs(static_cast<std::size_t>(options.jobs), "demo.noop");
  const std::vector<std::string> run_ids = table.insert_programs(options.programs, jobs);
  {
    AmqpLink publisher(broker);
    publisher.declare_durable(queue);
    publisher.enable_confirms();
    for (std::size_t i = 0; i < run_ids.size(); ++i) {
      publisher.publish(queue, executor::first_step_body(run_ids[i], jobs, nlohmann::json::object()));
      if (i % 1000 == 999) publisher.wait_confirms();
    }
    publisher.wait_confirms();
  }

  FloorSettings settings;
  settings.broker = broker;
  settings.queue = queue;
  settings.threads = options.workers;
  settings.programs = options.programs;
  settings.jobs = options.jobs;
  settings.pipelined = pipelined;
  settings.prefetch = options.prefetch.value_or(1);
  FloorRun run;
  run.threads = options.workers;
  run.prefetch = pipelined ? settings.batch : settings.prefetch;
  run.batch = pipelined ? settings.batch : 0;
  run.load_before = load_average();
  run.result = run_floor(settings, table);
  run.load_after = load_average();
  const BenchTable::Ended ended = table.ended_after(0);
  if (ended.finished != options.programs) {
    throw BenchError(fmt::format("floor: {} of {} programs finished", ended.finished, options.programs));
  }
  return run;
}

// Runs a measurement `repeat` times and keeps the run of median steps/s, with
// every run's steps/s in `repeats`, so a figure taken on a shared machine
// comes with its spread.
template <class Result, class Measure>
Result median_of(int repeat, Measure measure) {
  std::vector<Result> runs;
  for (int i = 0; i < repeat; ++i) runs.push_back(measure(i));
  std::vector<double> rates;
  for (const auto& run : runs) rates.push_back(run.steps_per_second());
  std::sort(runs.begin(), runs.end(),
            [](const Result& a, const Result& b) { return a.steps_per_second() < b.steps_per_second(); });
  Result median = runs[runs.size() / 2];
  median.repeats = rates;
  return median;
}

int run(const Options& options) {
  log::configure(log::Level::warn, log::Format::text);
  WorkDir work(options.work_dir);
  try {
    Options resolved = options;
    if (resolved.connection.empty()) {
      if (resolved.backend == "sqlite3") {
        resolved.connection = "db=" + (work.path() / "bench.db").string();
      } else if (resolved.backend == "postgresql") {
        resolved.connection = env_or("PE_TEST_POSTGRESQL_CONNECTION", "");
      } else if (resolved.backend == "mysql") {
        resolved.connection = env_or("PE_TEST_MYSQL_CONNECTION", "");
      }
      if (resolved.connection.empty()) {
        throw BenchError("--connection is required for " + resolved.backend +
                         " (or PE_TEST_POSTGRESQL_CONNECTION / PE_TEST_MYSQL_CONNECTION)");
      }
    }
    std::vector<std::string> cluster_urls;
    if (!resolved.cluster.empty()) {
      // The daemons get every node; the bench's own connections the first.
      try {
        cluster_urls = cluster::cluster_urls(resolved.cluster);
      } catch (const std::runtime_error& e) {
        throw BenchError(e.what());
      }
      resolved.amqp_url = cluster_urls.front();
    }
    const amqp::ConnectionSettings broker = amqp::parse_url(resolved.amqp_url, {}, 0);
    if (!std::filesystem::exists(resolved.daemon)) throw BenchError("no daemon at " + resolved.daemon);
    if (!std::filesystem::exists(std::filesystem::path(resolved.plugins) / "demo.so")) {
      throw BenchError("no demo.so in " + resolved.plugins);
    }
    const std::vector<long long> sizes = parse_sizes(resolved.table_rows, "--table-rows");
    const std::vector<long long> durations = parse_sizes(resolved.job_ms, "--job-ms");
    const std::optional<JobMix> mixed =
        resolved.mixed.empty() ? std::nullopt : std::optional<JobMix>(parse_mixed(resolved.mixed));
    const bool job_events = resolved.log_level == "trace" || resolved.log_level == "debug" || resolved.log_level == "info";
    if (resolved.max_gap > 0 && !job_events) {
      throw BenchError("--max-gap needs --log-level info (or lower): the gaps are read from job events");
    }

    BenchReport report;
    report.backend = resolved.backend;
    report.broker = cluster_urls.empty()
                        ? broker.describe()
                        : fmt::format("a cluster of {} nodes (amqp.urls, quorum queues; {} first)",
                                      cluster_urls.size(), broker.describe());
    report.programs = resolved.programs;
    report.jobs = resolved.jobs;
    report.workers = resolved.workers;
    report.processes = resolved.processes;
    report.prefetch = resolved.prefetch;
    report.log_level = resolved.log_level;
    report.load_at_start = load_average();
    report.repeat = resolved.repeat;
    report.history = resolved.history;
    // Pairs of the comparisons: enough for a median on a shared machine, short.
    const int pairs = resolved.repeat_given ? resolved.repeat : 3;
    if (resolved.max_gap > 0) report.max_gap = resolved.max_gap;
    const auto say = [](const std::string& what) { std::cerr << "pe-bench: " << what << "\n"; };

    report.api_only = resolved.api_only;
    if (!resolved.skip_floor && !resolved.api_only) {
      say("floor, one message at a time...");
      report.floor_unpipelined = median_of<FloorRun>(resolved.repeat, [&](int) {
        return measure_floor(resolved, broker, false);
      });
      say(fmt::format("  {:.0f} steps/s", report.floor_unpipelined->result.steps_per_second()));
      say("floor, pipelined...");
      report.floor_pipelined = median_of<FloorRun>(resolved.repeat, [&](int) {
        return measure_floor(resolved, broker, true);
      });
      say(fmt::format("  {:.0f} steps/s", report.floor_pipelined->result.steps_per_second()));
    }

    DaemonPlan plan;
    plan.daemon = resolved.daemon;
    plan.plugins = resolved.plugins;
    plan.amqp_url = resolved.amqp_url;
    plan.amqp_urls = cluster_urls;
    plan.backend = resolved.backend;
    plan.connection = resolved.connection;
    plan.log_level = resolved.log_level;
    plan.prefetch = resolved.prefetch;
    plan.history = resolved.history == "on";
    plan.work_dir = work.path();
    plan.timeout = std::chrono::seconds(resolved.timeout_seconds);

    if (!resolved.api_only) {
      DaemonRunSpec spec;
      spec.workers = resolved.workers;
      spec.processes = resolved.processes;
      spec.programs = resolved.programs;
      spec.jobs = resolved.jobs;
      spec.label = fmt::format("daemon, {} process{} x {} workers", spec.processes, spec.processes == 1 ? "" : "es",
                               spec.workers);
      spec.latency_samples = resolved.latency_samples;
      say(spec.label + (spec.latency_samples > 0 ? ", then latency..." : "..."));
      if (resolved.history == "both") {
        // Off, on, off, on...: the same programs and options, so load on the
        // shared machine falls on both modes alike. Latency in every run.
        HistoryComparison comparison;
        for (int i = 0; i < pairs; ++i) {
          for (const bool on : {false, true}) {
            DaemonPlan mode = plan;
            mode.history = on;
            DaemonRunSpec once = spec;
            once.label = spec.label + (on ? ", history on" : ", history off");
            say(fmt::format("{} (pair {} of {}){}", once.label, i + 1, pairs,
                            once.latency_samples > 0 ? ", then latency..." : "..."));
            DaemonRunResult result = run_daemon(mode, once);
            say(fmt::format("  {:.0f} steps/s", result.steps_per_second()));
            (on ? comparison.on : comparison.off).push_back(std::move(result));
          }
        }
        // The daemon's row and issue 6's targets: history on (the default), its median run.
        report.daemon = median_run(comparison.on);
        report.history_cost = std::move(comparison);
      } else {
        // The latency samples are taken after the first run only.
        std::vector<double> latency, create_latency;
        report.daemon = median_of<DaemonRunResult>(resolved.repeat, [&](int i) {
          DaemonRunSpec once = spec;
          if (i > 0) once.latency_samples = 0;
          DaemonRunResult result = run_daemon(plan, once);
          if (i == 0) {
            latency = result.latency_ms;
            create_latency = result.create_latency_ms;
          }
          return result;
        });
        report.daemon->latency_ms = latency;
        report.daemon->create_latency_ms = create_latency;
        say(fmt::format("  {:.0f} steps/s", report.daemon->steps_per_second()));
      }

      if (resolved.prune_rows > 0) {
        // The same table of N attempts, alternating a day old (left alone) and
        // older than history.retention (pruned while the steps are measured),
        // history on: the difference is the pruning's, not the table's size
        // nor the seeding's aftermath (the server writing it out, autovacuum).
        PruneComparison prune;
        prune.rows = resolved.prune_rows;
        DaemonPlan on = plan;
        on.history = true;
        for (int i = 0; i < pairs; ++i) {
          for (const bool backlog : {false, true}) {
            DaemonRunSpec once = spec;
            once.latency_samples = 0;
            once.old_attempts = resolved.prune_rows;
            once.attempts_due = backlog;
            once.label = spec.label + fmt::format(", {} attempts {}", resolved.prune_rows,
                                                  backlog ? "pruned meanwhile" : "within retention");
            say(fmt::format("{} (pair {} of {})...", once.label, i + 1, pairs));
            DaemonRunResult result = run_daemon(on, once);
            say(backlog ? fmt::format("  {:.0f} steps/s, {} attempts pruned in {:.1f} s", result.steps_per_second(),
                                      result.attempts_pruned, result.prune_seconds)
                        : fmt::format("  {:.0f} steps/s", result.steps_per_second()));
            (backlog ? prune.backlog : prune.plain).push_back(std::move(result));
          }
        }
        report.prune = std::move(prune);
      }

      if (resolved.rss_workers > 0 && !(resolved.workers == resolved.rss_workers && resolved.processes == 1)) {
        DaemonRunSpec rss = spec;
        rss.workers = resolved.rss_workers;
        rss.processes = 1;
        rss.latency_samples = 0;
        rss.label = fmt::format("daemon, 1 process x {} workers", rss.workers);
        say(rss.label + "...");
        report.daemon_rss = median_of<DaemonRunResult>(resolved.repeat, [&](int) { return run_daemon(plan, rss); });
        say(fmt::format("  {:.0f} steps/s", report.daemon_rss->steps_per_second()));
      }

      for (long long size : sizes) {
        DaemonRunSpec sized = spec;
        sized.latency_samples = 0;
        sized.filler_rows = size;
        sized.label = fmt::format("daemon, {}x{}, {} rows in table", spec.processes, spec.workers, size);
        say(sized.label + "...");
        report.table_sizes.push_back(
            median_of<DaemonRunResult>(resolved.repeat, [&](int) { return run_daemon(plan, sized); }));
        say(fmt::format("  {:.0f} steps/s", report.table_sizes.back().steps_per_second()));
      }

      for (long long ms : durations) {
        DaemonRunSpec timed = spec;
        timed.latency_samples = 0;
        timed.mix.job_ms = static_cast<int>(ms);
        timed.label = fmt::format("daemon, {}x{}, {}", spec.processes, spec.workers, timed.mix.describe());
        say(timed.label + "...");
        report.job_durations.push_back(
            median_of<DaemonRunResult>(resolved.repeat, [&](int) { return run_daemon(plan, timed); }));
        say(fmt::format("  {:.0f} steps/s", report.job_durations.back().steps_per_second()));
      }
      if (mixed) {
        DaemonRunSpec mix = spec;
        mix.latency_samples = 0;
        mix.mix = *mixed;
        mix.label = fmt::format("daemon, {}x{}, {}", spec.processes, spec.workers, mix.mix.describe());
        say(mix.label + "...");
        report.mixed = median_of<DaemonRunResult>(resolved.repeat, [&](int) { return run_daemon(plan, mix); });
        say(fmt::format("  {:.0f} steps/s", report.mixed->steps_per_second()));
      }
    }

    if (resolved.api || resolved.api_only) {
      ApiSpec api;
      api.seconds = resolved.api_seconds;
      api.clients = resolved.api_clients;
      api.rows = resolved.api_rows;
      api.samples = resolved.api_samples;
      api.warm_up = std::min(20, resolved.api_samples);
      say("api...");
      report.api = run_api(plan, api);
    }

    if (resolved.json) {
      print_table(std::cerr, report);  // people still read the run; scripts read stdout
      std::cout << to_json(report).dump(2) << "\n";
    } else {
      print_table(std::cout, report);
    }
    if (report.max_gap) {
      // No fault is injected: a recovered program, or one that stood still
      // between two steps for longer than the bound, is a stall (issue 17).
      std::vector<std::string> stalls;
      for (const DaemonRunResult* run : daemon_runs(report)) {
        if (run->recovered > 0 || run->longest_gap_seconds > *report.max_gap) {
          stalls.push_back(fmt::format("{}: {} program.recovered, longest gap {:.3f} s", run->label,
                                       run->recovered, run->longest_gap_seconds));
        }
      }
      for (const auto& stall : stalls) std::cerr << "pe-bench: STALL: " << stall << "\n";
      if (!stalls.empty()) {
        work.keep();
        return 1;
      }
    }
    return 0;
  } catch (const std::exception& e) {
    work.keep();
    std::cerr << "pe-bench: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace
}  // namespace program_executor::bench

int main(int argc, char** argv) {
  using program_executor::bench::Options;
  Options options;
  options.amqp_url = program_executor::bench::env_or("PE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/");
  CLI::App app{"pe-bench: the daemon's steps/s, latency, CPU and memory beside the floor the broker and the\n"
               "database allow, on one backend (docs/performance.md)."};
  app.add_option("--backend", options.backend, "Database backend")
      ->check(CLI::IsMember({"sqlite3", "postgresql", "mysql"}))
      ->capture_default_str();
  app.add_option("--connection", options.connection,
                 "SOCI connection string (default: a temporary SQLite file; for postgresql and mysql "
                 "PE_TEST_POSTGRESQL_CONNECTION / PE_TEST_MYSQL_CONNECTION)");
  app.add_option("--amqp-url", options.amqp_url, "Broker (default: PE_TEST_AMQP_URL or the local guest)")
      ->capture_default_str();
  app.add_option("--cluster", options.cluster,
                 "tests/cluster/rabbitmq-cluster of a running cluster: the daemons get its nodes "
                 "(amqp.urls) and quorum queues; the bench's own connections use the first node");
  app.add_option("--daemon", options.daemon, "program-executor binary")->capture_default_str();
  app.add_option("--plugins", options.plugins, "Plugin directory holding demo.so")->capture_default_str();
  app.add_option("--workers", options.workers, "Worker threads per daemon process, and floor threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--processes", options.processes, "Daemon processes")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--prefetch", options.prefetch,
                 "amqp.prefetch of the daemon and of the unpipelined floor (default: the daemon's, 64; the floor 1)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--history", options.history,
                 "history.enabled of the daemons: on (the attempt history written with each step), off, or both: "
                 "the cost of the history, measured as pairs of daemon runs alternating off and on (--repeat "
                 "pairs, default 3), with a table of both modes and the cost in %")
      ->check(CLI::IsMember({"on", "off", "both"}))
      ->capture_default_str();
  app.add_option("--programs", options.programs, "Programs per throughput run")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--jobs", options.jobs, "Jobs per program (demo.noop; demo.sleep in the --job-ms and --mixed runs)")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--latency-samples", options.latency_samples,
                 "1-job programs created one at a time on the idle daemon (0: none)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--table-rows", options.table_rows,
                 "Comma separated table sizes, e.g. 100000,1000000: one more daemon run per size, on a table "
                 "prefilled with that many finished rows");
  app.add_option("--job-ms", options.job_ms,
                 "Comma separated job durations in ms, e.g. 1,5,20,200: one more daemon run per duration, "
                 "programs of --jobs demo.sleep jobs of that duration");
  app.add_option("--mixed", options.mixed,
                 "EVERY:MS, e.g. 8:30: one more daemon run where every EVERY-th program's demo.sleep jobs "
                 "sleep MS ms and the others' 0 ms (issue 17's jobs either side of the 5 ms line)");
  app.add_option("--max-gap", options.max_gap,
                 "Fail (exit 1) when a daemon run logged program.recovered or a program stood still longer "
                 "than this many seconds between two steps (0: report only)")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--prune-rows", options.prune_rows,
                 "Pruning under load: pairs of daemon runs (history on), each on N attempts seeded in "
                 "<table>_attempts, alternating a day old (left alone) and older than history.retention (the "
                 "daemons prune them while the steps are measured) (--repeat pairs, default 3), e.g. 1000000")
      ->check(CLI::Range(0LL, 100000000LL));
  app.add_option("--rss-workers", options.rss_workers,
                 "Workers of the extra 1-process run for the RSS target (0: skip)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_flag("--skip-floor", options.skip_floor, "Do not measure the floor");
  app.add_flag("--json", options.json, "Print the results as JSON on stdout (the table goes to stderr)");
  app.add_option("--log-level", options.log_level,
                 "The daemon's log.level; above info the gaps between steps are not measured (no job events)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--timeout", options.timeout_seconds, "Seconds one run may take")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--repeat", options.repeat,
                 "Runs of each throughput measurement; the median is reported, with the spread")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_flag("--api", options.api,
               "Measure the HTTP API too: program-executor serve's creates/s (POST /api/v1/programs) and "
               "GET /api/v1/programs latency on a table of --api-rows rows");
  app.add_flag("--api-only", options.api_only, "Measure the HTTP API alone (no floor, no daemon run)");
  app.add_option("--api-seconds", options.api_seconds, "Seconds of creating programs through the API")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  app.add_option("--api-clients", options.api_clients,
                 "Clients creating at once, one keep-alive connection each (serve's web.threads is at least this; "
                 "the creates/s target is stated at the default)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--api-rows", options.api_rows,
                 "Programs in the table the listing is timed on (97 % finished, 2 % errored, 0.5 % cancelled, "
                 "0.5 % running; 0: no listing)")
      ->check(CLI::Range(0LL, 100000000LL))
      ->capture_default_str();
  app.add_option("--api-samples", options.api_samples,
                 "Timed requests per listing query, after min(20, this) untimed ones")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--work-dir", options.work_dir,
                 "Directory for the daemon configs and logs (default: a temporary one, removed unless a run fails)");
  CLI11_PARSE(app, argc, argv);
  options.repeat_given = app.count("--repeat") > 0;
  return program_executor::bench::run(options);
}
