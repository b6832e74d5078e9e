// The daemon against a RabbitMQ cluster (amqp.urls, quorum queues) while its
// nodes die: tests/cluster/rabbitmq-cluster runs the cluster on loopback and
// PE_TEST_CLUSTER names that script (.ci/cluster sets it). Labelled "cluster":
// only that stage runs these tests.
#include <signal.h>

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/deployment.hpp"
#include "support/process.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The cluster script, or nullopt (and a failure under CI) when unset.
std::optional<std::string> cluster_script_or_skip() {
  const char* script = std::getenv("PE_TEST_CLUSTER");
  if (script != nullptr && *script != '\0') return std::string(script);
  if (test::running_in_ci()) FAIL("PE_TEST_CLUSTER is not set (bash .ci/cluster sets it)");
  WARN(
      "PE_TEST_CLUSTER not set: start a cluster with tests/cluster/rabbitmq-cluster and point it "
      "there");
  return std::nullopt;
}

std::string cluster(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> command = {"/bin/bash", script};
  command.insert(command.end(), args.begin(), args.end());
  const test::CommandResult result = test::run_command(command, 180s);
  INFO("rabbitmq-cluster " << args.front() << ": " << result.out << result.err);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The node index of "amqp://guest@127.0.0.1:5702/" (port 5700 + index), or 0.
int node_of_broker(const std::string& broker) {
  std::smatch match;
  if (!std::regex_search(broker, match, std::regex(":57([0-9]{2})/"))) return 0;
  return std::stoi(match[1]);
}

// The broker each "worker.consuming" event of worker `worker` names, in order.
std::vector<std::string> consuming_brokers(const std::string& log, int worker) {
  std::vector<std::string> brokers;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"worker.consuming\"") == std::string::npos) continue;
    const json event = json::parse(line, nullptr, false);
    if (event.is_discarded() || event.value("worker", -1) != worker) continue;
    brokers.push_back(event.value("broker", ""));
  }
  return brokers;
}

}  // namespace

TEST_CASE(
    "programs finish, each step once, while the cluster loses the queue's leader and a worker's "
    "node",
    "[daemon][cluster][integration]") {
  const auto script = cluster_script_or_skip();
  if (!script) return;
  const std::vector<std::string> urls = lines_of(cluster(*script, {"urls"}));
  REQUIRE(urls.size() >= 3);

  test::DeploymentOptions options;
  options.amqp_url = urls.front();
  options.amqp_urls = urls;
  options.queue_type = "quorum";
  options.queue_prefix = "pe-cluster";
  options.heartbeat_seconds = 5;
  options.workers = 2;
  options.log_level = "info";
  test::Deployment deployment(options);
  auto daemon = deployment.start_daemon({}, 60s);
  REQUIRE(daemon->wait_for_log("\"worker.consuming\"", 30s, 2));

  // Long enough that both kills fall while steps run: 30 programs of five
  // 100 ms steps on 2 workers take about 8 s.
  std::vector<std::string> run_ids;
  for (int i = 0; i < 30; ++i) {
    run_ids.push_back(deployment.create("demo.sleep,demo.sleep,demo.sleep,demo.sleep,demo.sleep",
                                        {{"demo.sleep", {{"ms", 100}}}}));
  }

  // The main queue's leader first: its followers elect another, and the
  // consumers connected to the dead node move.
  const std::vector<std::string> leader =
      lines_of(cluster(*script, {"leader", deployment.queue()}));
  REQUIRE(leader.size() == 1);
  const std::string leader_index = leader.front().substr(leader.front().rfind(' ') + 1);
  cluster(*script, {"kill", leader_index});
  std::this_thread::sleep_for(2s);
  cluster(*script, {"restart", leader_index});

  // Then the node worker 0 consumes from now, wherever that is.
  const std::vector<std::string> before = consuming_brokers(daemon->log(), 0);
  REQUIRE_FALSE(before.empty());
  const int node = node_of_broker(before.back());
  REQUIRE(node > 0);
  cluster(*script, {"kill", std::to_string(node)});
  REQUIRE(daemon->wait_for_log("\"amqp.connection_lost\"", 30s));
  std::this_thread::sleep_for(2s);
  cluster(*script, {"restart", std::to_string(node)});

  for (const std::string& run_id : run_ids) {
    const json row = deployment.wait_until_ended(run_id, 120s);
    INFO(run_id << ": " << row.dump() << "\n" << daemon->log());
    CHECK(row["state"] == "finished");
  }
  // Never forked: each of the five steps has exactly one finished attempt.
  for (const std::string& run_id : run_ids) {
    const test::CommandResult explained = deployment.cli({"explain", run_id, "--json"});
    REQUIRE(explained.exit_code == 0);
    const json timeline = json::parse(explained.out);
    std::multiset<int> finished_steps;
    for (const json& attempt : timeline["attempts"]) {
      if (attempt["outcome"] == "finished") finished_steps.insert(attempt["step"].get<int>());
    }
    INFO(run_id << ": " << explained.out);
    CHECK(finished_steps == std::multiset<int>{0, 1, 2, 3, 4});
  }
  // The daemon rode it out: still running, and worker 0 consumes again, from
  // another node than the one killed under it.
  CHECK(daemon->running());
  const std::vector<std::string> after = consuming_brokers(daemon->log(), 0);
  REQUIRE(after.size() > before.size());
  CHECK(node_of_broker(after[before.size()]) != node);
  CHECK(daemon->stop(SIGTERM, 30s) == 0);
}
