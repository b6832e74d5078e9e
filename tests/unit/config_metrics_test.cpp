// metrics.listen: its default, the ways to set and disable it, and the
// addresses refused at load time (so `check` catches them, not the exporter).
#include <catch2/catch.hpp>

#include <string>

#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;

namespace {

// The message load_string() throws for `yaml`, or "(no error)".
}  // namespace

TEST_CASE("metrics.listen defaults to loopback and can be moved or disabled", "[config][metrics]") {
  CHECK(cfg::load_string("", "empty.yaml").metrics.listen == "127.0.0.1:9464");
  CHECK(cfg::Config{}.metrics.listen == "127.0.0.1:9464");
  CHECK(cfg::load_string("metrics:\n  listen: \"\"\n", "t.yaml").metrics.listen.empty());
  CHECK(cfg::load_string("metrics:\n  listen: 0.0.0.0:9100\n", "t.yaml").metrics.listen ==
        "0.0.0.0:9100");
}

TEST_CASE("metrics.listen refuses anything but one literal address and port, saying where",
          "[config][metrics]") {
  CHECK(error_of("metrics:\n  listen: \"9464\"\n") ==
        "test.yaml:2:11: metrics.listen: expected IPV4:PORT (e.g. 127.0.0.1:9464)");
  CHECK(error_of("metrics:\n  listen: localhost:9464\n") ==
        "test.yaml:2:11: metrics.listen: \"localhost\" is not an IPv4 address: expected IPV4:PORT "
        "(e.g. 127.0.0.1:9464)");
  CHECK(error_of("metrics:\n  listen: 127.0.0.1:99999\n") ==
        "test.yaml:2:11: metrics.listen: bad port \"99999\": expected IPV4:PORT (e.g. "
        "127.0.0.1:9464)");
  // Debian's civetweb is built without IPv6: refused here rather than at bind time.
  CHECK(error_of("metrics:\n  listen: \"[::1]:9464\"\n") ==
        "test.yaml:2:11: metrics.listen: IPv6 is not supported (civetweb without IPv6): expected "
        "IPV4:PORT (e.g. 127.0.0.1:9464)");
  for (const char* bad : {"127.0.0.1:", "::1:9464", "[::1:9464", "127.0.0.1:9464,0.0.0.0:1"}) {
    INFO(bad);
    CHECK_THAT(error_of(std::string("metrics:\n  listen: \"") + bad + "\"\n"),
               Catch::StartsWith("test.yaml:2:11: metrics.listen: "));
  }
  CHECK_THAT(error_of("metrics:\n  port: 1\n"), Catch::Contains("metrics.port"));
}
