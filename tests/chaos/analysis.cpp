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
