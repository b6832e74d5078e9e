// The steps the daemons executed per minute, in `<table>_throughput` (schema
// version 4): one row per daemon per minute, which the daemon adds to every
// few seconds and prunes after 48 hours, and which the web API's /stats reads
// (stepsPerMinute, docs/api.md).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace program_executor::store {

class Database;
class Dialect;

/// The name of the throughput table of bookkeeping table `table`.
std::string throughput_table(const std::string& table);

/// The steps all daemons executed in one minute.
struct MinuteSteps {
  std::string minute;  ///< the minute's start, UTC: "YYYY-MM-DDTHH:MM:00Z"
  long long steps = 0;
};

/// Reads and writes the throughput table through the database's pool.
/// Thread-safe; every method leases a session for one operation and throws
/// StoreError when the database fails.
class ThroughputStore {
 public:
  explicit ThroughputStore(Database& database);

  /// Adds `steps` to `owner`'s row of the current minute by the database's
  /// clock (creating it), in one statement: daemons on hosts with skewed
  /// clocks still agree on the minutes. `owner` is the daemon's identity
  /// (host:pid, the prefix of its claims' lease_owner).
  void add(const std::string& owner, long long steps);

  /// Adds `steps` to `owner`'s row of the minute holding `minute` (UTC; the
  /// seconds are dropped).
  void add(const std::string& owner, std::chrono::sys_seconds minute, long long steps);

  /// The steps of all owners per minute for the last `minutes` minutes by the
  /// database's clock, the current (unfinished) minute last: exactly
  /// `minutes` entries, oldest first, 0 for a minute without rows. Empty for
  /// `minutes` <= 0.
  std::vector<MinuteSteps> last_minutes(int minutes);

  /// Deletes the rows of minutes that started more than `older_than` ago by
  /// the database's clock; returns how many.
  long long prune(std::chrono::hours older_than);

 private:
  /// The UTC time bound to `:parameter` as text ("YYYY-MM-DD HH:MM:SS"), in the
  /// minute column's type and format.
  std::string minute_value(const char* parameter) const;

  Database& database_;
  const Dialect& dialect_;
  std::string table_;  ///< quoted
  std::string upsert_;  ///< " ON CONFLICT ..." / " ON DUPLICATE KEY ..."
};

}  // namespace program_executor::store
