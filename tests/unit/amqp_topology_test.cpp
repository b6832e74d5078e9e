// The queue names and x-arguments program-executor-js declares, exactly.
#include <catch2/catch.hpp>
#include <algorithm>
#include <stdexcept>
#include <string>

#include "program_executor/amqp/queue_topology.hpp"

using program_executor::amqp::QueueArgument;
using program_executor::amqp::QueueSpec;
using program_executor::amqp::QueueTopology;

namespace {

const QueueArgument& argument(const QueueSpec& spec, const std::string& name) {
  for (const auto& a : spec.arguments) {
    if (a.name == name) return a;
  }
  FAIL("queue " << spec.name << " has no argument " << name);
  throw std::logic_error("unreachable");
}

std::string text(const QueueArgument& a) {
  REQUIRE(std::holds_alternative<std::string>(a.value));
  return std::get<std::string>(a.value);
}

}  // namespace

TEST_CASE("topology names the main, retry and parked queues", "[amqp][topology]") {
  const QueueTopology t("program-executor", true);
  CHECK(t.main_queue() == "program-executor");
  CHECK(t.retry_queue() == "program-executor-retry-1000");
  CHECK(t.parked_queue() == "program-executor-parked");
  CHECK(t.durable());
}

TEST_CASE("declarations carry the original's dead-letter arguments", "[amqp][topology]") {
  const QueueTopology t("jobs", false);
  const auto specs = t.declarations();
  REQUIRE(specs.size() == 3);

  const QueueSpec& main = specs[0];
  CHECK(main.name == "jobs");
  CHECK_FALSE(main.durable);
  REQUIRE(main.arguments.size() == 2);
  CHECK(text(argument(main, "x-dead-letter-exchange")).empty());
  CHECK(text(argument(main, "x-dead-letter-routing-key")) == "jobs-retry-1000");

  const QueueSpec& retry = specs[1];
  CHECK(retry.name == "jobs-retry-1000");
  CHECK_FALSE(retry.durable);
  REQUIRE(retry.arguments.size() == 3);
  const auto& ttl = argument(retry, "x-message-ttl");
  REQUIRE(std::holds_alternative<std::int32_t>(ttl.value));
  CHECK(std::get<std::int32_t>(ttl.value) == 1000);
  CHECK(text(argument(retry, "x-dead-letter-exchange")).empty());
  CHECK(text(argument(retry, "x-dead-letter-routing-key")) == "jobs");

  const QueueSpec& parked = specs[2];
  CHECK(parked.name == "jobs-parked");
  CHECK_FALSE(parked.durable);
  CHECK(parked.arguments.empty());
}

TEST_CASE("durability applies to every queue", "[amqp][topology]") {
  for (const auto& spec : QueueTopology("q", true).declarations()) CHECK(spec.durable);
  for (const auto& spec : QueueTopology("q", false).declarations()) CHECK_FALSE(spec.durable);
}

TEST_CASE("an empty or too long queue name is rejected", "[amqp][topology]") {
  CHECK_THROWS_AS(QueueTopology("", true), std::invalid_argument);
  CHECK_THROWS_AS(QueueTopology(std::string(245, 'q'), true), std::invalid_argument);
  CHECK_NOTHROW(QueueTopology(std::string(244, 'q'), true));  // 244 + "-retry-1000" = 255
}

TEST_CASE("quorum queues carry their type, and the delivery limit on the main queue", "[amqp]") {
  const auto specs = QueueTopology("q", true, true, 5).declarations();
  for (const auto& spec : specs) {
    INFO(spec.name);
    CHECK(std::any_of(spec.arguments.begin(), spec.arguments.end(), [](const QueueArgument& a) {
      return a.name == "x-queue-type" && std::get<std::string>(a.value) == "quorum";
    }));
  }
  const auto has_limit = [](const QueueSpec& spec) {
    return std::any_of(spec.arguments.begin(), spec.arguments.end(), [](const QueueArgument& a) {
      return a.name == "x-delivery-limit" && std::get<std::int32_t>(a.value) == 5;
    });
  };
  CHECK(has_limit(specs[0]));
  CHECK_FALSE(has_limit(specs[1]));
  CHECK_THROWS_WITH(QueueTopology("q", false, true), Catch::Contains("always durable"));
  // Classic queues stay exactly as program-executor-js declares them.
  for (const auto& spec : QueueTopology("q", true).declarations()) {
    for (const auto& argument : spec.arguments) CHECK(argument.name != "x-queue-type");
  }
}
