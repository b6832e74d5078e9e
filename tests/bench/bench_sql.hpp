// The bench's SQL around a programs table: created with the daemon's own
// migrations (so the floor's table has the same columns and indexes as the
// daemon's), filled in bulk, watched until every program ended, dropped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "program_executor/store/database.hpp"

namespace program_executor::bench {

class BenchTable {
 public:
  /// Opens `pool_size` sessions on the database; creates nothing yet.
  BenchTable(const std::string& backend, const std::string& connection, const std::string& table,
             std::size_t pool_size);
  /// Drops the table unless keep() was called.
  ~BenchTable();
  BenchTable(const BenchTable&) = delete;
  BenchTable& operator=(const BenchTable&) = delete;

  store::Database& database() noexcept { return *database_; }
  const std::string& name() const noexcept { return table_; }
  /// The table name quoted for SQL.
  std::string quoted() const;

  /// Creates the table (and its schema version and throughput tables) as the daemon would.
  void create();
  /// DROP TABLE of all three (programs, schema version, throughput); safe to call twice.
  void drop();

  /// `rows` finished filler programs, inserted by the server itself in
  /// chunks (generate_series, a recursive CTE, MariaDB's sequence engine).
  void fill_finished(long long rows);

  /// `rows` programs in the mix of a table that has been in use for a while,
  /// inserted by the server itself as fill_finished() does. By id modulo 200:
  /// 1-4 errored (2 %), 5 cancelled (0.5 %), 6 running (0.5 %, expected
  /// within the hour), the rest finished (97 %), spread evenly over the ids.
  /// Their first job is `bench.job<id % 20>`; every 3rd also runs
  /// `bench.load`, every 10,000th `bench.rare` (rare_job()).
  void fill_mixed(long long rows);
  /// `rows` attempts in `<table>_attempts` that ended `age_days` ago (older
  /// than the daemon's history.retention, so due for pruning), inserted by
  /// the server itself in chunks as fill_finished() does. Returns the highest
  /// id among them: count_attempts_up_to() of it counts those not pruned yet.
  std::int64_t seed_old_attempts(long long rows, int age_days);
  /// Rows of `<table>_attempts` with id <= `id` (through the primary key).
  long long count_attempts_up_to(std::int64_t id);

  /// The job name of fill_mixed() programs number `index` (0-19) has first.
  static std::string mixed_job(int index);
  /// The job fill_mixed() gives one program in 10,000.
  static std::string rare_job() { return "bench.rare"; }

  /// Inserts `count` running programs of `jobs` at step 0 (one transaction
  /// per 1000 rows), expected to move within an hour so that the recovery
  /// sweeper leaves the backlog alone. Program i gets the job data
  /// `job_data(i)` (JSON text; none given: "{}"). Returns their run ids, in id order.
  std::vector<std::string> insert_programs(int count, const std::vector<std::string>& jobs,
                                           const std::function<std::string(int)>& job_data = {});

  /// Highest id so far (0 when empty).
  std::int64_t max_id();
  /// Rows with id > `after` (MySQL's auto-increment may skip ids after a bulk
  /// insert, so this is not max_id() - after).
  long long rows_after(std::int64_t after);
  /// Programs with id > `after` that ended: finished and errored.
  struct Ended {
    long long finished = 0;
    long long errored = 0;
  };
  Ended ended_after(std::int64_t after);

 private:
  std::string table_;
  std::unique_ptr<store::Database> database_;
  bool created_ = false;
};

/// Finds out cheaply, many times a second, whether every program with
/// id > `after` has ended: keeps a low-water mark (the lowest id still
/// running), so each poll reads only a few rows through the primary key
/// even in a table of millions of rows.
class EndWatcher {
 public:
  EndWatcher(BenchTable& table, std::int64_t after);
  ~EndWatcher();
  EndWatcher(const EndWatcher&) = delete;
  EndWatcher& operator=(const EndWatcher&) = delete;

  bool all_ended();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Polls one program by run id until it has finished (latency samples).
class FinishPoller {
 public:
  explicit FinishPoller(BenchTable& table);
  ~FinishPoller();
  FinishPoller(const FinishPoller&) = delete;
  FinishPoller& operator=(const FinishPoller&) = delete;

  bool finished(const std::string& run_id);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace program_executor::bench
