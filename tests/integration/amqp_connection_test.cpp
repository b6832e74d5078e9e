// Connection and ReconnectingPublisher against the real broker.
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <poll.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "program_executor/amqp/connection.hpp"
#include "support/test_environment.hpp"

namespace amqp = program_executor::amqp;
namespace test = program_executor::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

amqp::ConnectionSettings settings_from(const std::string& url, int heartbeat = 0) {
  return amqp::parse_url(url, program_executor::config::TlsSettings{}, heartbeat);
}

// A plain rabbitmq-c connection, independent of the code under test, to look
// at queues and to delete them when a test ends.
class BrokerAdmin {
 public:
  explicit BrokerAdmin(const amqp::ConnectionSettings& s) : conn_(amqp_new_connection()) {
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
    REQUIRE(amqp_socket_open(socket, s.host.c_str(), s.port) == AMQP_STATUS_OK);
    REQUIRE(amqp_login(conn_, s.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, s.user.c_str(),
                       s.password.c_str())
                .reply_type == AMQP_RESPONSE_NORMAL);
    open_channel();
  }
  ~BrokerAdmin() {
    amqp_channel_close(conn_, channel_, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn_);
  }
  BrokerAdmin(const BrokerAdmin&) = delete;
  BrokerAdmin& operator=(const BrokerAdmin&) = delete;

  // Messages ready in an existing queue; nullopt when it does not exist.
  std::optional<std::uint32_t> message_count(const std::string& queue) {
    const auto* ok = amqp_queue_declare(conn_, channel_, amqp_cstring_bytes(queue.c_str()), 1, 0, 0,
                                        0, amqp_empty_table);
    if (amqp_get_rpc_reply(conn_).reply_type != AMQP_RESPONSE_NORMAL) {
      reopen_after_close();
      return std::nullopt;
    }
    return ok->message_count;
  }

  void delete_queue(const std::string& queue) {
    amqp_queue_delete(conn_, channel_, amqp_cstring_bytes(queue.c_str()), 0, 0);
    if (amqp_get_rpc_reply(conn_).reply_type != AMQP_RESPONSE_NORMAL) reopen_after_close();
  }

 private:
  void open_channel() {
    amqp_channel_open(conn_, channel_);
    REQUIRE(amqp_get_rpc_reply(conn_).reply_type == AMQP_RESPONSE_NORMAL);
  }
  void reopen_after_close() {
    amqp_channel_close_ok_t ok{};
    amqp_send_method(conn_, channel_, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    ++channel_;
    open_channel();
  }

  amqp_connection_state_t conn_;
  amqp_channel_t channel_ = 1;
};

// Deletes the queues of a test when it ends, passed or failed.
class QueueCleanup {
 public:
  QueueCleanup(const amqp::ConnectionSettings& s, std::vector<std::string> queues)
      : settings_(s), queues_(std::move(queues)) {}
  ~QueueCleanup() {
    try {
      BrokerAdmin admin(settings_);
      for (const auto& q : queues_) admin.delete_queue(q);
    } catch (...) {  // cleanup must not mask the test's own failure
    }
  }
  QueueCleanup(const QueueCleanup&) = delete;
  QueueCleanup& operator=(const QueueCleanup&) = delete;

 private:
  amqp::ConnectionSettings settings_;
  std::vector<std::string> queues_;
};

std::vector<std::string> names_of(const amqp::QueueTopology& t) {
  return {t.main_queue(), t.retry_queue(), t.parked_queue()};
}

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const amqp::AmqpError& error) {
    return error.what();
  }
  FAIL("no AmqpError was thrown");
  return {};
}

// Runs a shell command and returns its exit status and standard output.
std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, {}};
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  return {::pclose(pipe), output};
}

// Has the broker close every connection named `name` (as an operator or a
// broker shutdown would). False when rabbitmqctl is not usable here.
bool force_close_connections(const std::string& name) {
  const auto [status, listing] =
      run("rabbitmqctl -q list_connections pid client_properties 2>/dev/null");
  if (status != 0) return false;
  int closed = 0;
  std::size_t start = 0;
  while (start < listing.size()) {
    const std::size_t end = listing.find('\n', start);
    const std::string line = listing.substr(start, end == std::string::npos ? end : end - start);
    start = end == std::string::npos ? listing.size() : end + 1;
    if (line.find(name) == std::string::npos) continue;
    const std::string pid = line.substr(0, line.find('\t'));
    if (run("rabbitmqctl -q close_connection '" + pid + "' 'closed by test' >/dev/null 2>&1")
            .first == 0) {
      ++closed;
    }
  }
  return closed > 0;
}

}  // namespace

TEST_CASE("declaring the topology twice is idempotent", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_topo"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection first(settings, "amqp-test-declare");
  first.declare(topology);
  first.declare(topology);
  amqp::Connection second(settings, "amqp-test-declare-2");
  second.declare(topology);

  BrokerAdmin admin(settings);
  CHECK(admin.message_count(topology.main_queue()) == 0u);
  CHECK(admin.message_count(topology.retry_queue()) == 0u);
  CHECK(admin.message_count(topology.parked_queue()) == 0u);
  CHECK_FALSE(first.broken());
}

TEST_CASE("a mismatching redeclare names the argument and keeps the connection usable",
          "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const std::string queue = test::unique_name("pe_amqp_mismatch");
  const amqp::QueueTopology existing(queue, false);
  const amqp::QueueTopology flipped(queue, true);
  QueueCleanup cleanup(settings, names_of(existing));

  amqp::Connection connection(settings, "amqp-test-mismatch");
  connection.set_prefetch(1);
  connection.declare(existing);

  std::string message;
  try {
    connection.declare(flipped);
    FAIL("redeclaring with durable flipped was accepted");
  } catch (const amqp::QueueMismatchError& error) {
    message = error.what();
  }
  CHECK(message.find("queue '" + queue + "' already exists with other settings") !=
        std::string::npos);
  CHECK(message.find("PRECONDITION_FAILED") != std::string::npos);
  CHECK(message.find("'durable'") != std::string::npos);
  CHECK(message.find("amqp.durable must match") != std::string::npos);
  CHECK(message.find(":" + settings.password + "@") == std::string::npos);
  CHECK_FALSE(connection.broken());

  // Another argument gets a hint that does not blame durability.
  amqp::QueueSpec other_ttl = existing.declarations()[1];
  other_ttl.arguments = {{"x-message-ttl", 500}};
  try {
    connection.declare(other_ttl);
    FAIL("redeclaring with another x-message-ttl was accepted");
  } catch (const amqp::QueueMismatchError& error) {
    message = error.what();
  }
  CHECK(message.find("'x-message-ttl'") != std::string::npos);
  CHECK(message.find("declared elsewhere with other arguments") != std::string::npos);

  // The reopened channel works: declare, publish and consume on it.
  connection.declare(existing);
  connection.publish(queue, "after mismatch", amqp::PublishProperties{});
  connection.consume(queue);
  const auto delivery = connection.next_delivery(5s);
  REQUIRE(delivery);
  CHECK(delivery->body == "after mismatch");
  connection.ack(delivery->delivery_tag);
}

TEST_CASE("a message round-trips with its properties", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_roundtrip"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection publisher(settings, "amqp-test-publisher");
  publisher.declare(topology);
  amqp::PublishProperties transient;
  transient.persistent = false;
  transient.timestamp = 1700000000123;
  transient.headers = {{"run-id", "42"}, {"origin", "test"}};
  publisher.publish(topology.main_queue(), R"({"jobs":["a"],"runId":"1"})", transient);
  amqp::PublishProperties persistent;  // defaults: persistent, no timestamp, no headers
  publisher.publish(topology.main_queue(), "second", persistent);

  amqp::Connection consumer(settings, "amqp-test-consumer");
  consumer.set_prefetch(1);
  consumer.consume(topology.main_queue());
  const auto first = consumer.next_delivery(5s);
  REQUIRE(first);
  CHECK(first->body == R"({"jobs":["a"],"runId":"1"})");
  CHECK(first->routing_key == topology.main_queue());
  CHECK_FALSE(first->redelivered);
  CHECK_FALSE(first->properties.persistent);
  CHECK(first->properties.timestamp == 1700000000123);
  CHECK(first->properties.headers == transient.headers);
  // With prefetch 1 the second message waits for the first ack.
  CHECK_FALSE(consumer.next_delivery(300ms));
  consumer.ack(first->delivery_tag);

  const auto second = consumer.next_delivery(5s);
  REQUIRE(second);
  CHECK(second->body == "second");
  CHECK(second->properties.persistent);
  CHECK_FALSE(second->properties.timestamp);
  CHECK(second->properties.headers.empty());
  consumer.ack(second->delivery_tag);
  consumer.cancel_consume();

  CHECK_FALSE(consumer.next_delivery(200ms));
  BrokerAdmin admin(settings);
  CHECK(admin.message_count(topology.main_queue()) == 0u);
}

TEST_CASE("publishing to a queue that does not exist throws", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const std::string missing = test::unique_name("pe_amqp_missing");
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_present"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection connection(settings, "amqp-test-missing");
  connection.declare(topology);
  const std::string message =
      message_of([&] { connection.publish(missing, "lost?", amqp::PublishProperties{}); });
  CHECK(message.find("no queue named '" + missing + "' took the message") != std::string::npos);
  CHECK(message.find("NO_ROUTE") != std::string::npos);
  CHECK_FALSE(connection.broken());

  // The confirm that followed the return was consumed: the next publish waits
  // for its own confirm and succeeds.
  connection.publish(topology.main_queue(), "kept", amqp::PublishProperties{});
  BrokerAdmin admin(settings);
  CHECK(admin.message_count(missing) == std::nullopt);
  CHECK(admin.message_count(topology.main_queue()) == 1u);
}

TEST_CASE("publish_all sends a batch and waits for all its confirms", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_batch"), true);
  const std::string missing = test::unique_name("pe_amqp_batch_missing");
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection connection(settings, "amqp-test-batch");
  connection.declare(topology);
  std::vector<amqp::OutgoingMessage> batch;
  for (int i = 0; i < 50; ++i) {
    batch.push_back({topology.main_queue(), "message " + std::to_string(i), {}});
  }
  connection.publish_all(batch);
  BrokerAdmin admin(settings);
  CHECK(admin.message_count(topology.main_queue()) == 50u);

  // One message of a batch that no queue takes fails the batch, by name.
  batch.resize(3);
  batch[1].queue = missing;
  const std::string message = message_of([&] { connection.publish_all(batch); });
  CHECK(message.find("publishing 3 messages") != std::string::npos);
  CHECK(message.find("'" + missing + "'") != std::string::npos);
  CHECK_FALSE(connection.broken());
  connection.publish_all({{topology.main_queue(), "after", {}}});
  CHECK(admin.message_count(topology.main_queue()) == 53u);

  amqp::Connection consumer(settings, "amqp-test-batch-consumer");
  consumer.set_prefetch(100);
  consumer.consume(topology.main_queue());
  const auto first = consumer.next_delivery(5s);
  REQUIRE(first);
  CHECK(first->body == "message 0");
  CHECK(first->properties.persistent);
  // Deliveries are read off the socket in chunks: what is buffered is served
  // without waiting for the socket.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!consumer.input_buffered() && std::chrono::steady_clock::now() < until) {
    pollfd ready{consumer.socket_fd(), POLLIN, 0};
    ::poll(&ready, 1, 100);
    if (ready.revents != 0) break;
  }
  const auto second = consumer.next_delivery(0ms);
  REQUIRE(second);
  CHECK(second->body == "message 1");
}

TEST_CASE("dead_letter sends a message through the retry queue and back", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_retry"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection connection(settings, "amqp-test-retry");
  connection.declare(topology);
  connection.set_prefetch(1);
  connection.publish(topology.main_queue(), "retry me", amqp::PublishProperties{});
  connection.consume(topology.main_queue());
  const auto first = connection.next_delivery(5s);
  REQUIRE(first);
  connection.dead_letter(first->delivery_tag);
  const auto nacked_at = Clock::now();

  BrokerAdmin admin(settings);
  std::optional<std::uint32_t> in_retry;
  for (int i = 0; i < 20 && in_retry != 1u; ++i) {
    in_retry = admin.message_count(topology.retry_queue());
    if (in_retry != 1u) std::this_thread::sleep_for(20ms);
  }
  CHECK(in_retry == 1u);

  const auto again = connection.next_delivery(5s);
  const auto waited = Clock::now() - nacked_at;
  REQUIRE(again);
  CHECK(again->body == "retry me");
  CHECK(waited >= 800ms);
  CHECK(waited < 4s);
  connection.ack(again->delivery_tag);
  CHECK(admin.message_count(topology.retry_queue()) == 0u);
}

TEST_CASE("requeue redelivers the message marked redelivered", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_requeue"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection connection(settings, "amqp-test-requeue");
  connection.declare(topology);
  connection.publish(topology.main_queue(), "again", amqp::PublishProperties{});
  connection.consume(topology.main_queue());
  const auto first = connection.next_delivery(5s);
  REQUIRE(first);
  CHECK_FALSE(first->redelivered);
  connection.requeue(first->delivery_tag);
  const auto second = connection.next_delivery(5s);
  REQUIRE(second);
  CHECK(second->body == "again");
  CHECK(second->redelivered);
  connection.ack(second->delivery_tag);
  BrokerAdmin admin(settings);
  CHECK(admin.message_count(topology.retry_queue()) == 0u);
}

TEST_CASE("publish works on a connection that is also consuming", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology in(test::unique_name("pe_amqp_mixed_in"), false);
  const amqp::QueueTopology out(test::unique_name("pe_amqp_mixed_out"), false);
  auto queues = names_of(in);
  for (const auto& q : names_of(out)) queues.push_back(q);
  QueueCleanup cleanup(settings, queues);

  amqp::Connection feeder(settings, "amqp-test-feeder");
  feeder.declare(in);
  feeder.declare(out);
  for (const char* body : {"m1", "m2", "m3"}) {
    feeder.publish(in.main_queue(), body, amqp::PublishProperties{});
  }

  amqp::Connection mixed(settings, "amqp-test-mixed");
  mixed.set_prefetch(10);
  mixed.consume(in.main_queue());
  // Deliveries arrive while these publishes wait for their confirms.
  std::this_thread::sleep_for(200ms);
  mixed.publish(out.main_queue(), "o1", amqp::PublishProperties{});
  mixed.publish(out.main_queue(), "o2", amqp::PublishProperties{});

  std::vector<std::string> bodies;
  while (auto delivery = mixed.next_delivery(1s)) {
    bodies.push_back(delivery->body);
    mixed.ack(delivery->delivery_tag);
  }
  CHECK(bodies == std::vector<std::string>{"m1", "m2", "m3"});
  BrokerAdmin admin(settings);
  CHECK(admin.message_count(out.main_queue()) == 2u);
  CHECK(admin.message_count(in.main_queue()) == 0u);
}

TEST_CASE("a bad password gives a clear error without the password", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  auto settings = settings_from(*url);
  settings.password = "wrong-Pa55word-xyz";
  const std::string message = message_of([&] { amqp::Connection c(settings, "amqp-test-login"); });
  CHECK(message.find("logging in as '" + settings.user + "'") != std::string::npos);
  CHECK(message.find("ACCESS_REFUSED") != std::string::npos);
  CHECK(message.find(settings.describe()) != std::string::npos);
  CHECK(message.find("wrong-Pa55word-xyz") == std::string::npos);
}

TEST_CASE("an unknown vhost gives a clear error", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  auto settings = settings_from(*url);
  settings.vhost = "no-such-vhost";
  const std::string message = message_of([&] { amqp::Connection c(settings, "amqp-test-vhost"); });
  CHECK(message.find("no-such-vhost") != std::string::npos);
  CHECK(message.find("NOT_ALLOWED") != std::string::npos);
}

TEST_CASE("a closed port gives a clear error quickly", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  auto settings = settings_from(*url);
  settings.host = "127.0.0.1";
  settings.port = test::closed_port();
  const auto started = Clock::now();
  const std::string message = message_of([&] { amqp::Connection c(settings, "amqp-test-port"); });
  CHECK(Clock::now() - started < 5s);
  CHECK(message.find("connecting on amqp://") != std::string::npos);
  CHECK(message.find("127.0.0.1:" + std::to_string(settings.port)) != std::string::npos);
  INFO(message);
  CHECK(message.find("refused") != std::string::npos);
}

TEST_CASE("TLS failures are reported, not hung on", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  auto settings = settings_from(*url);
  settings.tls = true;

  SECTION("a CA file that does not exist") {
    settings.tls_options.ca_file = "/nonexistent/pe-test-ca.pem";
    const std::string message = message_of([&] { amqp::Connection c(settings, "amqp-test-tls"); });
    CHECK(message.find("loading the CA file '/nonexistent/pe-test-ca.pem'") != std::string::npos);
  }
  SECTION("a certificate without its key") {
    settings.tls_options.cert_file = "/etc/ssl/certs/ca-certificates.crt";
    const std::string message = message_of([&] { amqp::Connection c(settings, "amqp-test-tls"); });
    CHECK(message.find("both cert_file and key_file") != std::string::npos);
  }
  SECTION("a TLS handshake with a plain AMQP listener") {
    const auto started = Clock::now();
    const std::string message = message_of([&] { amqp::Connection c(settings, "amqp-test-tls"); });
    CHECK(Clock::now() - started < 12s);
    CHECK(message.find("connecting (TLS) on amqps://") != std::string::npos);
  }
}

TEST_CASE("next_delivery keeps a heartbeat connection alive", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url, 1);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_heartbeat"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection connection(settings, "amqp-test-heartbeat");
  connection.declare(topology);
  connection.consume(topology.main_queue());
  const auto until = Clock::now() + 4s;
  while (Clock::now() < until) CHECK_FALSE(connection.next_delivery(250ms));
  CHECK_FALSE(connection.broken());

  connection.publish(topology.main_queue(), "still here", amqp::PublishProperties{});
  const auto delivery = connection.next_delivery(5s);
  REQUIRE(delivery);
  CHECK(delivery->body == "still here");
  connection.ack(delivery->delivery_tag);
}

TEST_CASE("a heartbeat connection left alone is lost", "[amqp][integration]") {
  // The counterpart of the test above: without pumping, the broker drops it.
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url, 1);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_silent"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection connection(settings, "amqp-test-silent");
  connection.declare(topology);
  connection.consume(topology.main_queue());
  std::this_thread::sleep_for(4s);
  const std::string message = message_of([&] {
    for (int i = 0; i < 20; ++i) connection.next_delivery(250ms);
  });
  CHECK(message.find("the connection was lost") != std::string::npos);
  // The hint names the heartbeats and their window, 2 x heartbeat_seconds.
  CHECK(message.find("heartbeat") != std::string::npos);
  CHECK(message.find(" for 2 s") != std::string::npos);
  CHECK(connection.broken());
  CHECK_THROWS_AS(connection.ack(1), amqp::AmqpError);
}

TEST_CASE("a connection closed by the broker fails the consumer with its reason",
          "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_forced"), false);
  QueueCleanup cleanup(settings, names_of(topology));
  const std::string name = test::unique_name("amqp-test-forced");

  amqp::Connection connection(settings, name);
  connection.declare(topology);
  connection.consume(topology.main_queue());
  if (!force_close_connections(name)) {
    WARN("SKIPPED: rabbitmqctl cannot close connections here");
    return;
  }
  std::string message;
  for (int i = 0; i < 20 && message.empty(); ++i) {
    try {
      connection.next_delivery(250ms);
    } catch (const amqp::AmqpError& error) {
      message = error.what();
    }
  }
  CHECK(message.find("CONNECTION_FORCED") != std::string::npos);
  CHECK(message.find("closed by test") != std::string::npos);
  CHECK(connection.broken());
}

TEST_CASE("deleting the consumed queue fails the consumer", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_deleted"), false);
  QueueCleanup cleanup(settings, names_of(topology));

  amqp::Connection connection(settings, "amqp-test-deleted");
  connection.declare(topology);
  connection.consume(topology.main_queue());
  BrokerAdmin admin(settings);
  admin.delete_queue(topology.main_queue());
  const std::string message = message_of([&] {
    for (int i = 0; i < 20; ++i) connection.next_delivery(250ms);
  });
  CHECK(message.find("the broker cancelled the consumer of queue '" + topology.main_queue()) !=
        std::string::npos);
  CHECK(connection.broken());
}

TEST_CASE("the connection shows its name and keeps rabbitmq-c's capabilities",
          "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const std::string name = test::unique_name("amqp-test-named");
  amqp::Connection connection(settings_from(*url), name);
  const auto [status, all] = run("rabbitmqctl -q list_connections client_properties 2>/dev/null");
  if (status != 0) {
    WARN("SKIPPED: rabbitmqctl cannot list connections here");
    return;
  }
  const auto at = all.find(name);
  REQUIRE(at != std::string::npos);
  const auto line_start = all.rfind('\n', at);
  const std::string listing =
      all.substr(line_start == std::string::npos ? 0 : line_start, all.find('\n', at) - line_start);
  CHECK(listing.find("consumer_cancel_notify") != std::string::npos);
  CHECK(listing.find("authentication_failure_close") != std::string::npos);
  CHECK(listing.find("rabbitmq-c") != std::string::npos);
}

TEST_CASE("ReconnectingPublisher reconnects once after its connection broke",
          "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  const auto settings = settings_from(*url, 30);
  const amqp::QueueTopology topology(test::unique_name("pe_amqp_reconnect"), false);
  QueueCleanup cleanup(settings, names_of(topology));
  {
    amqp::Connection declarer(settings, "amqp-test-declarer");
    declarer.declare(topology);
  }
  const std::string name = test::unique_name("amqp-test-reconnecting");
  amqp::ReconnectingPublisher publisher(settings, name);
  BrokerAdmin admin(settings);

  publisher.publish(topology.main_queue(), "one", amqp::PublishProperties{});
  CHECK(admin.message_count(topology.main_queue()) == 1u);

  // A return is not a broken connection: it propagates without a reconnect.
  CHECK_THROWS_AS(
      publisher.publish(test::unique_name("pe_amqp_nowhere"), "x", amqp::PublishProperties{}),
      amqp::AmqpError);

  if (!force_close_connections(name)) {
    WARN("SKIPPED: rabbitmqctl cannot close connections here");
    return;
  }
  std::this_thread::sleep_for(200ms);
  publisher.publish(topology.main_queue(), "two", amqp::PublishProperties{});
  CHECK(admin.message_count(topology.main_queue()) == 2u);
}

TEST_CASE("ReconnectingPublisher propagates a failure to connect", "[amqp][integration]") {
  const auto url = test::amqp_url_or_skip();
  if (!url) return;
  auto settings = settings_from(*url);
  settings.host = "127.0.0.1";
  settings.port = test::closed_port();
  amqp::ReconnectingPublisher publisher(settings, "amqp-test-unreachable");
  CHECK_THROWS_AS(publisher.publish("q", "x", amqp::PublishProperties{}), amqp::AmqpError);
}
