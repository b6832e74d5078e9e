// The web: section of `serve`: defaults, and the refusals that name the key.
#include <catch2/catch.hpp>

#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;

TEST_CASE("the web section defaults to loopback, no tokens and known jobs only", "[config][web]") {
  const cfg::Config config = cfg::load_string("", "empty.yaml");
  CHECK(config.web.listen == "127.0.0.1:8080");
  CHECK(config.web.operator_token_file.empty());
  CHECK(config.web.viewer_token_file.empty());
  CHECK_FALSE(config.web.allow_unknown_jobs);
  CHECK(config.web.max_body_bytes == 1048576);
  CHECK(config.web.threads == 8);
  CHECK(config.web.tls_cert_file.empty());
}

TEST_CASE("the web section's keys are read", "[config][web]") {
  const cfg::Config config = cfg::load_string(
      "web:\n  listen: 0.0.0.0:9000\n  operator_token_file: /etc/op\n  viewer_token_file: /etc/v\n"
      "  allow_unknown_jobs: true\n  max_body_bytes: 4096\n  threads: 3\n"
      "  tls:\n    cert_file: /etc/c.pem\n    key_file: /etc/k.pem\n",
      "t.yaml");
  CHECK(config.web.listen == "0.0.0.0:9000");
  CHECK(config.web.operator_token_file == "/etc/op");
  CHECK(config.web.viewer_token_file == "/etc/v");
  CHECK(config.web.allow_unknown_jobs);
  CHECK(config.web.max_body_bytes == 4096);
  CHECK(config.web.threads == 3);
  CHECK(config.web.tls_cert_file == "/etc/c.pem");
  CHECK(config.web.tls_key_file == "/etc/k.pem");
}

TEST_CASE("bad web settings are refused naming file, line, column and key", "[config][web]") {
  CHECK(error_of("web:\n  listen: localhost:8080\n") ==
        "test.yaml:2:11: web.listen: \"localhost\" is not an IPv4 address: expected IPV4:PORT (e.g. "
        "127.0.0.1:9464)");
  CHECK(error_of("web:\n  listen: \"\"\n") == "test.yaml:2:11: web.listen: must not be empty");
  CHECK(error_of("web:\n  tls:\n    cert_file: /etc/c.pem\n") ==
        "test.yaml:3:16: web.tls.cert_file: web.tls.cert_file and web.tls.key_file go together: set "
        "both, or neither");
  CHECK(error_of("web:\n  max_body_bytes: 10\n").find("test.yaml:2:19: web.max_body_bytes:") == 0);
  CHECK(error_of("web:\n  token_file: x\n").find("test.yaml:2:3: web.token_file: unknown key") == 0);
}
