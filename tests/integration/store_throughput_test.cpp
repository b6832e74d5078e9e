// The steps-per-minute table (<table>_throughput, schema version 4) on the
// configured database (PE_TEST_DATABASE: sqlite3 by default, or postgresql,
// mysql, odbc; see store_test_backend.hpp; .ci/test runs it once per backend):
// counts of one daemon and minute add up, owners are summed per minute, the
// last N minutes come back complete and oldest first, in UTC whatever the
// server's time zone, and old rows are pruned.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/throughput_store.hpp"
#include "store_test_backend.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using std::chrono::sys_seconds;

namespace {

// ScratchTable with the throughput table dropped too (declared after it, so
// dropped first; a server database keeps no leftover of the test).
class ThroughputScratch {
 public:
  ThroughputScratch() { drop(); }
  ~ThroughputScratch() { drop(); }
  ThroughputScratch(const ThroughputScratch&) = delete;
  ThroughputScratch& operator=(const ThroughputScratch&) = delete;

  test::ScratchTable table;

 private:
  void drop() noexcept {
    if (table.settings().backend == config::DatabaseBackend::sqlite3) return;  // the directory goes away
    try {
      store::Database database(table.settings(), 1);
      soci::session session(database.pool());
      session << "DROP TABLE IF EXISTS " +
                     database.dialect().quote(store::throughput_table(table.name()));
    } catch (const std::exception&) {
      // Unreachable: the test itself reports it.
    }
  }
};

struct Row {
  std::string minute;  // as Dialect::timestamp_text reads it
  std::string owner;
  long long steps = 0;
};

std::vector<Row> rows(store::Database& database) {
  const store::Dialect& dialect = database.dialect();
  soci::session session(database.pool());
  std::vector<Row> found;
  Row row;
  soci::statement statement =
      (session.prepare << "SELECT " + dialect.timestamp_text("minute") + ", owner, steps FROM " +
                              dialect.quote(store::throughput_table(database.table())) +
                              " ORDER BY minute, owner",
       soci::into(row.minute), soci::into(row.owner), soci::into(row.steps));
  statement.execute(false);
  while (statement.fetch()) found.push_back(row);
  return found;
}

sys_seconds this_minute() {
  return std::chrono::floor<std::chrono::minutes>(std::chrono::system_clock::now());
}

// "YYYY-MM-DDTHH:MM:00Z", as MinuteSteps names a minute.
std::string minute_name(sys_seconds minute) {
  const auto day = std::chrono::floor<std::chrono::days>(minute);
  const std::chrono::year_month_day date(day);
  const std::chrono::hh_mm_ss clock(minute - day);
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:00Z", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()));
  return text;
}

std::optional<long long> steps_at(const std::vector<store::MinuteSteps>& minutes,
                                  const std::string& name) {
  for (const auto& entry : minutes) {
    if (entry.minute == name) return entry.steps;
  }
  return std::nullopt;
}

long long total(const std::vector<store::MinuteSteps>& minutes) {
  long long sum = 0;
  for (const auto& entry : minutes) sum += entry.steps;
  return sum;
}

}  // namespace

TEST_CASE("the schema's version 4 creates the throughput table", "[store][throughput]") {
  ThroughputScratch scratch;
  auto database = scratch.table.open();
  database->ensure_schema();
  soci::session session(database->pool());
  CHECK(database->dialect().table_exists(session, store::throughput_table(scratch.table.name())));
  std::vector<std::string> columns =
      database->dialect().columns(session, store::throughput_table(scratch.table.name()));
  for (auto& column : columns) {
    std::transform(column.begin(), column.end(), column.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  CHECK(columns == std::vector<std::string>{"minute", "owner", "steps"});
  CHECK(database->schema_status().version >= 4);
}

TEST_CASE("counts of one daemon and minute add up, each owner has its row", "[store][throughput]") {
  ThroughputScratch scratch;
  auto database = scratch.table.open();
  database->ensure_schema();
  store::ThroughputStore throughput(*database);

  // Seconds are dropped: both land in 03:04.
  const sys_seconds minute = std::chrono::sys_days(std::chrono::year(2026) / 1 / 2) + 3h + 4min;
  throughput.add("host-a:100", minute + 5s, 3);
  throughput.add("host-a:100", minute + 59s, 4);
  throughput.add("host-b:200", minute, 5);
  throughput.add("host-a:100", minute + 1min, 1);

  const std::vector<Row> found = rows(*database);
  REQUIRE(found.size() == 3);
  CHECK(found[0].minute == "2026-01-02T03:04:00.000Z");
  CHECK(found[0].owner == "host-a:100");
  CHECK(found[0].steps == 7);
  CHECK(found[1].minute == "2026-01-02T03:04:00.000Z");
  CHECK(found[1].owner == "host-b:200");
  CHECK(found[1].steps == 5);
  CHECK(found[2].minute == "2026-01-02T03:05:00.000Z");
  CHECK(found[2].owner == "host-a:100");
  CHECK(found[2].steps == 1);
}

TEST_CASE("add without a minute counts in the database's current minute, in UTC",
          "[store][throughput]") {
  ThroughputScratch scratch;
  auto database = scratch.table.open();
  database->ensure_schema();
  store::ThroughputStore throughput(*database);

  const sys_seconds before = this_minute();
  throughput.add("host-a:100", 2);
  throughput.add("host-a:100", 3);
  throughput.add("host-b:200", 4);
  const sys_seconds after = this_minute();

  // The test servers run in a time zone other than UTC (.ci/databases).
  const std::vector<Row> found = rows(*database);
  REQUIRE_FALSE(found.empty());
  long long sum = 0;
  for (const Row& row : found) {
    INFO(row.minute);
    CHECK((row.minute == minute_name(before).substr(0, 16) + ":00.000Z" ||
           row.minute == minute_name(after).substr(0, 16) + ":00.000Z"));
    sum += row.steps;
  }
  CHECK(sum == 9);
  // Two rows, unless the minute turned between two of the adds.
  CHECK(found.size() <= 3);
  if (before == after) CHECK(found.size() == 2);

  const auto last = throughput.last_minutes(3);
  REQUIRE(last.size() == 3);
  CHECK(total(last) == 9);
}

TEST_CASE("last_minutes: exactly N minutes, oldest first, every owner summed, zeros filled",
          "[store][throughput]") {
  ThroughputScratch scratch;
  auto database = scratch.table.open();
  database->ensure_schema();
  store::ThroughputStore throughput(*database);

  const sys_seconds now = this_minute();
  throughput.add("host-a:100", now - 3min, 5);
  throughput.add("host-b:200", now - 3min + 30s, 2);
  throughput.add("host-a:100", now - 1min, 1);
  throughput.add("host-c:300", now - 90min, 100);  // before the window

  const std::vector<store::MinuteSteps> last = throughput.last_minutes(10);
  REQUIRE(last.size() == 10);
  const std::regex shape(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:00Z)");
  for (std::size_t i = 0; i < last.size(); ++i) {
    INFO(i << ": " << last[i].minute);
    CHECK(std::regex_match(last[i].minute, shape));
    if (i > 0) CHECK(last[i - 1].minute < last[i].minute);  // the text sorts as the time
  }
  // Consecutive minutes ending with the current one (or the next, if it turned meanwhile).
  CHECK((last.back().minute == minute_name(now) || last.back().minute == minute_name(now + 1min)));
  CHECK((last.front().minute == minute_name(now - 9min) ||
         last.front().minute == minute_name(now - 8min)));
  CHECK(steps_at(last, minute_name(now - 3min)) == 7);
  CHECK(steps_at(last, minute_name(now - 1min)) == 1);
  CHECK(steps_at(last, minute_name(now - 2min)) == 0);
  CHECK(total(last) == 8);

  const auto hour = throughput.last_minutes(60);
  CHECK(hour.size() == 60);
  CHECK(total(hour) == 8);
  CHECK(throughput.last_minutes(120).size() == 120);
  CHECK(total(throughput.last_minutes(120)) == 108);
  CHECK(throughput.last_minutes(1).size() == 1);
  CHECK(throughput.last_minutes(0).empty());
  CHECK(throughput.last_minutes(-5).empty());
}

TEST_CASE("prune deletes the minutes older than its age, by the database's clock",
          "[store][throughput]") {
  ThroughputScratch scratch;
  auto database = scratch.table.open();
  database->ensure_schema();
  store::ThroughputStore throughput(*database);

  const sys_seconds now = this_minute();
  throughput.add("host-a:100", now - 72h, 1);
  throughput.add("host-b:200", now - 50h, 2);
  throughput.add("host-a:100", now - 47h, 4);
  throughput.add("host-a:100", now - 1min, 8);

  CHECK(throughput.prune(48h) == 2);
  const std::vector<Row> left = rows(*database);
  REQUIRE(left.size() == 2);
  CHECK(left[0].steps == 4);
  CHECK(left[1].steps == 8);
  CHECK(throughput.prune(48h) == 0);
  CHECK(total(throughput.last_minutes(60)) == 8);
}

TEST_CASE("concurrent adds to one row lose nothing", "[store][throughput]") {
  ThroughputScratch scratch;
  auto database = scratch.table.open(3);
  database->ensure_schema();
  store::ThroughputStore throughput(*database);

  const sys_seconds minute = this_minute() - 5min;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        try {
          throughput.add("host-a:100", minute, 1);
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
  const std::vector<Row> found = rows(*database);
  REQUIRE(found.size() == 1);
  CHECK(found[0].steps == 60);
}
