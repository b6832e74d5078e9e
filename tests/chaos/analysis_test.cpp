// The chaos harness's conclusions, checked on hand-made records: a harness
// that miscounts would pass broken protocols or fail correct ones.
#include <algorithm>

#include <catch2/catch.hpp>

#include "analysis.hpp"

using namespace program_executor::chaos;

namespace {

constexpr Nanos ms = 1'000'000;

ExecutionLine line(const char* kind, const char* run, int step, long long pid, Nanos t,
                   long long tid = 1) {
  ExecutionLine l;
  l.kind = kind;
  l.run_id = run;
  l.step = step;
  l.attempt = 1;
  l.pid = pid;
  l.t = t;
  l.tid = tid;
  return l;
}

Execution execution(const char* run, int step, long long pid, Nanos start, Nanos end,
                    long long tid = 1) {
  Execution e;
  e.run_id = run;
  e.step = step;
  e.pid = pid;
  e.tid = tid;
  e.start = start;
  e.end = end;
  e.completed = true;
  return e;
}

}  // namespace

TEST_CASE("log timestamps parse as UTC with their fraction") {
  CHECK(parse_iso_utc("1970-01-01T00:00:01.500Z") == 1'500'000'000);
  CHECK(parse_iso_utc("1970-01-01T00:00:00.000001Z") == 1'000);
  CHECK(parse_iso_utc("2026-01-02T03:04:05Z") == Nanos{1767323045} * 1'000'000'000);
  CHECK(parse_iso_utc("2026-01-02 03:04:05.250Z") == Nanos{1767323045} * 1'000'000'000 + 250 * ms);
  CHECK_FALSE(parse_iso_utc("2026-01-02T03:04:05"));
  CHECK_FALSE(parse_iso_utc("2026-01-02T03:04:05.Z"));
  CHECK_FALSE(parse_iso_utc("yesterday"));
  CHECK_FALSE(parse_iso_utc(""));
}

TEST_CASE("recorder lines parse, cut or foreign lines do not") {
  auto full = parse_execution_line("start r-1 2 3 4567 1700000000000000000 4570");
  REQUIRE(full);
  CHECK(full->kind == "start");
  CHECK(full->run_id == "r-1");
  CHECK(full->step == 2);
  CHECK(full->attempt == 3);
  CHECK(full->pid == 4567);
  CHECK(full->t == 1700000000000000000);
  CHECK(full->tid == 4570);
  auto no_tid = parse_execution_line("end r-1 2 3 4567 1700000000000000001");
  REQUIRE(no_tid);
  CHECK(no_tid->tid == 0);
  CHECK(parse_execution_line("kill r 0 1 9 10 11"));
  auto isolated = parse_execution_line("start r 0 1 9 10 11 8");  // with its parent's pid
  REQUIRE(isolated);
  CHECK(isolated->ppid == 8);
  CHECK_FALSE(parse_execution_line("start r 0 1 9 10 11 x"));
  CHECK_FALSE(parse_execution_line("start r-1 2 3 45"));  // cut by a crash
  CHECK_FALSE(parse_execution_line("begin r 0 1 9 10 11"));
  CHECK_FALSE(parse_execution_line("start r x 1 9 10 11"));
  CHECK_FALSE(parse_execution_line(""));
}

TEST_CASE(
    "executions pair starts with ends per thread and end at their process's death otherwise") {
  const std::vector<ExecutionLine> lines = {
      line("start", "a", 0, 100, 10 * ms, 1),
      line("start", "b", 0, 100, 11 * ms, 2),  // another thread of the same process
      line("end", "a", 0, 100, 30 * ms, 1),
      line("start", "c", 1, 200, 40 * ms),
      line("kill", "c", 1, 200, 41 * ms),      // the poison job
      line("start", "d", 0, 300, 50 * ms),     // still running when the harness looked
      line("end", "zzz", 0, 100, 60 * ms, 1),  // an end without a start is ignored
  };
  const std::map<long long, Nanos> deaths = {{100, 35 * ms}, {200, 42 * ms}};
  const auto executions = build_executions(lines, deaths, 99 * ms);
  REQUIRE(executions.size() == 4);
  const auto find = [&](const std::string& run) {
    for (const auto& e : executions) {
      if (e.run_id == run) return e;
    }
    FAIL("no execution of " << run);
    return Execution{};
  };
  CHECK(find("a").end == 30 * ms);
  CHECK(find("a").completed);
  CHECK_FALSE(find("a").killed);
  CHECK(find("b").end == 35 * ms);  // its process died at 35 ms
  CHECK(find("b").killed);
  CHECK_FALSE(find("b").completed);
  CHECK(find("c").end == 41 * ms);
  CHECK(find("c").killed);
  CHECK(find("d").end == 99 * ms);
}

TEST_CASE("a start on a thread that never ended its previous execution closes it") {
  // A recycled pid and tid: the first execution ended no later than the second began.
  const auto executions =
      build_executions({line("start", "a", 0, 100, 10 * ms), line("start", "a", 0, 100, 50 * ms),
                        line("end", "a", 0, 100, 60 * ms)},
                       {}, 99 * ms);
  REQUIRE(executions.size() == 2);
  CHECK(executions[0].end == 50 * ms);
  CHECK(executions[0].killed);
  CHECK(executions[1].end == 60 * ms);
}

TEST_CASE("overlaps are two workers in one step at one time") {
  SECTION("two processes at once") {
    const auto found = find_overlaps({execution("a", 0, 1, 10, 20), execution("a", 0, 2, 15, 25)});
    REQUIRE(found.size() == 1);
    CHECK(found[0].first.pid == 1);
    CHECK(found[0].second.pid == 2);
  }
  SECTION("two threads of one process at once") {
    CHECK(
        find_overlaps({execution("a", 0, 1, 10, 20, 7), execution("a", 0, 1, 15, 25, 8)}).size() ==
        1);
  }
  SECTION("a redelivery after the first worker died is not an overlap") {
    CHECK(find_overlaps({execution("a", 0, 1, 10, 20), execution("a", 0, 2, 20, 30)}).empty());
    CHECK(find_overlaps({execution("a", 0, 1, 10, 20), execution("a", 0, 2, 21, 30)}).empty());
  }
  SECTION("other steps or other programs at once are not overlaps") {
    CHECK(find_overlaps({execution("a", 0, 1, 10, 20), execution("a", 1, 2, 15, 25)}).empty());
    CHECK(find_overlaps({execution("a", 0, 1, 10, 20), execution("b", 0, 2, 15, 25)}).empty());
  }
  SECTION("one thread's consecutive executions are not overlaps") {
    CHECK(find_overlaps({execution("a", 0, 1, 10, 20), execution("a", 0, 1, 20, 30)}).empty());
  }
  SECTION("an execution inside a long one, and the one after both") {
    const auto found =
        find_overlaps({execution("a", 0, 1, 10, 100), execution("a", 0, 2, 20, 30),
                       execution("a", 0, 3, 40, 50), execution("a", 0, 4, 100, 110)});
    CHECK(found.size() == 2);
  }
  SECTION("an execution whose process died before it started is empty") {
    CHECK(find_overlaps({execution("a", 0, 1, 10, 20), execution("a", 0, 2, 15, 12)}).empty());
  }
}

TEST_CASE("daemon log lines parse into events, others are skipped") {
  auto committed = parse_log_line(
      R"({"ts":"1970-01-01T00:00:02.000Z","level":"info","event":"step.committed","run_id":"r","step":3})");
  REQUIRE(committed);
  CHECK(committed->event == "step.committed");
  CHECK(committed->t == 2'000'000'000);
  CHECK(committed->run_id == "r");
  CHECK(committed->step == 3);
  auto fired = parse_log_line(
      R"({"event":"crash_point.fired","point":"after_commit","pid":42,"t_ns":123456789})");
  REQUIRE(fired);
  CHECK(fired->t == 123456789);
  CHECK(fired->pid == 42);
  CHECK(fired->point == "after_commit");
  CHECK_FALSE(parse_log_line("2026-01-01 plain text line"));
  CHECK_FALSE(parse_log_line(R"({"level":"info"})"));
  CHECK_FALSE(parse_log_line(R"({"event":"cut)"));
}

TEST_CASE("steps reported more than once are double commits") {
  std::vector<LogEvent> events(5);
  events[0] = {"step.committed", 1, "a", 0, 0, "", ""};
  events[1] = {"step.committed", 2, "a", 1, 0, "", ""};
  events[2] = {"step.committed", 3, "a", 1, 0, "", ""};
  events[3] = {"job.finished", 4, "a", 2, 0, "", ""};
  events[4] = {"step.committed", 5, "b", 1, 0, "", ""};
  const auto counts = count_per_step(events, "step.committed");
  CHECK(counts.size() == 3);
  const auto twice = repeated(counts);
  REQUIRE(twice.size() == 1);
  CHECK(twice[0].first == StepKey{"a", 1});
  CHECK(twice[0].second == 2);
  CHECK(repeated(count_per_step(events, "job.finished")).empty());
}

TEST_CASE("first_after finds the next time strictly after") {
  const std::vector<Nanos> times = {10, 20, 30};
  CHECK(first_after(times, 5) == 10);
  CHECK(first_after(times, 10) == 20);
  CHECK(first_after(times, 29) == 30);
  CHECK_FALSE(first_after(times, 30));
  CHECK_FALSE(first_after({}, 0));
}

TEST_CASE("a dead daemon's in-flight programs are its threads' last runs that nobody moved on") {
  const std::vector<Execution> executions = {
      execution("a", 0, 1, 10, 20, 1),
      execution("a", 2, 1, 30, 90, 1),  // thread 1's last before the death at 50: in flight
      execution("b", 0, 1, 12, 40, 2),  // thread 2's last, but pid 2 started b's step 1 before 50
      execution("b", 1, 2, 45, 60, 1),
      execution("c", 0, 1, 15, 25, 3),  // thread 3's last, but c ended at 30
      execution("d", 0, 1, 60, 70, 4),  // started after the death (a recycled pid): ignored
      execution("e", 0, 9, 10, 20, 1),  // another process
  };
  const auto in_flight = in_flight_at_death(executions, 1, 50, {{"c", 30}});
  REQUIRE(in_flight.size() == 1);
  CHECK(in_flight[0] == StepKey{"a", 2});
  CHECK(in_flight_at_death(executions, 1, 5, {}).empty());
}

TEST_CASE("a run resumed at its next commit of that step or later, or at its end") {
  const std::map<std::string, std::vector<Progress>> progress = {
      {"a", {{10, 1}, {40, 1}, {60, 2}}},
      {"b", {{70, -1}}},
  };
  CHECK(resumed_after(progress, {"a", 1}, 20) == 40);
  CHECK(resumed_after(progress, {"a", 2}, 20) == 60);
  CHECK_FALSE(resumed_after(progress, {"a", 3}, 20));
  CHECK_FALSE(resumed_after(progress, {"a", 1}, 60));
  CHECK(resumed_after(progress, {"b", 4}, 20) == 70);
  CHECK_FALSE(resumed_after(progress, {"x", 0}, 0));
}

TEST_CASE("summaries give min, median and max") {
  const Summary odd = summarize({3.0, 1.0, 2.0});
  CHECK(odd.n == 3);
  CHECK(odd.min == 1.0);
  CHECK(odd.median == 2.0);
  CHECK(odd.max == 3.0);
  CHECK(summarize({4.0, 1.0, 2.0, 3.0}).median == 2.5);
  CHECK(summarize({}).n == 0);
  CHECK(format_summary(summarize({})) == "n=0");
  CHECK(format_summary(summarize({0.5})) == "n=1 min 0.500 s, median 0.500 s, max 0.500 s");
}

namespace {

LogEvent log_event(const char* name, const char* run, int step, Nanos t) {
  LogEvent e;
  e.event = name;
  e.run_id = run;
  e.step = step;
  e.t = t;
  return e;
}

}  // namespace

TEST_CASE("job.started and job.finished pair up into spans per run and step") {
  const std::vector<LogEvent> events = {
      log_event("job.started", "a", 0, 10 * ms), log_event("job.started", "b", 0, 11 * ms),
      log_event("job.finished", "a", 0, 15 * ms), log_event("step.committed", "a", 0, 16 * ms),
      log_event("job.started", "a", 1, 20 * ms),  // never finished: its worker died
      log_event("job.started", "a", 1, 90 * ms), log_event("job.finished", "a", 1, 95 * ms),
  };
  const auto spans = spans_from_events(events);
  REQUIRE(spans.size() == 4);
  CHECK(spans[0].run_id == "a");
  CHECK(spans[0].end == 15 * ms);
  CHECK_FALSE(spans[1].end);  // b's step 0 still running
  // A finish closes the earliest open start of its step.
  CHECK(spans[2].start == 20 * ms);
  CHECK(spans[2].end == 95 * ms);
  CHECK_FALSE(spans[3].end);
}

TEST_CASE("a gap runs from the end of a step to the start of the next step's run that returned") {
  const std::vector<StepSpan> spans = {
      {"a", 0, 0, 10 * ms},
      {"a", 1, 12 * ms, std::nullopt},  // cut by a death
      {"a", 1, 40 * ms, 45 * ms},
      {"a", 2, 45 * ms + 1, 50 * ms},
      {"b", 0, 0, 5 * ms},
      {"b", 1, 5005 * ms, 5010 * ms},  // stood still for 5 s
      {"c", 3, 0, 1 * ms},              // no step 2 on record: no gap
  };
  const auto gaps = step_gaps(spans);
  REQUIRE(gaps.size() == 3);
  const auto longest = longest_gap(gaps);
  REQUIRE(longest);
  CHECK(longest->run_id == "b");
  CHECK(longest->step == 1);
  CHECK(longest->seconds() == Approx(5.0));
  const auto a1 = std::find_if(gaps.begin(), gaps.end(),
                               [](const StepGap& g) { return g.run_id == "a" && g.step == 1; });
  REQUIRE(a1 != gaps.end());
  CHECK(a1->from == 10 * ms);
  CHECK(a1->to == 40 * ms);  // the run that returned, not the one cut short
  CHECK_FALSE(longest_gap({}));
}

TEST_CASE("a recovery counts as outside the faults when none acted since the program last moved") {
  const std::vector<StepSpan> spans = {
      {"a", 0, 100 * ms, 110 * ms},
      {"b", 0, 100 * ms, 110 * ms},
  };
  const std::vector<LogEvent> events = {
      log_event("program.recovered", "a", 1, 500 * ms),  // a death at 300 ms explains it
      log_event("program.recovered", "b", 1, 200 * ms),  // nothing happened since 110 ms
      log_event("program.recovered", "c", 0, 900 * ms),  // created at 800 ms: the restart ended before
      log_event("job.finished", "b", 1, 950 * ms),
  };
  const std::vector<FaultWindow> faults = {{300 * ms, 300 * ms}, {600 * ms, 700 * ms}};
  CHECK(fault_within(faults, 250 * ms, 350 * ms));
  CHECK(fault_within(faults, 650 * ms, 660 * ms));  // inside a restart
  CHECK_FALSE(fault_within(faults, 310 * ms, 590 * ms));
  const auto outside = recoveries_outside_faults(events, spans, {{"c", 800 * ms}}, faults);
  REQUIRE(outside.size() == 2);
  CHECK(outside[0].run_id == "b");
  CHECK(outside[1].run_id == "c");
  CHECK(recoveries_outside_faults(events, spans, {}, faults).size() == 1);  // c: since the epoch
}

TEST_CASE("an isolated step's process ends no later than the daemon that started it") {
  ExecutionLine isolated = line("start", "i", 0, 500, 10 * ms, 1);
  isolated.ppid = 100;  // run by daemon 100 in a process of its own, pid 500
  ExecutionLine in_daemon = line("start", "j", 0, 300, 10 * ms, 1);
  in_daemon.ppid = 1;   // the harness started daemon 300 itself
  const std::map<long long, Nanos> deaths = {{100, 35 * ms}};
  const auto executions = build_executions({isolated, in_daemon}, deaths, 99 * ms);
  REQUIRE(executions.size() == 2);
  CHECK(executions[0].run_id == "i");
  CHECK(executions[0].end == 35 * ms);  // PR_SET_PDEATHSIG: it died with daemon 100
  CHECK(executions[0].killed);
  CHECK(executions[1].end == 99 * ms);  // no death known
}

namespace {

HistoryRow history_row(int steps, int step) {
  HistoryRow row;
  row.run_id = "r";
  row.jobs.assign(static_cast<std::size_t>(steps), "chaos.step");
  row.step = step;
  return row;
}

HistoryAttempt attempt(int step, const char* outcome, std::int64_t token, bool has_error = false) {
  HistoryAttempt a;
  a.step = step;
  a.job = "chaos.step";
  a.outcome = outcome;
  a.token = token;
  a.has_error = has_error;
  a.worker = "host:42:0";
  return a;
}

// Whether some violation is about `step` and says `text`.
bool names(const std::vector<HistoryViolation>& found, int step, const std::string& text) {
  return std::any_of(found.begin(), found.end(), [&](const HistoryViolation& v) {
    return v.step == step && v.what.find(text) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("a finished program's history agrees with its row: one finished attempt per step") {
  HistoryRow row = history_row(3, 2);
  row.finished = true;
  row.crash_count = 2;  // one takeover and one isolated crash of the last step
  row.isolated_crash_count = 1;
  const std::vector<HistoryAttempt> history = {
      attempt(0, "retry", 1, true), attempt(0, "finished", 2),
      attempt(1, "crashed", 3),  // taken over, then superseded by its holder:
      attempt(1, "finished", 4),    attempt(1, "stale", 3, true),  // written late, lower token
      attempt(2, "crashed", 5),     attempt(2, "crashed", 6, true),
      attempt(2, "finished", 7),
  };
  CHECK(check_history(row, history).empty());
  HistoryFigures figures;
  figures.add(history);
  CHECK(figures.attempts == 8);
  CHECK(figures.finished == 3);
  CHECK(figures.crashed == 3);
  CHECK(figures.crashed_takeover == 2);
  CHECK(figures.crashed_isolated == 1);
  CHECK(figures.outcomes.at("stale") == 1);
}

TEST_CASE("a committed step without its finished attempt, or with two, is a violation") {
  HistoryRow row = history_row(3, 2);
  row.finished = true;
  // Step 0 committed twice, step 1 never, step 2 once.
  const auto found = check_history(
      row, {attempt(0, "finished", 1), attempt(0, "finished", 2), attempt(2, "finished", 4)});
  CHECK(names(found, 0, "2 `finished` attempts"));
  CHECK(names(found, 1, "0 `finished` attempts"));
  CHECK_FALSE(names(found, 2, "`finished` attempts"));
  CHECK(to_string(found.front()).rfind("r step 0: ", 0) == 0);
}

TEST_CASE("a finished attempt of a step the row has not committed is a violation") {
  HistoryRow row = history_row(3, 1);
  row.errored = true;  // failed at step 1
  const auto found = check_history(
      row, {attempt(0, "finished", 1), attempt(1, "finished", 2), attempt(1, "errored", 3, true)});
  CHECK(names(found, 1, "of a step the row has not committed"));
  // Without the stray finished attempt the history agrees.
  CHECK(check_history(row, {attempt(0, "finished", 1), attempt(1, "errored", 3, true)}).empty());
}

TEST_CASE("an attempt beyond the row's step, or of another job, is a violation") {
  HistoryRow row = history_row(3, 1);
  const auto found = check_history(row, {attempt(0, "finished", 1), attempt(2, "retry", 3, true)});
  CHECK(names(found, 2, "never reached"));
  HistoryAttempt other = attempt(1, "retry", 2, true);
  other.job = "chaos.poison";
  CHECK(
      names(check_history(row, {attempt(0, "finished", 1), other}), 1, "names job `chaos.poison`"));
}

TEST_CASE("tokens grow with the step, and a step's finished attempt holds its last claim") {
  HistoryRow row = history_row(3, 2);
  CHECK(names(check_history(row, {attempt(0, "finished", 5), attempt(1, "finished", 4)}), 1,
              "follows"));
  CHECK(names(check_history(row, {attempt(0, "finished", 1), attempt(0, "retry", 2, true),
                                  attempt(1, "finished", 3)}),
              0, "not the step's last claim"));
}

TEST_CASE("an errored program has exactly one attempt that ended it") {
  HistoryRow row = history_row(3, 1);
  row.errored = true;
  const HistoryAttempt first = attempt(0, "finished", 1);
  // Retries exhausted: the last attempt is `errored`.
  CHECK(check_history(row, {first, attempt(1, "errored", 2, true)}).empty());
  // No ending attempt at all: the failure was written without its attempt.
  CHECK(names(check_history(row, {first, attempt(1, "retry", 2, true)}), 1, "0 attempts ended it"));
  // Two endings.
  CHECK(names(
      check_history(row, {first, attempt(1, "errored", 2, true), attempt(1, "ignored", 3, true)}),
      1, "2 attempts ended it"));
  // A poison: a takeover, one isolated crash counted, the max_crashes-th ended it.
  row.crash_count = 2;
  row.isolated_crash_count = 1;
  CHECK(check_history(row, {first, attempt(1, "crashed", 2), attempt(1, "crashed", 3, true),
                            attempt(1, "crashed", 4, true)})
            .empty());
  // One isolated crash more than the counter and the ending explain.
  CHECK(names(check_history(row, {first, attempt(1, "crashed", 2, true),
                                  attempt(1, "crashed", 3, true), attempt(1, "crashed", 4, true)}),
              1, "3 isolated `crashed` attempts, step_isolated_crash_count 1"));
}

TEST_CASE(
    "a cancelled program has no ending attempt, and cancelled attempts are in cancelled programs only") {
  HistoryRow row = history_row(3, 1);
  row.errored = true;
  row.cancelled = true;
  const HistoryAttempt first = attempt(0, "finished", 1);
  CHECK(check_history(row, {first}).empty());  // cancelled between two steps
  CHECK(check_history(row, {first, attempt(1, "cancelled", 2, true)}).empty());
  CHECK(names(check_history(row, {first, attempt(1, "errored", 2, true)}), 1,
              "cancelled, but 1 attempt"));
  row.errored = row.cancelled = false;
  CHECK(names(check_history(row, {first, attempt(1, "cancelled", 2, true)}), 1, "never cancelled"));
}

TEST_CASE("takeover crashes of the current step are at most its crash count") {
  HistoryRow row = history_row(2, 1);
  row.crash_count = 1;
  const HistoryAttempt first = attempt(0, "finished", 1);
  // A count without an attempt (the lease ran out between two statements) is fine.
  CHECK(check_history(row, {first}).empty());
  CHECK(check_history(row, {first, attempt(1, "crashed", 2)}).empty());
  CHECK(names(check_history(row, {first, attempt(1, "crashed", 2), attempt(1, "crashed", 3)}), 1,
              "2 takeover `crashed` attempts"));
  // Crashes of a step already committed are not compared (its count was reset).
  row.crash_count = 0;
  CHECK(check_history(row, {attempt(0, "crashed", 1), attempt(0, "finished", 2)}).empty());
}

TEST_CASE("the pid of a worker identity") {
  CHECK(worker_pid("host-1:4242:3") == 4242);
  CHECK(worker_pid("a:b:1:77:0") == 77);  // a host with colons: the pid is the second to last
  CHECK_FALSE(worker_pid("host:x:0"));
  CHECK_FALSE(worker_pid("4242"));
  CHECK_FALSE(worker_pid(""));
}
