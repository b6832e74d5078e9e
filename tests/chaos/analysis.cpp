#include "analysis.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace program_executor::chaos {
namespace {

template <class T>
bool parse_number(std::string_view text, T& value) {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const std::size_t begin = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > begin) parts.push_back(line.substr(begin, i - begin));
  }
  return parts;
}

// The worker an execution ran on: a process and one of its threads.
std::pair<long long, long long> worker_of(const Execution& e) { return {e.pid, e.tid}; }

}  // namespace

Nanos now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<Nanos> parse_iso_utc(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction]Z (a space instead of T is accepted too)
  if (text.size() < 20 || text.back() != 'Z') return std::nullopt;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!parse_number(text.substr(0, 4), year) || text[4] != '-' ||
      !parse_number(text.substr(5, 2), month) || text[7] != '-' ||
      !parse_number(text.substr(8, 2), day) || (text[10] != 'T' && text[10] != ' ') ||
      !parse_number(text.substr(11, 2), hour) || text[13] != ':' ||
      !parse_number(text.substr(14, 2), minute) || text[16] != ':' ||
      !parse_number(text.substr(17, 2), second)) {
    return std::nullopt;
  }
  Nanos fraction = 0;
  std::string_view rest = text.substr(19, text.size() - 20);
  if (!rest.empty()) {
    if (rest.front() != '.' || rest.size() < 2 || rest.size() > 10) return std::nullopt;
    rest.remove_prefix(1);
    long long digits = 0;
    if (!parse_number(rest, digits)) return std::nullopt;
    fraction = digits;
    for (std::size_t i = rest.size(); i < 9; ++i) fraction *= 10;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const std::time_t seconds = ::timegm(&tm);
  if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
  return static_cast<Nanos>(seconds) * 1'000'000'000 + fraction;
}

std::optional<ExecutionLine> parse_execution_line(std::string_view line) {
  const auto parts = split_spaces(line);
  if (parts.size() < 6 || parts.size() > 8) return std::nullopt;
  ExecutionLine e;
  e.kind = std::string(parts[0]);
  if (e.kind != "start" && e.kind != "end" && e.kind != "kill") return std::nullopt;
  e.run_id = std::string(parts[1]);
  if (!parse_number(parts[2], e.step) || !parse_number(parts[3], e.attempt) ||
      !parse_number(parts[4], e.pid) || !parse_number(parts[5], e.t)) {
    return std::nullopt;
  }
  if (parts.size() >= 7 && !parse_number(parts[6], e.tid)) return std::nullopt;
  if (parts.size() == 8 && !parse_number(parts[7], e.ppid)) return std::nullopt;
  return e;
}

std::vector<Execution> build_executions(const std::vector<ExecutionLine>& lines,
                                        const std::map<long long, Nanos>& deaths,
                                        Nanos unknown_end) {
  using Key = std::tuple<long long, long long, std::string, int>;
  std::vector<Execution> done;
  std::map<Key, Execution> open;
  auto death_of = [&](long long pid, long long ppid) {
    const auto it = deaths.find(pid);
    if (it != deaths.end()) return it->second;
    // An isolated step's process dies with the daemon that started it.
    const auto parent = deaths.find(ppid);
    return parent == deaths.end() ? unknown_end : parent->second;
  };
  for (const ExecutionLine& line : lines) {
    const Key key{line.pid, line.tid, line.run_id, line.step};
    if (line.kind == "start") {
      const auto previous = open.find(key);
      if (previous != open.end()) {
        // A second start on the same thread without an end: the first was cut
        // short (a recycled pid); it ended no later than this start.
        Execution cut = previous->second;
        cut.end = std::min(death_of(line.pid, line.ppid), line.t);
        cut.killed = true;
        done.push_back(cut);
        open.erase(previous);
      }
      Execution e;
      e.run_id = line.run_id;
      e.step = line.step;
      e.attempt = line.attempt;
      e.pid = line.pid;
      e.tid = line.tid;
      e.ppid = line.ppid;
      e.start = line.t;
      open.emplace(key, e);
      continue;
    }
    const auto it = open.find(key);
    if (it == open.end()) continue;  // an end without its start: nothing to pair
    Execution e = it->second;
    open.erase(it);
    e.end = line.t;
    e.completed = line.kind == "end";
    e.killed = line.kind == "kill";
    done.push_back(e);
  }
  for (auto& [key, e] : open) {
    e.end = death_of(e.pid, e.ppid);
    e.killed = true;
    done.push_back(e);
  }
  std::sort(done.begin(), done.end(), [](const Execution& a, const Execution& b) {
    return std::tie(a.run_id, a.step, a.start) < std::tie(b.run_id, b.step, b.start);
  });
  return done;
}

std::vector<Overlap> find_overlaps(const std::vector<Execution>& executions) {
  std::map<StepKey, std::vector<const Execution*>> by_step;
  for (const Execution& e : executions) by_step[{e.run_id, e.step}].push_back(&e);
  std::vector<Overlap> overlaps;
  for (auto& [key, list] : by_step) {
    std::sort(list.begin(), list.end(),
              [](const Execution* a, const Execution* b) { return a->start < b->start; });
    for (std::size_t i = 0; i < list.size(); ++i) {
      for (std::size_t j = i + 1; j < list.size() && list[j]->start < list[i]->end; ++j) {
        if (worker_of(*list[i]) == worker_of(*list[j])) continue;
        // An interval whose process died before it started is empty.
        if (list[j]->end <= list[j]->start || list[i]->end <= list[i]->start) continue;
        overlaps.push_back({*list[i], *list[j]});
      }
    }
  }
  return overlaps;
}

std::optional<LogEvent> parse_log_line(std::string_view line) {
  const std::size_t brace = line.find('{');
  if (brace == std::string_view::npos) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(line.substr(brace), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto event = j.find("event");
  if (event == j.end() || !event->is_string()) return std::nullopt;
  LogEvent e;
  e.event = event->get<std::string>();
  if (const auto t = j.find("t_ns"); t != j.end() && t->is_number_integer()) {
    e.t = t->get<Nanos>();
  } else if (const auto ts = j.find("ts"); ts != j.end() && ts->is_string()) {
    e.t = parse_iso_utc(ts->get<std::string>()).value_or(0);
  }
  if (const auto r = j.find("run_id"); r != j.end() && r->is_string())
    e.run_id = r->get<std::string>();
  if (const auto s = j.find("step"); s != j.end() && s->is_number_integer()) e.step = s->get<int>();
  if (const auto p = j.find("pid"); p != j.end() && p->is_number_integer()) {
    e.pid = p->get<long long>();
  }
  if (const auto p = j.find("point"); p != j.end() && p->is_string())
    e.point = p->get<std::string>();
  if (const auto m = j.find("message"); m != j.end() && m->is_string()) {
    e.message = m->get<std::string>();
  }
  return e;
}

std::map<StepKey, int> count_per_step(const std::vector<LogEvent>& events, std::string_view event) {
  std::map<StepKey, int> counts;
  for (const LogEvent& e : events) {
    if (e.event == event && !e.run_id.empty() && e.step >= 0) ++counts[{e.run_id, e.step}];
  }
  return counts;
}

std::vector<std::pair<StepKey, int>> repeated(const std::map<StepKey, int>& counts) {
  std::vector<std::pair<StepKey, int>> found;
  for (const auto& [key, count] : counts) {
    if (count > 1) found.emplace_back(key, count);
  }
  return found;
}

std::optional<Nanos> first_after(const std::vector<Nanos>& sorted_times, Nanos t) {
  const auto it = std::upper_bound(sorted_times.begin(), sorted_times.end(), t);
  if (it == sorted_times.end()) return std::nullopt;
  return *it;
}

std::vector<StepKey> in_flight_at_death(const std::vector<Execution>& executions, long long pid,
                                        Nanos death, const std::map<std::string, Nanos>& ends) {
  std::map<long long, const Execution*> last_per_thread;
  for (const Execution& e : executions) {
    if (e.pid != pid || e.start >= death) continue;
    const Execution*& last = last_per_thread[e.tid];
    if (last == nullptr || e.start > last->start) last = &e;
  }
  std::vector<StepKey> found;
  for (const auto& [tid, last] : last_per_thread) {
    const auto end = ends.find(last->run_id);
    if (end != ends.end() && end->second <= death) continue;
    const bool moved_on =
        std::any_of(executions.begin(), executions.end(), [&](const Execution& e) {
          return e.run_id == last->run_id && e.step > last->step && e.start < death;
        });
    if (!moved_on) found.emplace_back(last->run_id, last->step);
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

std::optional<Nanos> resumed_after(const std::map<std::string, std::vector<Progress>>& progress,
                                   const StepKey& key, Nanos at) {
  const auto it = progress.find(key.first);
  if (it == progress.end()) return std::nullopt;
  std::optional<Nanos> best;
  for (const Progress& p : it->second) {
    if (p.t <= at || (p.step != -1 && p.step < key.second)) continue;
    if (!best || p.t < *best) best = p.t;
  }
  return best;
}

std::vector<StepSpan> spans_from_events(const std::vector<LogEvent>& events) {
  std::vector<const LogEvent*> ordered;
  for (const LogEvent& e : events) {
    if ((e.event == "job.started" || e.event == "job.finished") && !e.run_id.empty() && e.step >= 0) {
      ordered.push_back(&e);
    }
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const LogEvent* a, const LogEvent* b) { return a->t < b->t; });
  std::vector<StepSpan> spans;
  std::map<StepKey, std::vector<std::size_t>> open;  // unfinished spans per (run id, step)
  for (const LogEvent* e : ordered) {
    const StepKey key{e->run_id, e->step};
    if (e->event == "job.started") {
      open[key].push_back(spans.size());
      spans.push_back({e->run_id, e->step, e->t, std::nullopt});
    } else if (auto found = open.find(key); found != open.end() && !found->second.empty()) {
      spans[found->second.front()].end = e->t;
      found->second.erase(found->second.begin());
    }
  }
  return spans;
}

std::vector<StepSpan> spans_from_executions(const std::vector<Execution>& executions) {
  std::vector<StepSpan> spans;
  spans.reserve(executions.size());
  for (const Execution& e : executions) {
    spans.push_back({e.run_id, e.step, e.start, e.completed ? std::optional<Nanos>(e.end) : std::nullopt});
  }
  return spans;
}

std::vector<StepGap> step_gaps(const std::vector<StepSpan>& spans) {
  std::map<StepKey, std::vector<const StepSpan*>> by_step;
  for (const StepSpan& s : spans) by_step[{s.run_id, s.step}].push_back(&s);
  std::vector<StepGap> gaps;
  for (const auto& [key, runs] : by_step) {
    if (key.second < 1) continue;
    const auto before = by_step.find({key.first, key.second - 1});
    if (before == by_step.end()) continue;
    std::optional<Nanos> to, to_any;
    for (const StepSpan* s : runs) {
      to_any = to_any ? std::min(*to_any, s->start) : s->start;
      if (s->end) to = to ? std::min(*to, s->start) : s->start;
    }
    if (!to) to = to_any;
    std::optional<Nanos> from;
    for (const StepSpan* s : before->second) {
      if (s->end && *s->end <= *to) from = from ? std::max(*from, *s->end) : *s->end;
    }
    if (from) gaps.push_back({key.first, key.second, *from, *to});
  }
  return gaps;
}

std::optional<StepGap> longest_gap(const std::vector<StepGap>& gaps) {
  const auto found = std::max_element(gaps.begin(), gaps.end(), [](const StepGap& a, const StepGap& b) {
    return a.to - a.from < b.to - b.from;
  });
  if (found == gaps.end()) return std::nullopt;
  return *found;
}

bool fault_within(const std::vector<FaultWindow>& faults, Nanos from, Nanos to) {
  return std::any_of(faults.begin(), faults.end(),
                     [&](const FaultWindow& f) { return f.from <= to && f.to >= from; });
}

std::vector<LogEvent> recoveries_outside_faults(const std::vector<LogEvent>& events,
                                                const std::vector<StepSpan>& spans,
                                                const std::map<std::string, Nanos>& created,
                                                const std::vector<FaultWindow>& faults) {
  std::map<std::string, std::vector<Nanos>> moves;
  for (const StepSpan& s : spans) {
    moves[s.run_id].push_back(s.start);
    if (s.end) moves[s.run_id].push_back(*s.end);
  }
  std::vector<LogEvent> found;
  for (const LogEvent& e : events) {
    if (e.event != "program.recovered") continue;
    Nanos last_move = 0;
    if (const auto c = created.find(e.run_id); c != created.end() && c->second <= e.t) last_move = c->second;
    if (const auto m = moves.find(e.run_id); m != moves.end()) {
      for (const Nanos t : m->second) {
        if (t <= e.t) last_move = std::max(last_move, t);
      }
    }
    if (!fault_within(faults, last_move, e.t)) found.push_back(e);
  }
  return found;
}

std::string to_string(const HistoryViolation& violation) {
  if (violation.step < 0) return fmt::format("{}: {}", violation.run_id, violation.what);
  return fmt::format("{} step {}: {}", violation.run_id, violation.step, violation.what);
}

std::optional<long long> worker_pid(std::string_view worker) {
  const std::size_t last = worker.rfind(':');
  if (last == std::string_view::npos || last == 0) return std::nullopt;
  const std::size_t before = worker.rfind(':', last - 1);
  if (before == std::string_view::npos) return std::nullopt;
  long long pid = 0;
  if (!parse_number(worker.substr(before + 1, last - before - 1), pid)) return std::nullopt;
  return pid;
}

namespace {

bool committing(const HistoryAttempt& a) {
  return a.outcome == "finished" || a.outcome == "skipped";
}

// A `crashed` attempt with an error was written by the daemon whose isolated
// process died running the step (StepProcessor::settle, Kind::crashed: through
// record_isolated_crash, or through fail when it was the max_crashes-th); one
// without was written by whoever took an expired claim over (the claim or the
// sweeper's begin_recovery: AttemptLog::crashed_insert writes NULL).
bool isolated_crash(const HistoryAttempt& a) { return a.outcome == "crashed" && a.has_error; }
bool takeover_crash(const HistoryAttempt& a) { return a.outcome == "crashed" && !a.has_error; }

}  // namespace

std::vector<HistoryViolation> check_history(const HistoryRow& row,
                                            const std::vector<HistoryAttempt>& attempts) {
  std::vector<HistoryViolation> found;
  const auto violation = [&](int step, std::string what) {
    found.push_back({row.run_id, step, std::move(what)});
  };
  const int steps = static_cast<int>(row.jobs.size());

  // No attempt beyond what the row allows. Every attempt is written under a
  // claim of its step (the holder's ending, fenced on run id, step and token)
  // or by a takeover of the row's own step (crashed_insert reads `step` from
  // the row); a claim needs row.step == step, and `step` only grows (advance).
  // So an attempt's step is at most the row's step, which stays below the job
  // count (a finish leaves step at the last job). Its job is the row's job
  // there: the holder names the message's first job, and the claim matched
  // the step len(jobs) - len(message jobs) (chaos-run publishes no forged
  // message); a takeover reads jobs[step].
  for (const HistoryAttempt& a : attempts) {
    if (a.step < 0 || a.step > row.step || a.step >= steps) {
      violation(a.step,
                fmt::format("a `{}` attempt of a step the row never reached (row at step {} of "
                            "{}, {})",
                            a.outcome, row.step, steps,
                            row.finished  ? "finished"
                            : row.errored ? "errored"
                                          : "running"));
    } else if (a.job != row.jobs[static_cast<std::size_t>(a.step)]) {
      violation(a.step, fmt::format("a `{}` attempt names job `{}`, the row has `{}` there",
                                    a.outcome, a.job, row.jobs[static_cast<std::size_t>(a.step)]));
    }
  }

  // One committing attempt (`finished`, or `skipped` for a job no plugin
  // has) per committed step, none for the others. The commit writes it in
  // the transaction of the fenced UPDATE that moves the row (commit_one,
  // commit_all, commit_all_returning: no attempt when the UPDATE matched
  // nothing), and a step commits at most once (the fence on step and token).
  // Nothing else writes these outcomes. The committed steps are those below
  // row.step, and all of them once the program finished (a finish does not
  // advance step). chaos-run never resumes a program (which would reset
  // step and let a step commit again).
  std::map<int, int> commits;
  for (const HistoryAttempt& a : attempts) {
    if (committing(a)) ++commits[a.step];
  }
  const int committed = row.finished ? steps : std::min(row.step, steps);
  for (int s = 0; s < committed; ++s) {
    const auto it = commits.find(s);
    const int n = it == commits.end() ? 0 : it->second;
    if (n != 1) {
      violation(s, fmt::format("committed (row at step {}{}) but {} `finished` attempts", row.step,
                               row.finished ? ", finished" : "", n));
    }
  }
  for (const auto& [s, n] : commits) {
    if (s >= committed) {
      violation(
          s, fmt::format("{} `finished` attempt{} of a step the row has not committed (row at step "
                         "{}, {})",
                         n, n == 1 ? "" : "s", row.step, row.errored ? "errored" : "running"));
    }
  }

  // Tokens grow with the step: every claim adds 1 to lease_token (never
  // reset), a claim of step s + 1 follows the commit of step s, and each
  // attempt carries the token of the claim it ended (a late `stale` one
  // too). A step's committing attempt holds its highest token: after the
  // commit no claim of that step can match, and every earlier claim of it
  // had a lower token.
  for (const HistoryAttempt& a : attempts) {
    for (const HistoryAttempt& b : attempts) {
      if (a.step < b.step && a.token >= b.token) {
        violation(b.step,
                  fmt::format("a `{}` attempt with token {} follows a `{}` attempt of step {} with "
                              "token {}",
                              b.outcome, b.token, a.outcome, a.step, a.token));
      } else if (a.step == b.step && committing(a) && !committing(b) && b.token >= a.token) {
        // (Two committing attempts of a step are reported above already.)
        violation(a.step,
                  fmt::format("the `{}` attempt (token {}) is not the step's last claim: a `{}` "
                              "attempt has token {}",
                              a.outcome, a.token, b.outcome, b.token));
      }
    }
  }

  // How the program ended. errored_at is set by fail(), which writes the
  // attempt that ended it in the same fenced transaction (`errored`,
  // `ignored`, or `crashed` when an isolated process died the
  // max_crashes-th time), or by a cancel, which writes no attempt (its
  // holder, if any, later adds a `cancelled` one). A holder whose ending the
  // row refused writes `stale` or `cancelled` instead, never `errored` or
  // `ignored`. So `errored` and `ignored` appear only as that ending, at the
  // row's step. The isolated crashes of the current step are each written
  // with step_isolated_crash_count + 1 (record_isolated_crash), except the
  // one that stopped the program (fail: no count); the counter is reset
  // when the step advances, and kept by a finish or a failure.
  int endings = 0;
  int isolated_here = 0, takeovers_here = 0;
  for (const HistoryAttempt& a : attempts) {
    if (a.outcome == "errored" || a.outcome == "ignored") {
      ++endings;
      if (a.step != row.step) {
        violation(a.step, fmt::format("an `{}` attempt, but the row ended at step {}", a.outcome,
                                      row.step));
      }
    }
    if (a.step == row.step && isolated_crash(a)) ++isolated_here;
    if (a.step == row.step && takeover_crash(a)) ++takeovers_here;
    // `cancelled` is written only when the holder read cancelled_at on the
    // row (StepProcessor::superseded), and nothing clears it.
    if (a.outcome == "cancelled" && !row.cancelled) {
      violation(a.step, "a `cancelled` attempt, but the program was never cancelled");
    }
  }
  const int crash_loop_endings = isolated_here - row.isolated_crash_count;
  if (crash_loop_endings < 0 || crash_loop_endings > 1) {
    violation(row.step, fmt::format("{} isolated `crashed` attempts, step_isolated_crash_count {}",
                                    isolated_here, row.isolated_crash_count));
  }
  endings += std::clamp(crash_loop_endings, 0, 1);
  const bool failed = row.errored && !row.cancelled && !row.finished;
  if (failed && endings != 1) {
    violation(row.step,
              fmt::format("errored, but {} attempts ended it (`errored`, `ignored`, or the "
                          "`crashed` of a crash loop beyond step_isolated_crash_count {})",
                          endings, row.isolated_crash_count));
  } else if (!failed && endings != 0) {
    violation(row.step, fmt::format("{}, but {} attempt{} ended it as errored",
                                    row.cancelled  ? "cancelled"
                                    : row.finished ? "finished"
                                                   : "running",
                                    endings, endings == 1 ? "" : "s"));
  }

  // A takeover writes its `crashed` attempt in the transaction of the
  // statement that adds 1 to step_crash_count (the claim, or the sweeper's
  // begin_recovery), under the same condition: the claim held and expired,
  // the row locked. The count can move without an attempt (a lease that
  // runs out between the two statements, SQLite's clock being per
  // statement), and a takeover's attempt becomes `stale` when its holder
  // turns out alive: the attempts are at most the count, never more.
  const int takeover_count = row.crash_count - row.isolated_crash_count;
  if (takeovers_here > takeover_count) {
    violation(row.step, fmt::format("{} takeover `crashed` attempts, but step_crash_count {} - "
                                    "step_isolated_crash_count {} = {}",
                                    takeovers_here, row.crash_count, row.isolated_crash_count,
                                    takeover_count));
  }
  return found;
}

void HistoryFigures::add(const std::vector<HistoryAttempt>& list) {
  for (const HistoryAttempt& a : list) {
    ++attempts;
    ++outcomes[a.outcome];
    if (a.outcome == "finished") ++finished;
    if (a.outcome == "crashed") ++crashed;
    if (takeover_crash(a)) ++crashed_takeover;
    if (isolated_crash(a)) ++crashed_isolated;
  }
}

Summary summarize(std::vector<double> seconds) {
  Summary s;
  s.n = seconds.size();
  if (seconds.empty()) return s;
  std::sort(seconds.begin(), seconds.end());
  s.min = seconds.front();
  s.max = seconds.back();
  const std::size_t mid = seconds.size() / 2;
  s.median = seconds.size() % 2 == 1 ? seconds[mid] : (seconds[mid - 1] + seconds[mid]) / 2;
  return s;
}

std::string format_summary(const Summary& summary) {
  if (summary.n == 0) return "n=0";
  return fmt::format("n={} min {:.3f} s, median {:.3f} s, max {:.3f} s", summary.n, summary.min,
                     summary.median, summary.max);
}

}  // namespace program_executor::chaos
