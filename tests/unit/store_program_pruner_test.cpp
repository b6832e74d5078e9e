// `prune --finished-before`: the cutoff's two forms and the batch loop, against
// the in-memory store (the DELETE itself is tested per backend in
// tests/integration/store_prune_test.cpp).
#include <thread>

#include <catch2/catch.hpp>

#include "program_executor/store/program_pruner.hpp"
#include "support/fakes.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

system_clock::time_point utc(int year, int month, int day, int hour = 0, int minute = 0,
                             int second = 0) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return system_clock::from_time_t(timegm(&tm));
}

// A program that ran its one step to the end.
void finished_program(test::FakeProgramStore& store, const std::string& run_id) {
  store.insert({run_id, {"a"}, {}, {}});
  const auto claim = store.claim(run_id, 0, "w", 30s);
  REQUIRE(claim);
  REQUIRE(store.finish(run_id, 0, claim->token));
}

}  // namespace

TEST_CASE("prune: --finished-before takes a duration back from now") {
  const auto now = utc(2026, 3, 10, 12);
  CHECK(store::parse_cutoff("90d", now) == now - 90 * 24h);
  CHECK(store::parse_cutoff("12h", now) == now - 12h);
  CHECK(store::parse_cutoff("30m", now) == now - 30min);
  CHECK(store::parse_cutoff("45s", now) == now - 45s);
  CHECK(store::parse_cutoff("2w", now) == now - 14 * 24h);
  CHECK(store::parse_cutoff("0s", now) == now);
}

TEST_CASE("prune: --finished-before takes a UTC timestamp, with or without a time") {
  const auto now = utc(2026, 3, 10, 12);
  CHECK(store::parse_cutoff("2026-01-31", now) == utc(2026, 1, 31));
  CHECK(store::parse_cutoff("2026-01-31T12:30:05Z", now) == utc(2026, 1, 31, 12, 30, 5));
  CHECK(store::parse_cutoff("2026-01-31 12:30:05", now) == utc(2026, 1, 31, 12, 30, 5));
  CHECK(store::parse_cutoff("2026-01-31T12:30:05.250Z", now) ==
        utc(2026, 1, 31, 12, 30, 5) + 250ms);
}

TEST_CASE(
    "prune: --finished-before refuses what it cannot read, and the future, naming the forms") {
  const auto now = utc(2026, 3, 10, 12);
  for (const char* bad :
       {"", "90", "d", "-5d", "5y", "5 d", "2026-02-30", "2026-13-01", "2026-01-31T25:00:00Z",
        "2026-01-31T12:00:00+02:00", "2026-1-31", "2026-01-31T12:00:00.Z", "1000000000d"}) {
    INFO(bad);
    CHECK_THROWS_WITH(store::parse_cutoff(bad, now), Catch::Contains("--finished-before") &&
                                                         Catch::Contains("DURATION") &&
                                                         Catch::Contains("TIMESTAMP"));
  }
  CHECK_THROWS_WITH(store::parse_cutoff("2026-03-11", now), Catch::Contains("lies in the future"));
}

TEST_CASE("prune deletes ended programs batch by batch until a batch comes back short") {
  test::FakeProgramStore store;
  for (int i = 0; i < 7; ++i) finished_program(store, "done-" + std::to_string(i));
  store.insert({"failed", {"a"}, {}, {}});
  REQUIRE(store.cancel("failed", "cancelled"));
  store.insert({"running", {"a", "b"}, {}, {}});

  std::vector<long long> progress;
  const auto report = store::prune_ended(
      store, system_clock::now() + 1h, 3,
      [&](const store::PruneReport& so_far) { progress.push_back(so_far.deleted); });
  CHECK(report.deleted == 8);
  CHECK(report.batches == 3);  // 3 + 3 + 2: the short batch ends it
  CHECK(store.delete_batches == 3);
  CHECK(progress == std::vector<long long>{3, 6, 8});
  CHECK(store.find("running"));  // never a running program
  CHECK_FALSE(store.find("failed"));
  CHECK_FALSE(store.find("done-0"));
}

TEST_CASE("prune keeps programs that ended after the cutoff") {
  test::FakeProgramStore store;
  finished_program(store, "old");
  const auto cutoff = system_clock::now();
  // Ended after the cutoff: the age is recomputed per batch from the same moment.
  std::this_thread::sleep_for(5ms);
  finished_program(store, "new");
  const auto report = store::prune_ended(store, cutoff + 2ms, 1000);
  CHECK(report.deleted == 1);
  CHECK(report.batches == 1);
  CHECK_FALSE(store.find("old"));
  CHECK(store.find("new"));
  CHECK_THROWS_AS(store::prune_ended(store, cutoff, 0), std::invalid_argument);
}
