#include "program_executor/store/throughput_store.hpp"

#include <cstdio>
#include <optional>

#include <soci/soci.h>

#include "guarded.hpp"
#include "one_time_statement.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"

namespace program_executor::store {
namespace {

using detail::affected;
using detail::guarded;

// The owner column is a varchar(255); a longer name (a very long host name)
// would be refused by MySQL in strict mode.
constexpr std::size_t owner_length = 255;

// "YYYY-MM-DD<separator>HH:MM:00<suffix>" for the minute holding `time`.
std::string minute_text(std::chrono::sys_seconds time, char separator, const char* suffix) {
  const auto minute = std::chrono::floor<std::chrono::minutes>(time);
  const auto day = std::chrono::floor<std::chrono::days>(minute);
  const std::chrono::year_month_day date(day);
  const std::chrono::hh_mm_ss clock(minute - day);
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u%c%02d:%02d:00%s", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()), separator,
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                suffix);
  return text;
}

// A timestamp as Dialect::timestamp_text reads it ("YYYY-MM-DDTHH:MM:SS.mmmZ"),
// to the second; nullopt for anything else.
std::optional<std::chrono::sys_seconds> parse_timestamp(const std::string& text) {
  int year = 0;
  unsigned month = 0, day = 0;
  int hour = 0, minute = 0, second = 0;
  if (std::sscanf(text.c_str(), "%4d-%2u-%2uT%2d:%2d:%2d", &year, &month, &day, &hour, &minute,
                  &second) != 6) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                         std::chrono::day(day)};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}


}  // namespace

std::string throughput_table(const std::string& table) { return table + "_throughput"; }

ThroughputStore::ThroughputStore(Database& database)
    : database_(database),
      dialect_(database.dialect()),
      table_(dialect_.quote(throughput_table(database.table()))) {
  // The sum of two counts of the same daemon and minute, in one statement.
  upsert_ = dialect_.name() == "mysql"
                ? " ON DUPLICATE KEY UPDATE steps = steps + VALUES(steps)"
                : " ON CONFLICT (minute, owner) DO UPDATE SET steps = " + table_ +
                      ".steps + excluded.steps";
}

std::string ThroughputStore::minute_value(const char* parameter) const {
  const std::string bound = std::string(":") + parameter;
  if (dialect_.name() == "sqlite3") {
    // The programs table's format, so that rows compare as text.
    return "strftime('%Y-%m-%dT%H:%M:00.000Z', " + bound + ")";
  }
  if (dialect_.name() == "postgresql") {
    // As UTC whatever the session's time zone (psqlODBC sends the text as varchar).
    return "(CAST(" + bound + " AS timestamp) AT TIME ZONE 'UTC')";
  }
  return "CAST(" + bound + " AS DATETIME(3))";
}

void ThroughputStore::add(const std::string& owner, long long steps) {
  // The start of the database's current minute, in UTC.
  std::string minute;
  if (dialect_.name() == "sqlite3") {
    minute = "strftime('%Y-%m-%dT%H:%M:00.000Z', 'now')";
  } else if (dialect_.name() == "postgresql") {
    // Every time zone's offset is whole minutes, so the session's does not matter.
    minute = "date_trunc('minute', now())";
  } else {
    minute = "CAST(DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:00') AS DATETIME(3))";
  }
  guarded(database_, "recording the steps per minute", "", [&](soci::session& session) {
    const std::string name = owner.substr(0, owner_length);
    session << "INSERT INTO " + table_ + " (minute, owner, steps) VALUES (" + minute +
                   ", :owner, :steps)" + upsert_,
        soci::use(name), soci::use(steps);
  });
}

void ThroughputStore::add(const std::string& owner, std::chrono::sys_seconds minute,
                          long long steps) {
  guarded(database_, "recording the steps per minute", "", [&](soci::session& session) {
    const std::string name = owner.substr(0, owner_length);
    const std::string start = minute_text(minute, ' ', "");
    session << "INSERT INTO " + table_ + " (minute, owner, steps) VALUES (" +
                   minute_value("minute") + ", :owner, :steps)" + upsert_,
        soci::use(start), soci::use(name), soci::use(steps);
  });
}

std::vector<MinuteSteps> ThroughputStore::last_minutes(int minutes) {
  if (minutes <= 0) return {};
  return guarded(database_, "reading the steps per minute", "", [&](soci::session& session) {
    std::string now_text;
    session << "SELECT " + dialect_.timestamp_text(dialect_.now()), soci::into(now_text);
    const std::optional<std::chrono::sys_seconds> now = parse_timestamp(now_text);
    if (!now) throw StoreError("the database's clock reads '" + now_text + "', not a timestamp");
    const auto first = std::chrono::floor<std::chrono::minutes>(*now) -
                       std::chrono::minutes(minutes - 1);

    std::vector<MinuteSteps> result(static_cast<std::size_t>(minutes));
    for (int i = 0; i < minutes; ++i) {
      result[static_cast<std::size_t>(i)].minute =
          minute_text(first + std::chrono::minutes(i), 'T', "Z");
    }
    // SUM of a bigint is a numeric on PostgreSQL and a decimal on MySQL.
    const std::string sum = dialect_.name() == "postgresql" ? "CAST(SUM(steps) AS bigint)"
                            : dialect_.name() == "mysql"    ? "CAST(SUM(steps) AS SIGNED)"
                                                            : "SUM(steps)";
    const std::string since = minute_text(first, ' ', "");
    std::string minute;
    long long steps = 0;
    soci::statement statement(session);
    statement.exchange(soci::into(minute));
    statement.exchange(soci::into(steps));
    statement.exchange(soci::use(since));
    statement.alloc();
    statement.prepare("SELECT " + dialect_.timestamp_text("minute") + ", " + sum + " FROM " +
                          table_ + " WHERE minute >= " + minute_value("since") +
                          " GROUP BY minute",
                      soci::details::st_one_time_query);
    statement.define_and_bind();
    statement.execute(false);
    while (statement.fetch()) {
      const std::optional<std::chrono::sys_seconds> at = parse_timestamp(minute);
      if (!at) continue;
      const auto index = (std::chrono::floor<std::chrono::minutes>(*at) - first).count();
      // A minute begun since the clock was read is the next window's.
      if (index >= 0 && index < minutes) result[static_cast<std::size_t>(index)].steps += steps;
    }
    return result;
  });
}

long long ThroughputStore::prune(std::chrono::hours older_than) {
  return guarded(database_, "pruning the steps per minute", "", [&](soci::session& session) {
    const long long before =
        -std::chrono::duration_cast<std::chrono::milliseconds>(older_than).count();
    return affected(session,
                    "DELETE FROM " + table_ + " WHERE minute < " + dialect_.now_plus("before"),
                    soci::use(before));
  });
}

}  // namespace program_executor::store
