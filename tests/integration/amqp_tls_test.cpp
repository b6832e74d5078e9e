// amqps:// against a real RabbitMQ TLS listener, with certificates made at test
// time by .ci/tls-broker, which also runs servers presenting bad certificates
// and a broker user limited to the daemon's queues.
//
// These tests need that script's environment (PE_TEST_TLS_DIR and friends):
// `bash .ci/tls-broker run build/tests/integration_amqp_tls_test`. Without it
// they skip with a warning, even under CI=true, because CI runs them through
// the script right after the main ctest run (.ci/test); the script sets
// PE_TEST_TLS_REQUIRED=1, which turns a missing piece into a failure.
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "program_executor/amqp/connection.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using namespace std::chrono_literals;

namespace {

struct TlsEnvironment {
  std::string dir;        // certificates
  std::string amqps_url;  // pe-tls on the TLS listener
  std::string least_url;  // pe-least on the plain listener
  std::map<std::string, int> bad_ports;  // self_signed, wrong_host, expired

  std::string file(const std::string& name) const { return dir + "/" + name; }

  config::TlsSettings client_tls() const {
    config::TlsSettings tls;
    tls.ca_file = file("ca.pem");
    tls.cert_file = file("client.pem");
    tls.key_file = file("client.key");
    return tls;  // verify_peer and verify_hostname default to true
  }
};

std::optional<TlsEnvironment> tls_environment_or_skip() {
  const char* dir = std::getenv("PE_TEST_TLS_DIR");
  const char* amqps = std::getenv("PE_TEST_AMQPS_URL");
  const char* least = std::getenv("PE_TEST_AMQP_LEAST_URL");
  const char* ports = std::getenv("PE_TEST_TLS_BAD_PORTS");
  if (dir == nullptr || amqps == nullptr || least == nullptr || ports == nullptr) {
    const char* required = std::getenv("PE_TEST_TLS_REQUIRED");
    const std::string why =
        "the TLS broker environment is not set; run through `bash .ci/tls-broker run ...`";
    if (required != nullptr && std::string(required) == "1") FAIL(why);
    WARN("SKIPPED: " << why);
    return std::nullopt;
  }
  TlsEnvironment env{dir, amqps, least, {}};
  std::istringstream entries(ports);
  for (std::string entry; entries >> entry;) {
    const auto equals = entry.find('=');
    env.bad_ports[entry.substr(0, equals)] = std::stoi(entry.substr(equals + 1));
  }
  REQUIRE(env.bad_ports.size() == 3);
  return env;
}

// The URL with another port (and host).
std::string with_host_port(const std::string& url, const std::string& host, int port) {
  const auto at = url.rfind('@');
  const auto slash = url.find('/', at);
  return url.substr(0, at + 1) + host + ":" + std::to_string(port) + url.substr(slash);
}

std::string connect_error(const amqp::ConnectionSettings& settings) {
  try {
    amqp::Connection connection(settings, "tls test");
  } catch (const amqp::AmqpError& e) {
    return e.what();
  }
  return "(connected)";
}

// Declares a queue, publishes one message to it, reads it back, deletes it.
void round_trip(amqp::Connection& connection, const std::string& queue) {
  connection.declare(amqp::QueueSpec{queue, true, {}});
  connection.publish(queue, "over TLS", amqp::PublishProperties{});
  connection.consume(queue);
  const auto delivery = connection.next_delivery(5s);
  REQUIRE(delivery);
  CHECK(delivery->body == "over TLS");
  connection.ack(delivery->delivery_tag);
  connection.cancel_consume();
  connection.delete_queue(queue);
}

}  // namespace

TEST_CASE("a broker certificate from the configured CA connects, with a client certificate",
          "[amqp][tls]") {
  const auto env = tls_environment_or_skip();
  if (!env) return;
  // By name, and by address: the certificate names both.
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    INFO(host);
    const auto settings =
        amqp::parse_url(with_host_port(env->amqps_url, host, 5671), env->client_tls(), 0);
    REQUIRE(settings.tls);
    amqp::Connection connection(settings, "tls test");
    round_trip(connection, test::unique_name("pe-tls"));
  }
}

TEST_CASE("a self-signed, a wrong-host and an expired broker certificate are refused",
          "[amqp][tls]") {
  const auto env = tls_environment_or_skip();
  if (!env) return;
  const auto [server, reason] = GENERATE(table<std::string, std::string>({
      {"self_signed", "SSL peer cert verification failed: self-signed certificate"},
      {"wrong_host",
       "SSL peer cert verification failed: hostname mismatch: the certificate is for "
       "wrong.example.com, not localhost"},
      {"expired", "SSL peer cert verification failed: certificate has expired"},
  }));
  INFO(server);
  const std::string url = with_host_port(env->amqps_url, "localhost", env->bad_ports.at(server));
  const auto settings = amqp::parse_url(url, env->client_tls(), 0);
  const std::string error = connect_error(settings);
  CHECK(error == "connecting (TLS) on " + settings.describe() + ": " + reason);
  CHECK(error.find(settings.password) == std::string::npos);
}

TEST_CASE("verify_hostname off accepts a certificate for another host, and only that",
          "[amqp][tls]") {
  const auto env = tls_environment_or_skip();
  if (!env) return;
  auto tls = env->client_tls();
  tls.verify_hostname = false;
  // The wrong-host server is no broker: the TLS handshake now succeeds and the
  // AMQP login is what fails.
  const std::string wrong_host =
      with_host_port(env->amqps_url, "localhost", env->bad_ports.at("wrong_host"));
  CHECK(connect_error(amqp::parse_url(wrong_host, tls, 0)).find("certificate") ==
        std::string::npos);
  // The chain is still checked.
  const std::string self_signed =
      with_host_port(env->amqps_url, "localhost", env->bad_ports.at("self_signed"));
  CHECK_THAT(connect_error(amqp::parse_url(self_signed, tls, 0)),
             Catch::EndsWith("SSL peer cert verification failed: self-signed certificate"));
}

TEST_CASE("the host name is checked by address too, and without the chain check",
          "[amqp][tls]") {
  const auto env = tls_environment_or_skip();
  if (!env) return;
  const int wrong_host = env->bad_ports.at("wrong_host");
  // An address is compared with the certificate's IP addresses.
  const std::string by_address = with_host_port(env->amqps_url, "127.0.0.1", wrong_host);
  auto settings = amqp::parse_url(by_address, env->client_tls(), 0);
  CHECK(connect_error(settings) ==
        "connecting (TLS) on " + settings.describe() +
            ": SSL peer cert verification failed: IP address mismatch: the certificate is for "
            "wrong.example.com, not 127.0.0.1");
  // verify_peer off leaves the host name check to rabbitmq-c.
  auto tls = env->client_tls();
  tls.verify_peer = false;
  settings = amqp::parse_url(with_host_port(env->amqps_url, "localhost", wrong_host), tls, 0);
  CHECK(connect_error(settings) ==
        "connecting (TLS) on " + settings.describe() +
            ": SSL hostname verification failed: the certificate is for wrong.example.com, not "
            "localhost");
}

TEST_CASE("the broker refuses a client without a certificate from its CA", "[amqp][tls]") {
  const auto env = tls_environment_or_skip();
  if (!env) return;
  auto tls = env->client_tls();
  std::string alert;
  SECTION("no client certificate") {
    tls.cert_file.clear();
    tls.key_file.clear();
    alert = "tlsv13 alert certificate required";
  }
  SECTION("a client certificate from another CA") {
    tls.cert_file = env->file("rogue-client.pem");
    tls.key_file = env->file("rogue-client.key");
    alert = "tlsv1 alert unknown ca";
  }
  const auto settings = amqp::parse_url(env->amqps_url, tls, 0);
  // TLS 1.3: the client's handshake is over before the broker judges its
  // certificate, so the broker's alert ends the login.
  CHECK(connect_error(settings) == "logging in as 'pe-tls' to vhost 'pe-tls' on " +
                                       settings.describe() + ": a SSL error occurred: " + alert +
                                       " (does the broker accept amqp.tls.cert_file?)");
}

TEST_CASE("a CA file that cannot be read is named in the error", "[amqp][tls]") {
  const auto env = tls_environment_or_skip();
  if (!env) return;
  auto tls = env->client_tls();
  tls.ca_file = env->file("no-such-ca.pem");
  const std::string error = connect_error(amqp::parse_url(env->amqps_url, tls, 0));
  CHECK_THAT(error, Catch::Contains("loading the CA file '" + tls.ca_file + "'"));
}

TEST_CASE("the least-privileged broker user reaches the daemon's queues and nothing else",
          "[amqp][permissions]") {
  const auto env = tls_environment_or_skip();
  if (!env) return;
  const auto settings = amqp::parse_url(env->least_url, {}, 0);
  const std::string queue = test::unique_name("pe-it");

  SECTION("its own queues: declare, publish, consume, delete") {
    amqp::Connection connection(settings, "least privilege test");
    for (const std::string& name : {queue + "-retry-1000", queue + "-parked", queue}) {
      round_trip(connection, name);
    }
  }
  SECTION("another queue cannot be declared") {
    amqp::Connection connection(settings, "least privilege test");
    CHECK_THROWS_WITH(connection.declare(amqp::QueueSpec{"someone-elses-queue", true, {}}),
                      Catch::Contains("403 ACCESS_REFUSED"));
  }
  SECTION("another vhost cannot be opened") {
    auto elsewhere = settings;
    elsewhere.vhost = "/";
    CHECK_THAT(connect_error(elsewhere), Catch::Contains("login failed") ||
                                             Catch::Contains("ACCESS_REFUSED") ||
                                             Catch::Contains("access"));
  }
}
