#include "floor.hpp"

#include <soci/soci.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <exception>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "program_executor/executor/step_message.hpp"
#include "program_executor/store/dialect.hpp"

namespace program_executor::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Everything the threads share: the count of steps done and the first failure.
struct Shared {
  long long target = 0;
  std::atomic<long long> done{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::exception_ptr error;
  Clock::time_point finished_at{};

  void fail(std::exception_ptr e) {
    std::lock_guard lock(mutex);
    if (!error) error = std::move(e);
    failed = true;
  }
  void count(long long steps) {
    if (done.fetch_add(steps) + steps >= target) {
      std::lock_guard lock(mutex);
      if (finished_at == Clock::time_point{}) finished_at = Clock::now();
    }
  }
  bool over() const { return failed || done >= target; }
};

// "Still running" as the daemon writes it: COALESCE keeps PostgreSQL from
// scanning the partial overdue index (every running program) instead of the
// run_id index on a table without statistics (see SqlProgramStore).
constexpr const char* running = " AND COALESCE(finished_at, errored_at) IS NULL";

// One thread's statements, prepared once on its own session. The read is the
// row's current step; the updates are conditional on it, as the daemon's are.
class StepStatements {
 public:
  StepStatements(soci::session& session, const store::Dialect& dialect, const std::string& table)
      : read_((session.prepare << "SELECT step FROM " + table +
                                      " WHERE run_id = :run_id" + running,
               soci::into(step_), soci::use(run_id_, "run_id"))),
        advance_((session.prepare << "UPDATE " + table + " SET step = step + 1, updated_at = " +
                                         dialect.now() + " WHERE run_id = :run_id AND step = :step",
                  soci::use(run_id_, "run_id"), soci::use(step_, "step"))),
        finish_((session.prepare << "UPDATE " + table + " SET finished_at = " + dialect.now() +
                                        ", updated_at = " + dialect.now() +
                                        " WHERE run_id = :run_id AND step = :step",
                 soci::use(run_id_, "run_id"), soci::use(step_, "step"))) {}

  /// Reads the row of `run_id`, then advances it or, on its last step, finishes it.
  void step(const std::string& run_id, bool last) {
    run_id_ = run_id;
    read_.execute(true);
    if (!read_.got_data()) throw BenchError("floor: no running row for run id " + run_id);
    // Step past the only row: SQLite ends the statement's read transaction
    // only then, and a read snapshot left open would refuse the next write.
    read_.fetch();
    soci::statement& update = last ? finish_ : advance_;
    update.execute(true);
    if (update.get_affected_rows() != 1) throw BenchError("floor: row " + run_id + " did not match");
  }

 private:
  std::string run_id_;
  int step_ = 0;
  soci::statement read_;
  soci::statement advance_;
  soci::statement finish_;
};

// "k3": a bind name. (Appended, not "k" + to_string(i): GCC 12 warns falsely
// about that at -O3, -Wrestrict.)
std::string parameter(char prefix, std::size_t index) {
  std::string name(1, prefix);
  name += std::to_string(index);
  return name;
}

// The pipelined loop's statements: one SELECT for the rows of a whole batch,
// one UPDATE for the rows it advances and one for those it finishes, each
// conditional on the step read, as above. Prepared once per batch size.
class BatchStatements {
 public:
  struct Item {
    std::string run_id;
    bool last = false;
  };

  BatchStatements(soci::session& session, const store::Dialect& dialect, std::string table, std::size_t max)
      : session_(session),
        now_(dialect.now()),
        table_(std::move(table)),
        max_(max),
        read_keys_(max),
        read_ids_(max + 1),
        read_steps_(max + 1),
        advance_keys_(max),
        advance_steps_(max),
        finish_keys_(max),
        finish_steps_(max) {}

  /// Reads and updates the rows of `items`, inside the caller's transaction.
  void step(const std::vector<Item>& items) {
    for (std::size_t i = 0; i < items.size(); ++i) read_keys_[i] = items[i].run_id;
    // One more than a batch can match: the fetch then runs to the end of the
    // result, which on SQLite ends the statement's read snapshot (left open,
    // it would make the next BEGIN IMMEDIATE fail with "database is locked").
    read_ids_.resize(max_ + 1);
    read_steps_.resize(max_ + 1);
    soci::statement& read = statement(reads_, items.size(), [&](std::size_t n) {
      std::string sql = "SELECT run_id, step FROM " + table_ + " WHERE run_id IN (";
      for (std::size_t i = 0; i < n; ++i) {
        sql += i ? ", :k" : ":k";
        sql += std::to_string(i);
      }
      sql += std::string(")") + running;
      auto prepared = (session_.prepare << sql, soci::into(read_ids_), soci::into(read_steps_));
      for (std::size_t i = 0; i < n; ++i) prepared, soci::use(read_keys_[i], parameter('k', i));
      return std::make_unique<soci::statement>(prepared);
    });
    read.execute(true);
    if (read_ids_.size() != items.size()) throw BenchError("floor: a row of the batch is not running");
    std::size_t advances = 0, finishes = 0;
    for (const Item& item : items) {
      const auto found = std::find(read_ids_.begin(), read_ids_.end(), item.run_id) - read_ids_.begin();
      const int step = read_steps_[static_cast<std::size_t>(found)];
      if (item.last) {
        finish_keys_[finishes] = item.run_id;
        finish_steps_[finishes++] = step;
      } else {
        advance_keys_[advances] = item.run_id;
        advance_steps_[advances++] = step;
      }
    }
    update(false, advances);
    update(true, finishes);
  }

 private:
  using Cache = std::map<std::size_t, std::unique_ptr<soci::statement>>;

  template <class Prepare>
  soci::statement& statement(Cache& cache, std::size_t n, Prepare prepare) {
    auto& slot = cache[n];
    if (!slot) slot = prepare(n);
    return *slot;
  }

  void update(bool last, std::size_t n) {
    if (n == 0) return;
    auto& keys = last ? finish_keys_ : advance_keys_;
    auto& steps = last ? finish_steps_ : advance_steps_;
    soci::statement& update = statement(last ? finishes_ : advances_, n, [&](std::size_t count) {
      std::string sql = "UPDATE " + table_ + " SET " +
                        (last ? "finished_at = " + now_ : std::string("step = step + 1")) +
                        ", updated_at = " + now_ + " WHERE ";
      for (std::size_t i = 0; i < count; ++i) {
        const std::string index = std::to_string(i);
        if (i > 0) sql += " OR ";
        sql += "(run_id = :r";
        sql += index;
        sql += " AND step = :s";
        sql += index;
        sql += ")";
      }
      auto prepared = (session_.prepare << sql);
      for (std::size_t i = 0; i < count; ++i) {
        prepared, soci::use(keys[i], parameter('r', i)), soci::use(steps[i], parameter('s', i));
      }
      return std::make_unique<soci::statement>(prepared);
    });
    update.execute(true);
    if (update.get_affected_rows() != static_cast<long long>(n)) {
      throw BenchError("floor: a row of the batch did not match");
    }
  }

  soci::session& session_;
  std::string now_;
  std::string table_;
  std::size_t max_;
  // Bound by reference into the prepared statements: sized once, never moved.
  std::vector<std::string> read_keys_;
  std::vector<std::string> read_ids_;
  std::vector<int> read_steps_;
  std::vector<std::string> advance_keys_;
  std::vector<int> advance_steps_;
  std::vector<std::string> finish_keys_;
  std::vector<int> finish_steps_;
  Cache reads_, advances_, finishes_;
};

void work(const FloorSettings& settings, BenchTable& table, Shared& shared, std::latch& ready,
          std::latch& go) {
  std::optional<AmqpLink> consumer;
  std::optional<AmqpLink> publisher;
  std::optional<store::SessionLease> lease;
  std::optional<StepStatements> statements;
  std::optional<BatchStatements> batch_statements;
  try {
    consumer.emplace(settings.broker);
    publisher.emplace(settings.broker);
    publisher->enable_confirms();
    consumer->set_prefetch(settings.pipelined ? settings.batch : settings.prefetch);
    lease.emplace(table.database());
    statements.emplace(lease->session(), table.database().dialect(), table.quoted());
    batch_statements.emplace(lease->session(), table.database().dialect(), table.quoted(),
                             static_cast<std::size_t>(settings.batch));
  } catch (...) {
    shared.fail(std::current_exception());
  }
  ready.count_down();
  go.wait();
  if (shared.failed) return;
  try {
    const store::Dialect& dialect = table.database().dialect();
    soci::session& session = lease->session();
    consumer->consume(settings.queue);
    std::vector<Envelope> batch;
    const std::size_t batch_size = settings.pipelined ? static_cast<std::size_t>(settings.batch) : 1;
    while (!shared.over()) {
      batch.clear();
      if (auto first = consumer->next(std::chrono::milliseconds(50))) {
        batch.push_back(std::move(*first));
      } else {
        continue;
      }
      while (batch.size() < batch_size) {
        auto more = consumer->next(std::chrono::microseconds(0));
        if (!more) break;
        batch.push_back(std::move(*more));
      }
      if (!settings.pipelined) {
        const executor::StepMessage message = executor::parse_step_message(batch.front().body);
        const bool last = message.jobs.size() == 1;
        statements->step(message.run_id, last);  // autocommit: the update commits on its own
        if (!last) {
          publisher->publish(settings.queue, executor::next_step_body(message));
          publisher->wait_confirms();
        }
        consumer->ack(batch.front().delivery_tag, false);
      } else {
        std::vector<std::string> next_bodies;
        std::vector<BatchStatements::Item> items;
        for (const Envelope& envelope : batch) {
          const executor::StepMessage message = executor::parse_step_message(envelope.body);
          const bool last = message.jobs.size() == 1;
          items.push_back({message.run_id, last});
          if (!last) next_bodies.push_back(executor::next_step_body(message));
        }
        dialect.begin_write(session);
        try {
          batch_statements->step(items);
          dialect.commit(session);
        } catch (...) {
          dialect.rollback(session);
          throw;
        }
        for (const std::string& body : next_bodies) publisher->publish(settings.queue, body);
        publisher->wait_confirms();
        consumer->ack(batch.back().delivery_tag, true);  // the batch is every unacked delivery
      }
      shared.count(static_cast<long long>(batch.size()));
    }
  } catch (...) {
    shared.fail(std::current_exception());
  }
}

}  // namespace

FloorResult run_floor(const FloorSettings& settings, BenchTable& table) {
  Shared shared;
  shared.target = static_cast<long long>(settings.programs) * settings.jobs;
  std::latch ready(settings.threads);
  std::latch go(1);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(settings.threads));
  for (int i = 0; i < settings.threads; ++i) {
    threads.emplace_back(work, std::cref(settings), std::ref(table), std::ref(shared), std::ref(ready),
                         std::ref(go));
  }
  ready.wait();
  const auto started = Clock::now();
  go.count_down();
  for (auto& thread : threads) thread.join();
  if (shared.error) std::rethrow_exception(shared.error);
  FloorResult result;
  result.steps = shared.done;
  result.seconds = std::chrono::duration<double>(shared.finished_at - started).count();
  return result;
}

}  // namespace program_executor::bench
