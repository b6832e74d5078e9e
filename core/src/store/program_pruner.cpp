#include "program_executor/store/program_pruner.hpp"

#include <cctype>
#include <charconv>
#include <ctime>
#include <stdexcept>
#include <string>

namespace program_executor::store {
namespace {

using std::chrono::system_clock;

[[noreturn]] void bad_cutoff(std::string_view text, const std::string& why) {
  throw std::invalid_argument("--finished-before '" + std::string(text) + "': " + why +
                              " (expected a DURATION such as 90d, 12h, 30m, 45s or 2w, or a UTC "
                              "TIMESTAMP such as 2026-01-31 or 2026-01-31T12:00:00Z)");
}

// Reads exactly `digits` decimal digits at `at`, advancing it; -1 if they are not there.
int read_digits(std::string_view text, std::size_t& at, std::size_t digits) {
  if (at + digits > text.size()) return -1;
  int value = 0;
  const auto [end, error] = std::from_chars(text.data() + at, text.data() + at + digits, value);
  if (error != std::errc() || end != text.data() + at + digits) return -1;
  at += digits;
  return value;
}

bool expect_char(std::string_view text, std::size_t& at, char c) {
  if (at >= text.size() || text[at] != c) return false;
  ++at;
  return true;
}

std::chrono::seconds parse_duration(std::string_view text) {
  long long count = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (error != std::errc() || end == text.data() || count < 0) bad_cutoff(text, "not a duration");
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  long long seconds_per_unit = 0;
  if (unit == "s") seconds_per_unit = 1;
  if (unit == "m") seconds_per_unit = 60;
  if (unit == "h") seconds_per_unit = 3600;
  if (unit == "d") seconds_per_unit = 86400;
  if (unit == "w") seconds_per_unit = 7 * 86400;
  if (seconds_per_unit == 0) bad_cutoff(text, "unknown unit '" + std::string(unit) + "'");
  // Beyond a century back nothing can have ended; refusing it also keeps the
  // arithmetic far from overflow.
  if (count > 36500LL * 86400 / seconds_per_unit) bad_cutoff(text, "more than 100 years");
  return std::chrono::seconds(count * seconds_per_unit);
}

system_clock::time_point parse_timestamp(std::string_view text) {
  std::size_t at = 0;
  std::tm tm{};
  const int year = read_digits(text, at, 4);
  const bool date = year >= 1970 && expect_char(text, at, '-');
  const int month = date ? read_digits(text, at, 2) : -1;
  const int day = month > 0 && expect_char(text, at, '-') ? read_digits(text, at, 2) : -1;
  if (day < 1 || day > 31 || month < 1 || month > 12) bad_cutoff(text, "not a date");
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  long long milliseconds = 0;
  if (at < text.size() && (text[at] == 'T' || text[at] == ' ')) {
    ++at;
    tm.tm_hour = read_digits(text, at, 2);
    tm.tm_min = expect_char(text, at, ':') ? read_digits(text, at, 2) : -1;
    tm.tm_sec = expect_char(text, at, ':') ? read_digits(text, at, 2) : -1;
    if (tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
        tm.tm_sec > 60) {
      bad_cutoff(text, "not a time of day HH:MM:SS");
    }
    if (expect_char(text, at, '.')) {
      long long scale = 100;
      const std::size_t first = at;
      while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) {
        milliseconds += (text[at] - '0') * scale;
        scale /= 10;
        ++at;
      }
      if (at == first) bad_cutoff(text, "no digits after the decimal point");
    }
    expect_char(text, at, 'Z');
  }
  if (at != text.size()) bad_cutoff(text, "only UTC is accepted (end with Z or nothing)");
  const std::time_t seconds = timegm(&tm);
  // timegm normalises out-of-range days (February 30th) instead of failing.
  std::tm check{};
  gmtime_r(&seconds, &check);
  if (check.tm_mday != day || check.tm_mon != month - 1) bad_cutoff(text, "no such day");
  return system_clock::from_time_t(seconds) + std::chrono::milliseconds(milliseconds);
}

}  // namespace

system_clock::time_point parse_cutoff(std::string_view text, system_clock::time_point now) {
  if (text.empty()) bad_cutoff(text, "empty");
  // "2026-..." is a timestamp; "90d" a duration. Four digits and a dash decide.
  const bool timestamp = text.size() >= 5 && text[4] == '-';
  const system_clock::time_point cutoff =
      timestamp ? parse_timestamp(text) : now - parse_duration(text);
  if (cutoff > now) bad_cutoff(text, "lies in the future");
  return cutoff;
}

PruneReport prune_ended(ProgramStore& store, system_clock::time_point cutoff, int batch_size,
                        const std::function<void(const PruneReport&)>& on_batch) {
  if (batch_size < 1) throw std::invalid_argument("the prune batch size must be at least 1");
  PruneReport report;
  while (true) {
    // The age is taken again for each batch, so the cutoff stays one moment
    // however long the prune takes: programs ending meanwhile are kept.
    const auto age =
        std::chrono::duration_cast<std::chrono::milliseconds>(system_clock::now() - cutoff);
    const long long deleted = store.delete_ended(age, batch_size);
    ++report.batches;
    report.deleted += deleted;
    if (on_batch) on_batch(report);
    if (deleted < batch_size) return report;
  }
}

}  // namespace program_executor::store
