#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include <fmt/format.h>

namespace program_executor::bench {
namespace {

struct Target {
  std::string name;
  double value = 0;
  std::string unit;
  std::string goal;
  bool met = false;
};

const DaemonRunResult* rss_run(const BenchReport& report) {
  if (report.daemon_rss) return &*report.daemon_rss;
  if (report.daemon && report.daemon->workers == 4 && report.daemon->processes == 1) return &*report.daemon;
  return nullptr;
}

// Issue 6's targets for what this run measured. They are stated for
// PostgreSQL (SQLite: throughput only), 2 workers, programs of 5 jobs.
std::vector<Target> targets(const BenchReport& report) {
  std::vector<Target> found;
  if (!report.daemon) return found;
  const DaemonRunResult& daemon = *report.daemon;
  if (report.backend == "postgresql") {
    if (report.floor_pipelined) {
      const double ratio = 100.0 * daemon.steps_per_second() / report.floor_pipelined->result.steps_per_second();
      found.push_back({"daemon / pipelined floor", ratio, "%", ">= 70 %", ratio >= 70});
    }
    found.push_back({"daemon steps/s", daemon.steps_per_second(), "steps/s", ">= 6000", daemon.steps_per_second() >= 6000});
    if (!daemon.latency_ms.empty()) {
      const double p50 = percentile(daemon.latency_ms, 50);
      const double p99 = percentile(daemon.latency_ms, 99);
      found.push_back({"1-job latency p50", p50, "ms", "<= 2 ms", p50 <= 2});
      found.push_back({"1-job latency p99", p99, "ms", "<= 5 ms", p99 <= 5});
    }
    if (const DaemonRunResult* rss = rss_run(report)) {
      const double mb = static_cast<double>(rss->peak_rss_kb) / 1024.0;
      found.push_back({"peak RSS, 4 workers", mb, "MB", "<= 25 MB", mb <= 25});
    }
    if (report.table_sizes.size() >= 2) {
      const double small = report.table_sizes.front().steps_per_second();
      const double large = report.table_sizes.back().steps_per_second();
      const double change = small > 0 ? 100.0 * (large - small) / small : 0;
      found.push_back({fmt::format("steps/s at {} rows vs {} rows", report.table_sizes.back().filler_rows,
                                   report.table_sizes.front().filler_rows),
                       change, "%", "within 15 %", std::abs(change) <= 15});
    }
  } else if (report.backend == "sqlite3") {
    found.push_back({"daemon steps/s", daemon.steps_per_second(), "steps/s", ">= 5000", daemon.steps_per_second() >= 5000});
  }
  return found;
}

// The API's targets: stated for PostgreSQL on 2 cores, the listing on a
// table of 1,000,000 rows (so a smaller run checks only the creates).
constexpr long long api_target_rows = 1000000;

std::vector<Target> api_targets(const BenchReport& report) {
  std::vector<Target> found;
  if (!report.api || report.backend != "postgresql") return found;
  const ApiRunResult& api = *report.api;
  found.push_back({fmt::format("API creates/s, {} clients", api.clients), api.creates_per_second(), "creates/s",
                   ">= 1500", api.creates_per_second() >= 1500});
  if (api.rows >= api_target_rows) {
    for (const auto& query : api.queries) {
      const double p99 = percentile(query.ms, 99);
      found.push_back({"GET list p99, " + query.label, p99, "ms", "<= 20 ms", p99 <= 20});
    }
  }
  return found;
}

std::string spread(const std::vector<double>& repeats) {
  if (repeats.size() < 2) return "";
  const auto [low, high] = std::minmax_element(repeats.begin(), repeats.end());
  return fmt::format("{:.0f}-{:.0f}", *low, *high);
}

std::string load_text(double before, double after) { return fmt::format("{:.2f}-{:.2f}", before, after); }

std::string mb(long long kb) { return kb > 0 ? fmt::format("{:.1f} MB", static_cast<double>(kb) / 1024.0) : ""; }

std::string gap_text(const DaemonRunResult& run) {
  if (!run.gaps_logged) return "not logged";
  if (run.gaps_measured == 0) return "none";
  return fmt::format("{:.3f} s", run.longest_gap_seconds);
}

nlohmann::json daemon_json(const BenchReport& report, const DaemonRunResult& run) {
  const double bound = steps_bound(report, run);
  nlohmann::json json = {{"label", run.label},
                         {"jobs_run", run.mix.describe()},
                         {"job_ms_mean", run.mix.mean_ms()},
                         {"steps_bound", bound},
                         {"ratio_to_bound", bound > 0 ? nlohmann::json(run.steps_per_second() / bound) : nlohmann::json()},
                         {"recovered_events", run.recovered},
                         {"workers", run.workers},
                         {"processes", run.processes},
                         {"filler_rows", run.filler_rows},
                         {"programs", run.programs},
                         {"steps", run.steps},
                         {"seconds", run.seconds},
                         {"steps_per_second", run.steps_per_second()},
                         {"programs_per_second", run.programs_per_second()},
                         {"cpu_seconds", run.cpu_seconds},
                         {"cpu_us_per_step", run.cpu_us_per_step()},
                         {"peak_rss_kb", run.peak_rss_kb},
                         {"startup_seconds", run.startup_seconds},
                         {"load_average", {run.load_before, run.load_after}},
                         {"repeats_steps_per_second", run.repeats}};
  if (run.gaps_logged) {
    json["gaps"] = {{"measured", run.gaps_measured},
                    {"longest_seconds", run.longest_gap_seconds},
                    {"longest_run_id", run.longest_gap_run_id},
                    {"longest_step", run.longest_gap_step}};
  } else {
    json["gaps"] = nullptr;  // the log level hid the job events
  }
  if (!run.latency_ms.empty()) {
    json["latency"] = {{"samples", run.latency_ms.size()},
                       {"p50_ms", percentile(run.latency_ms, 50)},
                       {"p99_ms", percentile(run.latency_ms, 99)},
                       {"max_ms", percentile(run.latency_ms, 100)},
                       {"with_insert_p50_ms", percentile(run.create_latency_ms, 50)},
                       {"with_insert_p99_ms", percentile(run.create_latency_ms, 99)}};
  }
  return json;
}

nlohmann::json floor_json(const FloorRun& run) {
  return {{"threads", run.threads},
          {"prefetch", run.prefetch},
          {"batch", run.batch},
          {"steps", run.result.steps},
          {"seconds", run.result.seconds},
          {"steps_per_second", run.result.steps_per_second()},
          {"load_average", {run.load_before, run.load_after}},
          {"repeats_steps_per_second", run.repeats}};
}

nlohmann::json api_json(const ApiRunResult& api) {
  nlohmann::json queries = nlohmann::json::array();
  for (const auto& query : api.queries) {
    queries.push_back({{"label", query.label},
                       {"target", query.target},
                       {"samples", query.ms.size()},
                       {"p50_ms", percentile(query.ms, 50)},
                       {"p99_ms", percentile(query.ms, 99)},
                       {"max_ms", percentile(query.ms, 100)},
                       {"programs_returned", query.programs}});
  }
  return {{"clients", api.clients},
          {"web_threads", api.web_threads},
          {"create",
           {{"seconds", api.create_seconds},
            {"created", api.created},
            {"creates_per_second", api.creates_per_second()},
            {"p50_ms", percentile(api.create_ms, 50)},
            {"p99_ms", percentile(api.create_ms, 99)},
            {"max_ms", percentile(api.create_ms, 100)},
            {"serve_cpu_us_per_create", api.cpu_us_per_create()},
            {"rows_in_table", api.rows_before_create},
            {"load_average", {api.create_load_before, api.create_load_after}}}},
          {"list",
           {{"rows", api.rows},
            {"fill_seconds", api.fill_seconds},
            {"queries", queries},
            {"load_average", {api.list_load_before, api.list_load_after}}}},
          {"stats", {{"cold_ms", api.stats_cold_ms}, {"cached_ms", api.stats_warm_ms}}},
          {"serve_peak_rss_kb", api.peak_rss_kb}};
}

void print_api(std::ostream& out, const BenchReport& report) {
  const ApiRunResult& api = *report.api;
  out << fmt::format("\nHTTP API: program-executor serve, web.threads {}, no daemon consuming (the messages pile up)\n",
                     api.web_threads)
      << fmt::format("  POST /api/v1/programs {{\"jobs\":[\"demo.noop\"]}}, {} keep-alive clients for {:.1f} s, "
                     "on a table of {} rows:\n",
                     api.clients, api.create_seconds, api.rows_before_create)
      << fmt::format("    {:.0f} programs/s ({} created, every answer 201), latency p50 {:.2f} ms, p99 {:.2f} ms, "
                     "max {:.2f} ms;\n",
                     api.creates_per_second(), api.created, percentile(api.create_ms, 50),
                     percentile(api.create_ms, 99), percentile(api.create_ms, 100))
      << fmt::format("    serve CPU {:.0f} us per create, serve peak RSS {}, load 1m {}\n", api.cpu_us_per_create(),
                     mb(api.peak_rss_kb), load_text(api.create_load_before, api.create_load_after));
  if (!api.queries.empty()) {
    out << fmt::format("  GET /api/v1/programs?limit=50 on {} rows (filled in {:.1f} s), one keep-alive client,\n"
                       "  each query timed {} times after {} untimed (fewer when one takes over {:.0f} s), "
                       "load 1m {}:\n",
                       api.rows, api.fill_seconds, api.samples, api.warm_up, api.query_budget_seconds,
                       load_text(api.list_load_before, api.list_load_after))
        << fmt::format("    {:<32} {:>7} {:>9} {:>9} {:>9} {:>9}\n", "query", "samples", "p50 ms", "p99 ms", "max ms",
                       "programs");
    for (const auto& query : api.queries) {
      out << fmt::format("    {:<32} {:>7} {:>9.2f} {:>9.2f} {:>9.2f} {:>9}\n", query.label, query.ms.size(),
                         percentile(query.ms, 50), percentile(query.ms, 99), percentile(query.ms, 100),
                         query.programs);
    }
    out << fmt::format("  GET /api/v1/stats: {:.1f} ms cold (it counts every row), {:.2f} ms from its 2 s cache\n",
                       api.stats_cold_ms, api.stats_warm_ms);
  }
  const auto checked = api_targets(report);
  if (!checked.empty()) {
    out << "\ntargets of the API (PostgreSQL, 2 cores; the listing on 1,000,000 rows):\n";
    for (const auto& t : checked) {
      out << fmt::format("  {:<40} {:>10.1f} {:<9} goal {:<12} {}\n", t.name, t.value, t.unit, t.goal,
                         t.met ? "met" : "NOT MET");
    }
  }
}


std::vector<double> rates_of(const std::vector<DaemonRunResult>& runs) {
  std::vector<double> rates;
  for (const auto& run : runs) rates.push_back(run.steps_per_second());
  return rates;
}

std::vector<double> cpu_of(const std::vector<DaemonRunResult>& runs) {
  std::vector<double> cpu;
  for (const auto& run : runs) cpu.push_back(run.cpu_us_per_step());
  return cpu;
}

std::vector<double> latency_of(const std::vector<DaemonRunResult>& runs) {
  std::vector<double> pooled;
  for (const auto& run : runs) pooled.insert(pooled.end(), run.latency_ms.begin(), run.latency_ms.end());
  return pooled;
}

// The median of each pair's `second` / `first` steps/s (pairs ran back to
// back, so load that drifts over the invocation cancels out of each ratio).
double median_pair_ratio(const std::vector<DaemonRunResult>& first, const std::vector<DaemonRunResult>& second) {
  std::vector<double> ratios;
  for (std::size_t i = 0; i < std::min(first.size(), second.size()); ++i) {
    if (first[i].steps_per_second() > 0) ratios.push_back(second[i].steps_per_second() / first[i].steps_per_second());
  }
  return median(ratios);
}

// How much lower `value` is than `base`, in % of base (positive: a cost).
double cost_percent(double base, double value) { return base > 0 ? 100.0 * (base - value) / base : 0; }

// Issue 13's targets for the comparisons this run made: history on costs
// <= 10 % of steps/s (PostgreSQL and SQLite) with p50 latency <= 2 ms, and
// pruning a backlog keeps >= 90 % of the steps/s. Judged on the median of the
// pairs' own ratios: each pair ran back to back, so load that drifts over the
// invocation (a shared machine) cancels out, as it does not between medians.
std::vector<Target> history_targets(const BenchReport& report) {
  std::vector<Target> found;
  if (const auto& cost = report.history_cost) {
    const double percent = 100.0 * (1.0 - median_pair_ratio(cost->off, cost->on));
    found.push_back({"history on: steps/s cost vs off (pairs)", percent, "%", "<= 10 %", percent <= 10});
    if (const auto latency = latency_of(cost->on); !latency.empty()) {
      const double p50 = percentile(latency, 50);
      found.push_back({"history on: 1-job latency p50", p50, "ms", "<= 2 ms", p50 <= 2});
    }
  }
  if (const auto& prune = report.prune) {
    const double ratio = 100.0 * median_pair_ratio(prune->plain, prune->backlog);
    found.push_back({"steps/s while pruning vs kept (pairs)", ratio, "%", ">= 90 %", ratio >= 90});
  }
  return found;
}

std::string latency_cell(const std::vector<double>& samples, double percent) {
  return samples.empty() ? "-" : fmt::format("{:.2f}", percentile(samples, percent));
}

void print_history_cost(std::ostream& out, const HistoryComparison& cost) {
  out << fmt::format("\nattempt history off vs on: {} pair(s) of daemon runs, alternating off, on (same programs and "
                     "options),\nso load on a shared machine falls on both modes; latency: 1-job programs on the "
                     "idle daemon after each run\n",
                     cost.on.size())
      << fmt::format("  {:<6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7} {:>11}\n", "mode", "pair", "steps/s", "CPU/step",
                     "p50 ms", "p99 ms", "seconds", "load 1m");
  const auto line = [&out](const DaemonRunResult& run, const std::string& mode, std::size_t pair) {
    out << fmt::format("  {:<6} {:>6} {:>9.0f} {:>6.0f} us {:>9} {:>9} {:>7.2f} {:>11}\n", mode, pair + 1,
                       run.steps_per_second(), run.cpu_us_per_step(), latency_cell(run.latency_ms, 50),
                       latency_cell(run.latency_ms, 99), run.seconds, load_text(run.load_before, run.load_after));
  };
  for (std::size_t i = 0; i < cost.on.size(); ++i) {
    line(cost.off[i], "off", i);
    line(cost.on[i], "on", i);
  }
  const auto summary = [&out](const std::vector<DaemonRunResult>& runs, const std::string& mode) {
    const auto latency = latency_of(runs);
    out << fmt::format("  {:<6} {:>6} {:>9.0f} {:>6.0f} us {:>9} {:>9}\n", mode, "median", median(rates_of(runs)),
                       median(cpu_of(runs)), latency_cell(latency, 50), latency_cell(latency, 99));
  };
  summary(cost.off, "off");
  summary(cost.on, "on");
  const double off = median(rates_of(cost.off)), on = median(rates_of(cost.on));
  const double cpu_off = median(cpu_of(cost.off)), cpu_on = median(cpu_of(cost.on));
  out << fmt::format("  cost of history on: {:.1f} % fewer steps/s (median on {:.0f} vs median off {:.0f}), "
                     "CPU/step {:+.1f} %;\n  median of the pairs' own costs {:.1f} %\n",
                     cost_percent(off, on), on, off, cpu_off > 0 ? 100.0 * (cpu_on - cpu_off) / cpu_off : 0.0,
                     100.0 * (1.0 - median_pair_ratio(cost.off, cost.on)));
  out << "  (medians: of the runs' steps/s and CPU/step; p50/p99: of every sample of the mode, pooled)\n";
}

void print_prune(std::ostream& out, const PruneComparison& prune) {
  out << fmt::format("\npruning under load: {} pair(s) of daemon runs (history on), each on {} attempts seeded in "
                     "<table>_attempts,\nalternating a day old (kept) and older than history.retention ({} days; "
                     "pruned while the steps are measured)\n",
                     prune.plain.size(), prune.rows, history_retention_days)
      << fmt::format("  {:<12} {:>6} {:>9} {:>9} {:>9} {:>10} {:>12} {:>8} {:>11}\n", "attempts", "pair", "steps/s",
                     "CPU/step", "seconds", "pruned", "pruned/s", "seed s", "load 1m");
  for (std::size_t i = 0; i < prune.plain.size(); ++i) {
    for (const DaemonRunResult* run : {&prune.plain[i], &prune.backlog[i]}) {
      const bool backlog = run->attempts_due;
      out << fmt::format("  {:<12} {:>6} {:>9.0f} {:>6.0f} us {:>9.2f} {:>10} {:>12} {:>8.1f} {:>11}\n",
                         backlog ? "pruned" : "kept", i + 1, run->steps_per_second(), run->cpu_us_per_step(), run->seconds,
                         backlog ? std::to_string(run->attempts_pruned) : "-",
                         backlog ? fmt::format("{:.0f}", run->prune_rows_per_second()) : "-", run->seed_seconds,
                         load_text(run->load_before, run->load_after));
    }
  }
  const double plain = median(rates_of(prune.plain)), backlog = median(rates_of(prune.backlog));
  std::vector<double> prune_rates;
  for (const auto& run : prune.backlog) prune_rates.push_back(run.prune_rows_per_second());
  const double rate = median(prune_rates);
  const double cpu_plain = median(cpu_of(prune.plain)), cpu_backlog = median(cpu_of(prune.backlog));
  out << fmt::format("  steps/s while pruning: {:.0f} vs {:.0f} kept: {:.1f} % (medians); median of the pairs' "
                     "own ratios {:.1f} %;\n  CPU/step {:+.1f} % (the daemons' pruning included)\n",
                     backlog, plain, plain > 0 ? 100.0 * backlog / plain : 0.0,
                     100.0 * median_pair_ratio(prune.plain, prune.backlog),
                     cpu_plain > 0 ? 100.0 * (cpu_backlog - cpu_plain) / cpu_plain : 0.0)
      << fmt::format("  prune rate: {:.0f} attempts/s (median; pruned from the daemons' spawn to the run's end):\n"
                     "  {} attempts drain in about {:.0f} s at that rate\n",
                     rate, prune.rows, rate > 0 ? static_cast<double>(prune.rows) / rate : 0.0);
}

nlohmann::json modes_json(const std::vector<DaemonRunResult>& runs) {
  const auto latency = latency_of(runs);
  nlohmann::json json = {{"steps_per_second", median(rates_of(runs))},
                         {"cpu_us_per_step", median(cpu_of(runs))},
                         {"repeats_steps_per_second", rates_of(runs)}};
  if (!latency.empty()) {
    json["latency"] = {{"samples", latency.size()},
                       {"p50_ms", percentile(latency, 50)},
                       {"p99_ms", percentile(latency, 99)}};
  }
  return json;
}

nlohmann::json run_row_json(const DaemonRunResult& run, std::size_t pair) {
  nlohmann::json json = {{"pair", pair + 1},
                         {"steps_per_second", run.steps_per_second()},
                         {"cpu_us_per_step", run.cpu_us_per_step()},
                         {"seconds", run.seconds},
                         {"load_average", {run.load_before, run.load_after}}};
  if (!run.latency_ms.empty()) {
    json["latency"] = {{"p50_ms", percentile(run.latency_ms, 50)}, {"p99_ms", percentile(run.latency_ms, 99)}};
  }
  if (run.old_attempts > 0) {
    json["seeded_attempts"] = run.old_attempts;
    json["attempts_due"] = run.attempts_due;
    json["seed_seconds"] = run.seed_seconds;
    json["attempts_pruned"] = run.attempts_pruned;
    json["prune_seconds"] = run.prune_seconds;
    json["prune_rows_per_second"] = run.prune_rows_per_second();
  }
  return json;
}

nlohmann::json history_cost_json(const HistoryComparison& cost) {
  nlohmann::json runs = nlohmann::json::array();
  for (std::size_t i = 0; i < cost.on.size(); ++i) {
    auto off = run_row_json(cost.off[i], i);
    off["mode"] = "off";
    runs.push_back(off);
    auto on = run_row_json(cost.on[i], i);
    on["mode"] = "on";
    runs.push_back(on);
  }
  const double off = median(rates_of(cost.off)), on = median(rates_of(cost.on));
  return {{"pairs", cost.on.size()},
          {"order", "off, on alternating"},
          {"runs", runs},
          {"off", modes_json(cost.off)},
          {"on", modes_json(cost.on)},
          {"cost_percent", cost_percent(off, on)},
          {"pair_cost_percent_median", 100.0 * (1.0 - median_pair_ratio(cost.off, cost.on))}};
}

nlohmann::json prune_json(const PruneComparison& prune) {
  nlohmann::json runs = nlohmann::json::array();
  for (std::size_t i = 0; i < prune.plain.size(); ++i) {
    runs.push_back(run_row_json(prune.plain[i], i));
    runs.push_back(run_row_json(prune.backlog[i], i));
  }
  const double plain = median(rates_of(prune.plain)), backlog = median(rates_of(prune.backlog));
  std::vector<double> prune_rates;
  long long pruned = 0;
  for (const auto& run : prune.backlog) {
    prune_rates.push_back(run.prune_rows_per_second());
    pruned += run.attempts_pruned;
  }
  return {{"old_attempts", prune.rows},
          {"retention_days", history_retention_days},
          {"pairs", prune.plain.size()},
          {"runs", runs},
          {"steps_per_second_kept", plain},
          {"steps_per_second_while_pruning", backlog},
          {"ratio", plain > 0 ? nlohmann::json(backlog / plain) : nlohmann::json()},
          {"pair_ratio_median", median_pair_ratio(prune.plain, prune.backlog)},
          {"attempts_pruned_total", pruned},
          {"prune_rows_per_second", median(prune_rates)}};
}

}  // namespace

DaemonRunResult median_run(const std::vector<DaemonRunResult>& runs) {
  std::vector<DaemonRunResult> sorted = runs;
  std::sort(sorted.begin(), sorted.end(), [](const DaemonRunResult& a, const DaemonRunResult& b) {
    return a.steps_per_second() < b.steps_per_second();
  });
  DaemonRunResult middle = sorted[sorted.size() / 2];
  middle.repeats = rates_of(runs);
  middle.latency_ms = latency_of(runs);
  middle.create_latency_ms.clear();
  for (const auto& run : runs) {
    middle.create_latency_ms.insert(middle.create_latency_ms.end(), run.create_latency_ms.begin(),
                                    run.create_latency_ms.end());
  }
  return middle;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t half = values.size() / 2;
  return values.size() % 2 == 1 ? values[half] : (values[half - 1] + values[half]) / 2;
}

double steps_bound(const BenchReport& report, const DaemonRunResult& run) {
  double bound = report.floor_pipelined ? report.floor_pipelined->result.steps_per_second() : 0;
  const double mean_ms = run.mix.mean_ms();
  if (mean_ms > 0) {
    const double workers = 1000.0 * run.workers * run.processes / mean_ms;
    bound = bound > 0 ? std::min(bound, workers) : workers;
  }
  return bound;
}

double percentile(std::vector<double> values, double percent) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(percent / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

void print_table(std::ostream& out, const BenchReport& report) {
  out << fmt::format("pe-bench: backend {}, broker {}\n", report.backend, report.broker);
  if (report.api_only) {
    out << fmt::format("  load average (1 min) at start {:.2f}, {} cores\n", report.load_at_start,
                       std::thread::hardware_concurrency());
    print_api(out, report);
    return;
  }
  out << fmt::format("  {} programs x {} jobs (demo.noop, unless a run names its demo.sleep), queued before each "
                     "daemon starts,\n  durable queue, persistent messages, daemon log level {}, prefetch {}\n",
                     report.programs, report.jobs, report.log_level,
                     report.prefetch ? std::to_string(*report.prefetch) : "default (64)")
      << fmt::format("  load average (1 min) at start {:.2f}, {} cores{}\n\n", report.load_at_start,
                     std::thread::hardware_concurrency(),
                     report.repeat > 1 ? fmt::format("; each throughput figure the median of {} runs", report.repeat)
                                       : "");

  const bool repeated = report.repeat > 1;
  const auto row = [&out, repeated](const std::string& what, const std::string& threads, double steps,
                                    const std::vector<double>& repeats, const std::string& programs,
                                    const std::string& ratio, const std::string& cpu, const std::string& rss,
                                    double seconds, const std::string& load, const std::string& recovered,
                                    const std::string& gap) {
    out << fmt::format("{:<46} {:>7} {:>9.0f}", what, threads, steps);
    if (repeated) out << fmt::format(" {:>13}", spread(repeats));
    out << fmt::format(" {:>10} {:>8} {:>9} {:>9} {:>7.2f} {:>11} {:>9} {:>10}\n", programs, ratio, cpu, rss, seconds,
                       load, recovered, gap);
  };
  out << fmt::format("{:<46} {:>7} {:>9}", "run", "threads", "steps/s");
  if (repeated) out << fmt::format(" {:>13}", "min-max");
  out << fmt::format(" {:>10} {:>8} {:>9} {:>9} {:>7} {:>11} {:>9} {:>10}\n", "programs/s", "vs floor", "CPU/step",
                     "peak RSS", "seconds", "load 1m", "recovered", "max gap");
  if (report.floor_unpipelined) {
    const FloorRun& f = *report.floor_unpipelined;
    row(fmt::format("floor, each message alone (prefetch {})", f.prefetch), std::to_string(f.threads),
        f.result.steps_per_second(), f.repeats, "", "", "", "", f.result.seconds, load_text(f.load_before, f.load_after),
        "", "");
  }
  if (report.floor_pipelined) {
    const FloorRun& f = *report.floor_pipelined;
    row(fmt::format("floor, pipelined (batches of <= {})", f.batch), std::to_string(f.threads),
        f.result.steps_per_second(), f.repeats, "", "", "", "", f.result.seconds, load_text(f.load_before, f.load_after),
        "", "");
  }
  const auto daemon_row = [&](const DaemonRunResult& run) {
    std::string ratio;
    if (const double bound = steps_bound(report, run); bound > 0) {
      ratio = fmt::format("{:.1f} %", 100.0 * run.steps_per_second() / bound);
    }
    row(run.label, fmt::format("{}x{}", run.processes, run.workers), run.steps_per_second(), run.repeats,
        fmt::format("{:.0f}", run.programs_per_second()), ratio, fmt::format("{:.0f} us", run.cpu_us_per_step()),
        mb(run.peak_rss_kb), run.seconds, load_text(run.load_before, run.load_after), std::to_string(run.recovered),
        gap_text(run));
  };
  if (report.daemon) daemon_row(*report.daemon);
  if (report.daemon_rss) daemon_row(*report.daemon_rss);
  for (const auto& run : report.table_sizes) daemon_row(run);
  for (const auto& run : report.job_durations) daemon_row(run);
  if (report.mixed) daemon_row(*report.mixed);
  out << "(threads: floor threads, or daemon processes x workers; vs floor: daemon / pipelined floor, and for\n"
         " demo.sleep runs / the lower of that floor and workers x 1000 / mean job ms; CPU/step: the daemon's\n"
         " utime+stime over the run / steps; peak RSS: highest VmHWM of one daemon process; recovered: program.recovered\n"
         " events in the daemons' logs; max gap: the longest a program stood still between two steps, job.finished\n"
         " of one step to job.started of the next, from the logs; every daemon run starts on a queued backlog)\n";
  if (report.max_gap) {
    out << fmt::format("stall bound (--max-gap): 0 program.recovered and no gap over {:.1f} s in every daemon run\n",
                       *report.max_gap);
  }
  const auto longest_of = [&out](const DaemonRunResult& run) {
    if (run.gaps_logged && run.gaps_measured > 0) {
      out << fmt::format("  longest gap, {}: {:.3f} s, {} between steps {} and {} (0-based)\n", run.label,
                         run.longest_gap_seconds, run.longest_gap_run_id, run.longest_gap_step - 1,
                         run.longest_gap_step);
    }
  };
  if (report.daemon) longest_of(*report.daemon);
  for (const auto& run : report.job_durations) longest_of(run);
  if (report.mixed) longest_of(*report.mixed);

  if (report.daemon && !report.daemon->latency_ms.empty()) {
    const DaemonRunResult& d = *report.daemon;
    out << fmt::format(
        "\n1-job program on the idle daemon, {} samples one at a time, first step published -> finished:\n"
        "  p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms   (from before the row's insert: p50 {:.2f} ms, p99 {:.2f} ms;\n"
        "  finished_at seen by polling the row every 0.1 ms)\n",
        d.latency_ms.size(), percentile(d.latency_ms, 50), percentile(d.latency_ms, 99), percentile(d.latency_ms, 100),
        percentile(d.create_latency_ms, 50), percentile(d.create_latency_ms, 99));
  }
  if (report.table_sizes.size() >= 2) {
    const double base = report.table_sizes.front().steps_per_second();
    out << "\nsteps/s by table size:";
    for (const auto& run : report.table_sizes) {
      out << fmt::format("  {} rows: {:.0f} ({:+.1f} %)", run.filler_rows, run.steps_per_second(),
                         base > 0 ? 100.0 * (run.steps_per_second() - base) / base : 0.0);
    }
    out << "\n";
  }
  if (report.history_cost) print_history_cost(out, *report.history_cost);
  if (report.prune) print_prune(out, *report.prune);
  const auto checked = targets(report);
  if (!checked.empty()) {
    out << "\ntargets of issue 6 (stated for 2 workers, 1 process, programs of 5 jobs):\n";
    for (const auto& t : checked) {
      out << fmt::format("  {:<40} {:>10.1f} {:<8} goal {:<12} {}\n", t.name, t.value, t.unit, t.goal,
                         t.met ? "met" : "NOT MET");
    }
  }
  if (const auto history = history_targets(report); !history.empty()) {
    out << "\ntargets of issue 13 (history cost stated for PostgreSQL and SQLite):\n";
    for (const auto& t : history) {
      out << fmt::format("  {:<40} {:>10.1f} {:<8} goal {:<12} {}\n", t.name, t.value, t.unit, t.goal,
                         t.met ? "met" : "NOT MET");
    }
  }
  if (report.api) print_api(out, report);
}

nlohmann::json to_json(const BenchReport& report) {
  nlohmann::json json = {{"backend", report.backend},
                         {"backlog", "every daemon run starts with all first steps queued"},
                         {"broker", report.broker},
                         {"programs", report.programs},
                         {"jobs", report.jobs},
                         {"workers", report.workers},
                         {"processes", report.processes},
                         {"prefetch", report.prefetch ? nlohmann::json(*report.prefetch) : nlohmann::json()},
                         {"log_level", report.log_level},
                         {"repeat", report.repeat},
                         {"load_average_at_start", report.load_at_start},
                         {"api_only", report.api_only}};
  if (report.floor_unpipelined) json["floor"]["unpipelined"] = floor_json(*report.floor_unpipelined);
  if (report.floor_pipelined) json["floor"]["pipelined"] = floor_json(*report.floor_pipelined);
  if (report.daemon) {
    json["daemon"] = daemon_json(report, *report.daemon);
    if (report.floor_pipelined && report.floor_pipelined->result.steps_per_second() > 0) {
      json["daemon"]["ratio_to_pipelined_floor"] =
          report.daemon->steps_per_second() / report.floor_pipelined->result.steps_per_second();
    }
  }
  if (report.daemon_rss) json["daemon_4_workers"] = daemon_json(report, *report.daemon_rss);
  json["table_sizes"] = nlohmann::json::array();
  for (const auto& run : report.table_sizes) json["table_sizes"].push_back(daemon_json(report, run));
  json["job_durations"] = nlohmann::json::array();
  for (const auto& run : report.job_durations) json["job_durations"].push_back(daemon_json(report, run));
  json["mixed"] = report.mixed ? daemon_json(report, *report.mixed) : nlohmann::json();
  json["max_gap_seconds"] = report.max_gap ? nlohmann::json(*report.max_gap) : nlohmann::json();
  json["targets"] = nlohmann::json::array();
  std::vector<Target> checked = targets(report);
  for (auto& t : api_targets(report)) checked.push_back(std::move(t));
  for (auto& t : history_targets(report)) checked.push_back(std::move(t));
  for (const auto& t : checked) {
    json["targets"].push_back({{"name", t.name}, {"value", t.value}, {"unit", t.unit}, {"goal", t.goal}, {"met", t.met}});
  }
  json["api"] = report.api ? api_json(*report.api) : nlohmann::json();
  json["history"] = report.history;
  json["history_cost"] = report.history_cost ? history_cost_json(*report.history_cost) : nlohmann::json();
  json["prune"] = report.prune ? prune_json(*report.prune) : nlohmann::json();
  return json;
}

}  // namespace program_executor::bench
