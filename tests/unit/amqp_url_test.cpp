// parse_url and describe(): rabbitmq-c's URL rules, and no password in any text.
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "program_executor/amqp/connection_settings.hpp"

using program_executor::amqp::ConnectionSettings;
using program_executor::amqp::parse_url;
using program_executor::config::TlsSettings;

namespace {

// The message of the invalid_argument parse_url throws for `url`.
std::string parse_error(const std::string& url) {
  try {
    parse_url(url, TlsSettings{}, 30);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  FAIL("parse_url accepted " << url);
  return {};
}

}  // namespace

TEST_CASE("parse_url reads user, password, host, port and vhost", "[amqp][url]") {
  const auto s = parse_url("amqp://alice:s3cret@broker.example:5673/prod", TlsSettings{}, 15);
  CHECK(s.user == "alice");
  CHECK(s.password == "s3cret");
  CHECK(s.host == "broker.example");
  CHECK(s.port == 5673);
  CHECK(s.vhost == "prod");
  CHECK_FALSE(s.tls);
  CHECK(s.heartbeat_seconds == 15);
}

TEST_CASE("parse_url applies rabbitmq-c defaults", "[amqp][url]") {
  const auto s = parse_url("amqp://broker", TlsSettings{}, 30);
  CHECK(s.user == "guest");
  CHECK(s.password == "guest");
  CHECK(s.port == 5672);
  CHECK(s.vhost == "/");
}

TEST_CASE("an empty vhost path means the default vhost", "[amqp][url]") {
  // rabbitmq-c yields "" here, which no broker has; amqplib reads it as "/".
  CHECK(parse_url("amqp://guest:guest@127.0.0.1:5672/", TlsSettings{}, 30).vhost == "/");
}

TEST_CASE("parse_url percent-decodes the vhost", "[amqp][url]") {
  CHECK(parse_url("amqp://h/%2f", TlsSettings{}, 30).vhost == "/");
  CHECK(parse_url("amqp://h/team%2Fa", TlsSettings{}, 30).vhost == "team/a");
  CHECK(parse_url("amqp://u:p%40ss@h/", TlsSettings{}, 30).password == "p@ss");
}

TEST_CASE("amqps enables TLS, defaults to port 5671 and carries the TLS options", "[amqp][url]") {
  TlsSettings tls;
  tls.ca_file = "/etc/ca.pem";
  tls.verify_hostname = false;
  const auto s = parse_url("amqps://u:p@secure.example/v", tls, 30);
  CHECK(s.tls);
  CHECK(s.port == 5671);
  CHECK(s.tls_options.ca_file == "/etc/ca.pem");
  CHECK_FALSE(s.tls_options.verify_hostname);
  CHECK(parse_url("amqps://h:6000/", tls, 30).port == 6000);
  CHECK(parse_url("amqp://h/", tls, 30).port == 5672);
}

TEST_CASE("parse_url accepts an IPv6 literal", "[amqp][url]") {
  const auto s = parse_url("amqp://[::1]:5673/a", TlsSettings{}, 30);
  CHECK(s.host == "::1");
  CHECK(s.port == 5673);
  CHECK(s.describe() == "amqp://guest@[::1]:5673/a");
}

TEST_CASE("invalid URLs are rejected without echoing the password", "[amqp][url]") {
  for (const std::string url : {"amqp://user:s3cret@host:notaport/", "http://user:s3cret@host/",
                                "amqp://user:s3cret@host/a/b", "amqp://user:s3cret@host:99999/",
                                "amqp://user:s3/cret@host/", "amqp://user:s3cret@host/v?x=1"}) {
    INFO(url);
    const std::string message = parse_error(url);
    CHECK(message.find("s3cret") == std::string::npos);
    CHECK(message.find("s3/cret") == std::string::npos);
    CHECK(message.find("invalid AMQP URL") != std::string::npos);
    CHECK(message.find("user:***@host") != std::string::npos);
  }
}

TEST_CASE("a negative heartbeat is rejected", "[amqp][url]") {
  CHECK_THROWS_AS(parse_url("amqp://h/", TlsSettings{}, -1), std::invalid_argument);
}

TEST_CASE("describe() names the broker without the password", "[amqp][url]") {
  const auto s = parse_url("amqp://alice:s3cret@broker:5673/", TlsSettings{}, 30);
  CHECK(s.describe() == "amqp://alice@broker:5673/");
  const auto t = parse_url("amqps://alice:s3cret@broker/team%2Fa", TlsSettings{}, 30);
  CHECK(t.describe() == "amqps://alice@broker:5671/team%2Fa");
  // What describe() prints parses back to the same broker.
  const auto back = parse_url(t.describe(), TlsSettings{}, 30);
  CHECK(back.host == t.host);
  CHECK(back.port == t.port);
  CHECK(back.vhost == t.vhost);
  CHECK(back.user == t.user);
}
