#include "program_executor/executor/attempt_timeline.hpp"

#include <cstdio>
#include <optional>

#include "program_executor/executor/program_status.hpp"

namespace program_executor::executor {
namespace {

namespace outcome = store::attempt_outcome;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

std::optional<long long> epoch_ms(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z) != 8 ||
      z != 'Z') {
    return std::nullopt;
  }
  return ((days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 24 + h) * 60 + mi) *
             60000LL +
         s * 1000LL + ms;
}

std::string job_at(const store::ProgramRow& row, int step) {
  return step >= 0 && step < static_cast<int>(row.jobs.size()) ? row.jobs[static_cast<std::size_t>(step)]
                                                                : std::string("?");
}

// Text counts steps from 1, as `status`, `list` and the console do; the
// table's step column (and --json's "step") from 0.
std::string step_name(const store::ProgramRow& row, int step) {
  return "step " + std::to_string(step + 1) + " of " + std::to_string(row.jobs.size()) + " (" +
         job_at(row, step) + ")";
}

// "1.5 s", "230 ms", "2.0 min", "3.1 h": a duration an operator reads at a glance.
std::string readable(long long ms) {
  char text[32];
  if (ms < 1000) {
    std::snprintf(text, sizeof text, "%lld ms", ms);
  } else if (ms < 120000) {
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ms) / 1000.0);
  } else if (ms < 7200000) {
    std::snprintf(text, sizeof text, "%.1f min", static_cast<double>(ms) / 60000.0);
  } else {
    std::snprintf(text, sizeof text, "%.1f h", static_cast<double>(ms) / 3600000.0);
  }
  return text;
}

// The first line of an error, at most 200 bytes: the timeline stays one line per attempt.
std::string headline(const std::string& error) {
  std::string line = error.substr(0, error.find('\n'));
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line;
}

std::string plural(long long count, const char* one, const char* many) {
  return std::to_string(count) + " " + (count == 1 ? one : many);
}

// The attempts of `step` since the program last arrived there (a resume may
// bring it back to a step it ran before: only the latest run counts).
std::vector<const store::AttemptRecord*> latest_run_of(const std::vector<store::AttemptRecord>& attempts,
                                                       int step) {
  std::vector<const store::AttemptRecord*> run;
  for (const store::AttemptRecord& attempt : attempts) {
    if (attempt.step != step) {
      if (!run.empty() && attempt.step < step) run.clear();
      continue;
    }
    if (!run.empty() && (run.back()->outcome == outcome::finished || run.back()->outcome == outcome::skipped)) {
      run.clear();
    }
    run.push_back(&attempt);
  }
  return run;
}

}  // namespace

std::optional<long long> milliseconds_between(const std::string& from, const std::string& to) {
  const auto a = epoch_ms(from);
  const auto b = epoch_ms(to);
  if (!a || !b) return std::nullopt;
  return *b - *a;
}

std::string explain_reason(const store::ProgramRow& row,
                           const std::vector<store::AttemptRecord>& attempts) {
  const std::string state = program_state(row);
  long long retries = 0, yields = 0, crashes = 0;
  for (const store::AttemptRecord& attempt : attempts) {
    if (attempt.outcome == outcome::retry) ++retries;
    if (attempt.outcome == outcome::yield) ++yields;
    if (attempt.outcome == outcome::crashed) ++crashes;
  }
  const std::vector<const store::AttemptRecord*> current = latest_run_of(attempts, row.step);
  const store::AttemptRecord* last = current.empty() ? nullptr : current.back();
  const std::string here = step_name(row, row.step);
  const std::string error = row.error_message.value_or("");

  if (state == "finished") {
    return "finished: all " + plural(static_cast<long long>(row.jobs.size()), "step", "steps") +
           " committed" +
           (attempts.empty() ? std::string(" (no attempt history)")
                             : " after " + plural(static_cast<long long>(attempts.size()), "attempt", "attempts") +
                                   " (" + plural(retries, "retry", "retries") + ", " +
                                   plural(yields, "yield", "yields") + ", " +
                                   plural(crashes, "crash", "crashes") + ")");
  }
  if (state == "cancelled") {
    std::string reason = "cancelled by an operator at " + row.cancelled_at.value_or(row.errored_at.value_or("?")) +
                         " while at " + here;
    if (last != nullptr && last->outcome == outcome::cancelled) {
      reason += "; the attempt running then (on " + last->worker + ") was stopped and its outcome dropped";
    }
    return reason;
  }
  if (state == "errored") {
    const std::string after =
        current.empty() ? std::string() : " after " + plural(static_cast<long long>(current.size()), "attempt", "attempts");
    if (last != nullptr && last->outcome == outcome::ignored) {
      return "errored at " + here + after + ": the job gave up with an IgnorableError (expected): " +
             headline(last->error.value_or(error));
    }
    if (last != nullptr && last->outcome == outcome::crashed) {
      return "errored at " + here + after + ": the process running it died too often (recovery.max_crashes): " +
             headline(error);
    }
    if (last != nullptr && last->outcome == outcome::errored) {
      return "errored at " + here + after + ": " + headline(error.empty() ? last->error.value_or("") : error) +
             (last->exception_type ? " (" + *last->exception_type + ")" : std::string());
    }
    return "errored at " + here + ": " + headline(error) +
           (attempts.empty() ? " (no attempt history of it)" : "");
  }
  // running
  if (row.lease_owner) {
    return "running: " + here + " runs on " + *row.lease_owner + " (attempt " +
           std::to_string(row.step_retry_count + 1) + ")";
  }
  if (last != nullptr && last->outcome == outcome::retry) {
    return "running: " + here + " waits for its retry after attempt " + std::to_string(last->attempt) +
           " failed: " + headline(last->error.value_or(error));
  }
  if (last != nullptr && last->outcome == outcome::yield) {
    return "running: " + here + " yielded (its time slice ran out) and resumes at its next delivery";
  }
  if (last != nullptr && last->outcome == outcome::crashed) {
    return "running: the worker running " + here + " (" + last->worker +
           ") died; the step runs again, isolated in a process of its own";
  }
  return "running: " + here + " waits for a worker";
}

std::vector<std::string> format_timeline(const store::ProgramRow& row,
                                         const std::vector<store::AttemptRecord>& attempts) {
  std::vector<std::string> lines;
  lines.push_back("program " + row.run_id + ": " + program_state(row) + ", " +
                  plural(static_cast<long long>(row.jobs.size()), "job", "jobs") + ", created " +
                  row.created_at);
  if (attempts.empty()) {
    lines.push_back("  (no attempts recorded: the program has not run a step yet, history.enabled is "
                    "false, or its history was pruned)");
  } else if (attempts.front().step > 0) {
    lines.push_back("  (no history before step " + std::to_string(attempts.front().step + 1) +
                    ": the program was taken over from program-executor-js, or ran with "
                    "history.enabled false, or its history was pruned)");
  }
  const store::AttemptRecord* previous = nullptr;
  for (const store::AttemptRecord& attempt : attempts) {
    if (previous != nullptr && previous->step == attempt.step) {
      if (const auto gap = milliseconds_between(previous->ended_at, attempt.started_at); gap && *gap >= 0) {
        const std::string why = previous->outcome == outcome::retry   ? "retry delay"
                                : previous->outcome == outcome::yield ? "after the yield"
                                : previous->outcome == outcome::crashed
                                    ? "after the crash was noticed"
                                    : "between attempts";
        lines.push_back("      waited " + readable(*gap) + " (" + why + ")");
      }
    }
    char head[160];
    std::snprintf(head, sizeof head, "  %s  step %d  %-20s attempt %-3d %-9s %9s  on %s",
                  attempt.started_at.c_str(), attempt.step + 1, attempt.job.c_str(), attempt.attempt,
                  attempt.outcome.c_str(), readable(attempt.duration_ms).c_str(), attempt.worker.c_str());
    std::string line = head;
    if (attempt.outcome == outcome::crashed && !attempt.error) {
      line += "  (the worker died; noticed when its claim was taken over at " + attempt.ended_at + ")";
    }
    if (attempt.outcome == outcome::stale) line += "  (its claim was taken over while it ran)";
    if (attempt.error) {
      line += "  " + (attempt.exception_type ? *attempt.exception_type + ": " : std::string()) +
              headline(*attempt.error);
    }
    lines.push_back(line);
    previous = &attempt;
  }
  lines.push_back("why: " + explain_reason(row, attempts));
  return lines;
}

nlohmann::json explain_json(const store::ProgramRow& row,
                            const std::vector<store::AttemptRecord>& attempts) {
  nlohmann::json list = nlohmann::json::array();
  for (const store::AttemptRecord& attempt : attempts) {
    list.push_back({{"step", attempt.step},
                    {"job", attempt.job},
                    {"attempt", attempt.attempt},
                    {"outcome", attempt.outcome},
                    {"worker", attempt.worker},
                    {"startedAt", attempt.started_at},
                    {"endedAt", attempt.ended_at},
                    {"durationMs", attempt.duration_ms},
                    {"error", attempt.error ? nlohmann::json(*attempt.error) : nlohmann::json()},
                    {"exceptionType",
                     attempt.exception_type ? nlohmann::json(*attempt.exception_type) : nlohmann::json()}});
  }
  return {{"runId", row.run_id},
          {"state", program_state(row)},
          {"reason", explain_reason(row, attempts)},
          {"attempts", std::move(list)}};
}

}  // namespace program_executor::executor
