// retry_while_unreachable: a broker that is not up yet is waited for with a
// growing delay; a broker that answers and refuses is not.
#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "program_executor/amqp/amqp_error.hpp"
#include "program_executor/amqp/startup_wait.hpp"

using namespace std::chrono_literals;
using program_executor::amqp::AmqpError;
using program_executor::amqp::BrokerUnreachableError;
using program_executor::amqp::QueueMismatchError;
using program_executor::amqp::retry_while_unreachable;
using program_executor::amqp::StartupBackoff;

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

}  // namespace

TEST_CASE("an unreachable broker is retried with a doubling delay up to the longest",
          "[amqp][startup]") {
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

TEST_CASE("a reachable broker is used at the first attempt, without a pause", "[amqp][startup]") {
  LateBroker broker{0};
  int pauses = 0;
  CHECK(retry_while_unreachable([&] { broker(); }, StartupBackoff{}, [&](std::chrono::milliseconds) {
          ++pauses;
          return true;
        }) == 1);
  CHECK(pauses == 0);
}

TEST_CASE("a stop requested during the wait ends it without another attempt", "[amqp][startup]") {
  LateBroker broker{100};
  int pauses = 0;
  CHECK(retry_while_unreachable([&] { broker(); }, StartupBackoff{}, [&](std::chrono::milliseconds) {
          return ++pauses < 3;
        }) == 0);
  CHECK(pauses == 3);
  CHECK(broker.calls == 3);
}

TEST_CASE("a broker that answers and refuses is not waited for", "[amqp][startup]") {
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
