// BrokerNodes against the real broker: which node a connection goes to when
// some do not answer, and in what order a worker tries them.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/connection.hpp"
#include "support/test_environment.hpp"

namespace amqp = program_executor::amqp;
namespace test = program_executor::test;

namespace {

// A node nothing listens on: connecting is refused.
struct DeadNode {
  int port = test::closed_port();
  std::string url = "amqp://127.0.0.1:" + std::to_string(port) + "/";
};

}  // namespace

TEST_CASE("BrokerNodes connects to the first node that answers and keeps to it",
          "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const amqp::ConnectionSettings live = amqp::parse_url(*url, {}, 0);
  const DeadNode dead;
  amqp::BrokerNodes nodes(std::vector<std::string>{dead.url, *url}, {}, 0);
  REQUIRE(nodes.current().port == dead.port);

  const auto connection = nodes.connect("amqp-test-nodes");
  CHECK_FALSE(connection->broken());
  CHECK(nodes.current().port == live.port);
  // The node that answered stays the one in turn: the next connection goes
  // there first, not to the dead node again.
  CHECK(nodes.connect("amqp-test-nodes-again")->broken() == false);
  CHECK(nodes.current().port == live.port);
}

TEST_CASE("BrokerNodes tries the next node first after a lost connection", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  // One broker under two names: which one a connection used shows in current().
  const amqp::ConnectionSettings live = amqp::parse_url(*url, {}, 0);
  amqp::BrokerNodes nodes(std::vector<std::string>{*url, "amqp://guest:guest@localhost:" +
                                                             std::to_string(live.port) + "/"},
                          {}, 0);

  nodes.connect("amqp-test-lost");
  CHECK(nodes.current().host == live.host);
  nodes.lost();
  nodes.connect("amqp-test-lost");
  CHECK(nodes.current().host == "localhost");
  nodes.lost();
  CHECK(nodes.current().host == live.host);
}

TEST_CASE("BrokerNodes reports every node when none can be reached", "[amqp][integration]") {
  const DeadNode first;
  const DeadNode second;
  amqp::BrokerNodes nodes(std::vector<std::string>{first.url, second.url}, {}, 0);
  try {
    nodes.connect("amqp-test-none");
    FAIL("connected to a closed port");
  } catch (const amqp::BrokerUnreachableError& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("no broker node could be reached (2 tried)") != std::string::npos);
    CHECK(message.find(":" + std::to_string(first.port)) != std::string::npos);
    CHECK(message.find(":" + std::to_string(second.port)) != std::string::npos);
  }
  // One node (amqp.url) reports its own error, as before amqp.urls existed.
  amqp::BrokerNodes lone(std::vector<std::string>{first.url}, {}, 0);
  try {
    lone.connect("amqp-test-lone");
    FAIL("connected to a closed port");
  } catch (const amqp::BrokerUnreachableError& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("no broker node could be reached") == std::string::npos);
    CHECK(message.find("127.0.0.1:" + std::to_string(first.port)) != std::string::npos);
  }
}

TEST_CASE("BrokerNodes reports a refusal, not unreachability, when a node answered and refused",
          "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const amqp::ConnectionSettings live = amqp::parse_url(*url, {}, 0);
  const DeadNode dead;
  amqp::BrokerNodes nodes(
      std::vector<std::string>{
          dead.url,
          "amqp://pe-no-such-user:wrong@" + live.host + ":" + std::to_string(live.port) + "/"},
      {}, 0);
  // Waiting would not fix a refused login: the start-up wait must not retry it.
  bool unreachable = false;
  bool refused = false;
  try {
    nodes.connect("amqp-test-refused");
  } catch (const amqp::BrokerUnreachableError&) {
    unreachable = true;
  } catch (const amqp::AmqpError& e) {
    refused = true;
    INFO(e.what());
    CHECK(std::string(e.what()).find("pe-no-such-user") != std::string::npos);
  }
  CHECK_FALSE(unreachable);
  CHECK(refused);
}

TEST_CASE("BrokerNodes::shuffled gives each seed its own order of the same nodes", "[amqp]") {
  std::vector<std::string> urls;
  for (int port = 5701; port <= 5705; ++port)
    urls.push_back("amqp://127.0.0.1:" + std::to_string(port) + "/");
  const amqp::BrokerNodes nodes(urls, {}, 0);
  const auto order = [](const amqp::BrokerNodes& shuffled) {
    std::vector<int> ports;
    for (const amqp::ConnectionSettings& node : shuffled.nodes()) ports.push_back(node.port);
    return ports;
  };
  std::set<std::vector<int>> orders;
  std::set<int> first_ports;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    const std::vector<int> ports = order(nodes.shuffled(seed));
    CHECK(ports == order(nodes.shuffled(seed)));  // a seed gives one order
    std::vector<int> sorted = ports;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int>{5701, 5702, 5703, 5704, 5705});  // the same nodes
    CHECK(nodes.shuffled(seed).current().port == ports.front());
    orders.insert(ports);
    first_ports.insert(ports.front());
  }
  // Forty workers spread out: many orders, and every node first for some.
  CHECK(orders.size() > 20);
  CHECK(first_ports.size() == 5);
}
