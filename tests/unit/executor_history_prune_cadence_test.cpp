// The attempt history's pruning cadence (HistoryPruneCadence): a backlog
// drains in batches a short pause apart, a table within its retention is
// looked at once an hour, a failure waits a minute. Time is passed in: no
// test sleeps.
#include <algorithm>
#include <chrono>

#include <catch2/catch.hpp>

#include "program_executor/executor/recovery_sweeper.hpp"

using program_executor::executor::HistoryPruneCadence;
using namespace std::chrono_literals;
using Clock = HistoryPruneCadence::Clock;

namespace {
const Clock::time_point t0{std::chrono::hours(1000)};
}

TEST_CASE(
    "the defaults: at least 100 ms and 9 times the batch between backlog batches, an hour when "
    "idle, a minute after a failure") {
  const HistoryPruneCadence::Settings settings;
  CHECK(settings.backlog_pause == 100ms);
  CHECK(settings.pause_factor == 9);
  CHECK(settings.idle_interval == 1h);
  CHECK(settings.retry_after == 1min);
}

TEST_CASE("the first batch is due at once") {
  const HistoryPruneCadence cadence(t0);
  CHECK(cadence.due(t0));
  CHECK_FALSE(cadence.due(t0 - 1ms));
  CHECK_FALSE(cadence.draining());
}

TEST_CASE("a batch that deleted rows is followed by the next one after the pause") {
  HistoryPruneCadence cadence(t0);
  cadence.pruned(t0, t0 + 5ms, 1000);
  CHECK(cadence.draining());
  CHECK(cadence.next() == t0 + 105ms);
  CHECK_FALSE(cadence.due(t0 + 104ms));
  CHECK(cadence.due(t0 + 105ms));
}

TEST_CASE("a short batch keeps draining: another daemon may have taken some of its rows") {
  HistoryPruneCadence cadence(t0);
  cadence.pruned(t0, t0 + 5ms, 17);
  CHECK(cadence.draining());
  CHECK(cadence.next() == t0 + 105ms);
}

TEST_CASE(
    "a batch over 11 ms waits 9 times what it took: pruning holds the database at most a tenth of "
    "the time") {
  HistoryPruneCadence cadence(t0);
  cadence.pruned(t0, t0 + 80ms, 1000);
  CHECK(cadence.next() == t0 + 80ms + 720ms);
  cadence.pruned(t0 + 800ms, t0 + 811ms, 1000);
  CHECK(cadence.next() == t0 + 811ms + 100ms);
}

TEST_CASE("a batch that seems to end before it began pauses the minimum") {
  HistoryPruneCadence cadence(t0);
  cadence.pruned(t0 + 5ms, t0, 1000);
  CHECK(cadence.next() == t0 + 100ms);
}

TEST_CASE("an empty batch ends the backlog: the next look is an hour later") {
  HistoryPruneCadence cadence(t0);
  cadence.pruned(t0, t0 + 5ms, 1000);
  cadence.pruned(t0 + 105ms, t0 + 106ms, 0);
  CHECK_FALSE(cadence.draining());
  CHECK(cadence.next() == t0 + 106ms + 1h);
  CHECK_FALSE(cadence.due(t0 + 1h));
}

TEST_CASE("a failed batch is tried again a minute later, and the backlog resumes after it") {
  HistoryPruneCadence cadence(t0);
  cadence.pruned(t0, t0 + 5ms, 1000);
  cadence.failed(t0 + 200ms);
  CHECK_FALSE(cadence.draining());
  CHECK(cadence.next() == t0 + 200ms + 1min);
  cadence.pruned(t0 + 1min + 200ms, t0 + 1min + 210ms, 1000);
  CHECK(cadence.draining());
  CHECK(cadence.next() == t0 + 1min + 310ms);
}

TEST_CASE("the settings are the caller's") {
  HistoryPruneCadence cadence(t0, {20ms, 3, 10min, 5s});
  cadence.pruned(t0, t0 + 1ms, 1);
  CHECK(cadence.next() == t0 + 21ms);
  cadence.pruned(t0, t0 + 10ms, 1);
  CHECK(cadence.next() == t0 + 40ms);
  cadence.pruned(t0 + 21ms, t0 + 22ms, 0);
  CHECK(cadence.next() == t0 + 22ms + 10min);
  cadence.failed(t0);
  CHECK(cadence.next() == t0 + 5s);
}

TEST_CASE("a backlog of 1,000,000 rows drains in minutes, not an hour, at 1000 rows a batch") {
  // The sweeper's loop as composition_root runs it: a 100 ms tick, a batch
  // whenever one is due, each batch taking 10 ms (PostgreSQL's order).
  HistoryPruneCadence cadence(t0);
  long long left = 1000000;
  Clock::time_point now = t0;
  int batches = 0;
  while (left > 0 && now < t0 + 1h) {
    if (cadence.due(now)) {
      const long long deleted = std::min(left, 1000LL);
      left -= deleted;
      ++batches;
      cadence.pruned(now, now + 10ms, deleted);
      now += 10ms;
    }
    now += 100ms;
  }
  CHECK(left == 0);
  CHECK(batches == 1000);
  CHECK(now - t0 <= 4min);
}

TEST_CASE(
    "a slow backlog (80 ms a batch, SQLite on a busy disk) still drains within the half hour") {
  HistoryPruneCadence cadence(t0);
  long long left = 1000000;
  Clock::time_point now = t0;
  Clock::duration busy{};
  while (left > 0 && now < t0 + 1h) {
    if (cadence.due(now)) {
      left -= std::min(left, 1000LL);
      cadence.pruned(now, now + 80ms, 1000);
      now += 80ms;
      busy += 80ms;
    }
    now += 100ms;
  }
  CHECK(left == 0);
  CHECK(now - t0 <= 30min);
  CHECK(busy * 10 <= now - t0);
}
