// Connection loss on the configured server database (PE_TEST_DATABASE
// postgresql, mysql or odbc): the test kills the store's own server sessions
// from a second connection, as pg_terminate_backend / KILL or a server restart
// would. The operation in progress fails with StoreError, leaves nothing half
// written, and the next operations work again.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "store_test_backend.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The server's id of the connection behind `session`.
long long connection_id(store::Database& database, soci::session& session) {
  long long id = 0;
  session << (database.dialect().name() == "mysql" ? "SELECT CONNECTION_ID()"
                                                   : "SELECT pg_backend_pid()"),
      soci::into(id);
  return id;
}

// Kills server connections from a connection of its own.
class Killer {
 public:
  explicit Killer(const test::ScratchTable& table) : database_(table.open(1)) {}
  /// False if there was no such connection (any more).
  bool kill(long long id) {
    soci::session session(database_->pool());
    bool killed = true;
    if (database_->dialect().name() == "mysql") {
      try {
        session << "KILL " + std::to_string(id);
      } catch (const soci::soci_error&) {
        killed = false;  // "Unknown thread id"
      }
    } else {
      int result = 0;
      session << "SELECT CASE WHEN pg_terminate_backend(" + std::to_string(id) +
                     ") THEN 1 ELSE 0 END",
          soci::into(result);
      killed = result == 1;
    }
    // pg_terminate_backend only signals: give the backend a moment to go.
    std::this_thread::sleep_for(100ms);
    return killed;
  }

 private:
  std::unique_ptr<store::Database> database_;
};

bool skip_on_sqlite() {
  if (test::server_backend()) return false;
  SUCCEED("SQLite has no connection to lose (PE_TEST_DATABASE=sqlite3)");
  return true;
}

}  // namespace

TEST_CASE("a killed connection fails the operation in progress, and the next one reconnects",
          "[store][reconnect]") {
  if (skip_on_sqlite()) return;
  test::ScratchTable table;
  auto database = table.open(1);
  std::atomic<int> reconnects{0};
  database->on_reconnect([&] { ++reconnects; });
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"r", {"a", "b"}, json::object(), json::object()});
  Killer killer(table);

  long long id = 0;
  {
    store::SessionLease lease(*database);
    id = connection_id(*database, lease.session());
  }
  REQUIRE(killer.kill(id));
  CHECK_THROWS_WITH(store->find("r"), Catch::Contains("connection lost"));
  auto row = store->find("r");  // re-established
  REQUIRE(row);
  CHECK(row->jobs == std::vector<std::string>{"a", "b"});
  CHECK(reconnects == 1);
  {
    store::SessionLease lease(*database);
    CHECK(connection_id(*database, lease.session()) != id);
  }
}

TEST_CASE("statements kept on a killed connection are dropped with it and prepared again",
          "[store][reconnect]") {
  if (skip_on_sqlite()) return;
  test::ScratchTable table;
  auto database = table.open(1);
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"p", {"a", "b", "c"}, json::object(), json::object()});
  // A step's claim as the daemon takes it: on the message's word (a statement
  // kept on the session, where the database can), else by step.
  const auto claim = [&](int step) {
    const auto unread = store->claim_unread({{"p", 3 - step}}, "w", 30s).front();
    return unread ? unread->claim.token : store->claim("p", step, "w", 30s).value().token;
  };
  const auto commit = [&](int step, std::int64_t token) {
    return store->commit_all({{"p", step, token, step == 2}}, 1min) == std::vector<bool>{true};
  };
  const auto kill_our_connection = [&] {
    Killer killer(table);
    store::SessionLease lease(*database);
    return killer.kill(connection_id(*database, lease.session()));
  };
  CHECK(commit(0, claim(0)));  // both statements kept on the session

  REQUIRE(kill_our_connection());
  CHECK_THROWS_WITH(claim(1), Catch::Contains("connection lost"));
  // Re-established (the old connection's statements went before it did), and
  // the same statements are prepared again on the new one.
  CHECK(commit(1, claim(1)));

  const std::int64_t token = claim(2);
  REQUIRE(kill_our_connection());
  CHECK_THROWS_WITH(commit(2, token), Catch::Contains("connection lost"));
  CHECK(commit(2, token));  // the claim outlived the connection
  CHECK(store->find("p")->finished_at);
}

TEST_CASE("a connection killed inside a transaction leaves the row as it was", "[store][reconnect]") {
  if (skip_on_sqlite()) return;
  test::ScratchTable table;
  auto database = table.open(1);
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"t", {"a"}, json::object(), {{"a", {{"n", 1}}}}});
  const auto token = store->claim("t", 0, "test", 30s)->token;
  Killer killer(table);
  long long id = 0;
  {
    store::SessionLease lease(*database);
    id = connection_id(*database, lease.session());
  }
  // The row is locked (FOR UPDATE) and read; the connection dies before the write.
  CHECK_THROWS_AS(store->update_job_data("t", "a", token,
                                         [&](const json&) {
                                           CHECK(killer.kill(id));
                                           return json{{"n", 2}};
                                         }),
                  store::StoreError);
  CHECK(store->find("t")->job_data == json{{"a", {{"n", 1}}}});
  // The lock died with the connection: the next update goes through.
  store->update_job_data("t", "a", token, [](const json&) { return json{{"n", 3}}; });
  CHECK(store->find("t")->job_data == json{{"a", {{"n", 3}}}});
}

TEST_CASE("when every pooled connection dies (a server restart), one operation fails, not one per session",
          "[store][reconnect]") {
  if (skip_on_sqlite()) return;
  test::ScratchTable table;
  auto database = table.open(3);
  std::atomic<int> reconnects{0};
  database->on_reconnect([&] { ++reconnects; });
  database->ensure_schema();
  auto store = database->program_store();
  store->insert({"s", {"a"}, json::object(), json::object()});
  std::vector<long long> ids;
  {
    store::SessionLease a(*database), b(*database), c(*database);  // all three sessions
    for (auto* lease : {&a, &b, &c}) ids.push_back(connection_id(*database, lease->session()));
  }
  Killer killer(table);
  for (long long id : ids) REQUIRE(killer.kill(id));
  // The operation that meets the first dead connection fails...
  CHECK_THROWS_WITH(store->find("s"), Catch::Contains("connection lost"));
  CHECK(reconnects == 0);
  {
    // ...and every other session is checked when it is next borrowed, and
    // re-established before anyone uses it: borrowing all three fails nothing.
    store::SessionLease a(*database), b(*database), c(*database);
    std::set<long long> fresh;
    for (auto* lease : {&a, &b, &c}) fresh.insert(connection_id(*database, lease->session()));
    CHECK(fresh.size() == 3);
    for (long long id : ids) CHECK(fresh.count(id) == 0);
  }
  CHECK(reconnects == 3);
  for (int i = 0; i < 6; ++i) {
    const auto row = store->find("s");
    CHECK(row);
  }
  CHECK(reconnects == 3);
}

TEST_CASE("concurrent steps survive killed connections: every failure is a StoreError",
          "[store][reconnect]") {
  if (skip_on_sqlite()) return;
  test::ScratchTable table;
  auto database = table.open(4);
  database->ensure_schema();
  auto store = database->program_store();
  constexpr int programs = 20;
  for (int p = 0; p < programs; ++p) {
    store->insert({"k" + std::to_string(p), {"a", "b", "c"}, json::object(), json::object()});
  }
  std::atomic<bool> done{false};
  std::atomic<int> other_errors{0};
  // The server ids of our pool's connections, as the workers see them (only
  // ours: other tests share the server and its user).
  std::mutex ids_mutex;
  std::vector<long long> ids;
  const auto note_connection = [&] {
    store::SessionLease lease(*database);
    try {
      const long long id = connection_id(*database, lease.session());
      std::lock_guard lock(ids_mutex);
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    } catch (const soci::soci_error&) {
      lease.connection_lost();
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      // Each worker drives its programs through their steps, retrying what
      // fails the way the step processor does (the retry queue, here a loop).
      for (int p = t; p < programs; p += 4) {
        const std::string run_id = "k" + std::to_string(p);
        for (int attempts = 0; attempts < 200; ++attempts) {
          try {
            note_connection();
            auto row = store->find(run_id);
            if (row->finished_at) break;
            // The daemon's way: on the message's word first (a statement
            // kept on the connection, where the database can), then by step.
            const std::string worker = "w" + std::to_string(t);
            const auto unread = store->claim_unread({{run_id, 3 - row->step}}, worker, 30s).front();
            auto claim = unread ? std::optional(unread->claim) : store->claim(run_id, row->step, worker, 30s);
            if (!claim) {
              // Our own claim from an attempt whose answer was lost: take it back.
              store->release(run_id, row->step, row->lease_token, 1s);
              continue;
            }
            store->update_job_data(run_id, "a", claim->token, [](const json& c) {
              return json{{"n", c.value("n", 0) + 1}};
            });
            std::this_thread::sleep_for(10ms);  // the job
            store->commit_all({{run_id, row->step, claim->token, row->step + 1 == 3}}, 1min);
          } catch (const store::StoreError&) {
            std::this_thread::sleep_for(5ms);
          } catch (...) {
            ++other_errors;
          }
        }
      }
    });
  }
  int kills = 0;
  std::thread chaos([&] {
    Killer killer(table);
    for (int round = 0; round < 8 && !done; ++round) {
      std::this_thread::sleep_for(60ms);
      long long victim = 0;
      {
        std::lock_guard lock(ids_mutex);
        if (ids.empty()) continue;
        victim = ids[static_cast<std::size_t>(round) % ids.size()];
      }
      if (killer.kill(victim)) ++kills;
    }
  });
  for (auto& worker : workers) worker.join();
  done = true;
  chaos.join();
  CHECK(other_errors == 0);
  CHECK(kills >= 2);
  auto fresh = table.open(1);  // ours may still hold a killed connection
  auto check = fresh->program_store();
  for (int p = 0; p < programs; ++p) {
    auto row = check->find("k" + std::to_string(p));
    INFO(row->to_json().dump());
    CHECK(row->finished_at);
    CHECK(row->step == 2);
  }
}
