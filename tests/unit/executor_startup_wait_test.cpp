// retry_while_unreachable: a broker or database that is not up yet is waited
// for with a growing delay; one that answers and refuses is not. And which
// connection errors of the database clients mean "not up yet".
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <vector>

#include "program_executor/amqp/amqp_error.hpp"
#include "program_executor/executor/startup_wait.hpp"
#include "program_executor/store/database_unreachable.hpp"

using namespace std::chrono_literals;
using program_executor::amqp::AmqpError;
using program_executor::amqp::BrokerUnreachableError;
using program_executor::amqp::QueueMismatchError;
using program_executor::executor::AwaitedServer;
using program_executor::executor::StartupBackoff;
using program_executor::store::database_unreachable;
using program_executor::store::DatabaseUnreachableError;
using program_executor::store::StoreError;

namespace {

// An attempt that fails as unreachable `failures` times, then succeeds.
struct LateBroker {
  int failures;
  int calls = 0;
  void operator()() {
    ++calls;
    if (calls <= failures) throw BrokerUnreachableError("connecting on amqp://127.0.0.1:1/: refused");
  }
};

const AwaitedServer broker_server{"amqp.waiting", "the broker"};

// The broker's wait, as the daemon calls it.
int retry_while_unreachable(const std::function<void()>& attempt, const StartupBackoff& backoff,
                            const program_executor::executor::StartupPause& pause) {
  return program_executor::executor::retry_while_unreachable<BrokerUnreachableError>(
      broker_server, attempt, backoff, pause);
}

}  // namespace

TEST_CASE("an unreachable broker is retried with a doubling delay up to the longest",
          "[startup]") {
  LateBroker broker{6};
  std::vector<std::chrono::milliseconds> pauses;
  const int attempts = retry_while_unreachable(
      [&] { broker(); }, StartupBackoff{100ms, 1000ms}, [&](std::chrono::milliseconds delay) {
        pauses.push_back(delay);
        return true;
      });
  CHECK(attempts == 7);
  CHECK(broker.calls == 7);
  CHECK(pauses == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms});
}

TEST_CASE("a reachable broker is used at the first attempt, without a pause", "[startup]") {
  LateBroker broker{0};
  int pauses = 0;
  CHECK(retry_while_unreachable([&] { broker(); }, StartupBackoff{}, [&](std::chrono::milliseconds) {
          ++pauses;
          return true;
        }) == 1);
  CHECK(pauses == 0);
}

TEST_CASE("a stop requested during the wait ends it without another attempt", "[startup]") {
  LateBroker broker{100};
  int pauses = 0;
  CHECK(retry_while_unreachable([&] { broker(); }, StartupBackoff{}, [&](std::chrono::milliseconds) {
          return ++pauses < 3;
        }) == 0);
  CHECK(pauses == 3);
  CHECK(broker.calls == 3);
}

TEST_CASE("a broker that answers and refuses is not waited for", "[startup]") {
  int pauses = 0;
  const auto count_pause = [&](std::chrono::milliseconds) {
    ++pauses;
    return true;
  };
  CHECK_THROWS_MATCHES(
      retry_while_unreachable([] { throw AmqpError("logging in as 'guest': ACCESS_REFUSED"); },
                              StartupBackoff{}, count_pause),
      AmqpError, Catch::Matchers::Message("logging in as 'guest': ACCESS_REFUSED"));
  CHECK_THROWS_AS(retry_while_unreachable([] { throw QueueMismatchError("queue 'q': x-dead-letter"); },
                                          StartupBackoff{}, count_pause),
                  QueueMismatchError);
  CHECK_THROWS_AS(retry_while_unreachable([] { throw std::runtime_error("other"); },
                                          StartupBackoff{}, count_pause),
                  std::runtime_error);
  CHECK(pauses == 0);
}

TEST_CASE("the database's wait retries only a database that did not answer", "[startup][store]") {
  int calls = 0;
  int pauses = 0;
  const auto count_pause = [&](std::chrono::milliseconds) {
    ++pauses;
    return true;
  };
  const AwaitedServer database{"database.waiting", "the database"};
  using program_executor::executor::retry_while_unreachable;
  CHECK(retry_while_unreachable<DatabaseUnreachableError>(
            database,
            [&] {
              if (++calls < 3) throw DatabaseUnreachableError("cannot open database (postgresql): refused");
            },
            StartupBackoff{}, count_pause) == 3);
  CHECK(pauses == 2);
  // A refusal is a StoreError but not an unreachable database: no wait.
  CHECK_THROWS_MATCHES(retry_while_unreachable<DatabaseUnreachableError>(
                           database,
                           [] { throw StoreError("cannot open database (postgresql): password authentication failed"); },
                           StartupBackoff{}, count_pause),
                       StoreError, Catch::Matchers::Message(
                                       "cannot open database (postgresql): password authentication failed"));
  // Nor is the broker's error, when the database is waited for.
  CHECK_THROWS_AS(retry_while_unreachable<DatabaseUnreachableError>(
                      database, [] { throw BrokerUnreachableError("refused"); }, StartupBackoff{}, count_pause),
                  BrokerUnreachableError);
  CHECK(pauses == 2);
}

// The texts are those the clients printed here (libpq 15, libmariadb 3.3),
// against the servers of .ci/databases stopped, starting, and refusing.
TEST_CASE("a database that is down or starting is unreachable, one that refuses is not", "[startup][store]") {
  CHECK(database_unreachable("Cannot establish connection to the database.\nconnection to server at "
                             "\"127.0.0.1\", port 5443 failed: Connection refused\n\tIs the server running "
                             "on that host and accepting TCP/IP connections?",
                             false));
  CHECK(database_unreachable("connection to server at \"127.0.0.1\", port 5442 failed: FATAL:  the "
                             "database system is starting up",
                             false));
  CHECK(database_unreachable("connection to server at \"127.0.0.1\", port 5442 failed: FATAL:  the "
                             "database system is shutting down",
                             false));
  CHECK(database_unreachable("connection to server on socket \"/tmp/nosock/.s.PGSQL.5442\" failed: No "
                             "such file or directory",
                             false));
  CHECK(database_unreachable("Can't connect to server on '127.0.0.1' (115)", false));
  // libmariadb classes its own connection errors.
  CHECK(database_unreachable("an error in another language", true));

  CHECK_FALSE(database_unreachable("connection to server at \"127.0.0.1\", port 5442 failed: FATAL:  "
                                   "password authentication failed for user \"pe_test\"",
                                   false));
  CHECK_FALSE(database_unreachable("connection to server at \"127.0.0.1\", port 5442 failed: FATAL:  "
                                   "database \"nope\" does not exist",
                                   false));
  CHECK_FALSE(database_unreachable("Access denied for user 'pe_test'@'localhost' (using password: YES)", false));
  // A typo in the host name would wait forever: it fails at once.
  CHECK_FALSE(database_unreachable("could not translate host name \"no-such-host.invalid\" to address: Name "
                                   "or service not known",
                                   false));
  CHECK_FALSE(database_unreachable("Unknown server host 'no-such-host.invalid' (-2)", false));
  // A missing certificate file is not a missing socket.
  CHECK_FALSE(database_unreachable("could not read root certificate file \"/etc/x.pem\": No such file or "
                                   "directory",
                                   false));
}
