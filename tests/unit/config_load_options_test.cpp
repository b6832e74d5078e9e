// LoadOptions: a command that does not use the broker (or the database) does
// not need its password (issue 19, item 1); everything else is validated alike.
#include <catch2/catch.hpp>

#include <string>

#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;

namespace {

constexpr std::string_view yaml =
    "amqp:\n  url: amqp://worker:${PE_TEST_UNSET_AMQP_PASSWORD}@mq/\n"
    "  password_file: /nonexistent/amqp-password\n"
    "database:\n  backend: postgresql\n"
    "  connection: host=db user=pe password=${PE_TEST_UNSET_DB_PASSWORD}\n"
    "  password_file: /nonexistent/db-password\n";

}  // namespace

TEST_CASE("the secrets of a part the command does not use need not resolve",
          "[config][load_options]") {
  CHECK(error_of(yaml, {}) == "test.yaml:2:8: amqp.url: environment variable "
                        "PE_TEST_UNSET_AMQP_PASSWORD is not set");
  CHECK(error_of(yaml, {.broker = false, .database = true}) ==
        "test.yaml:6:15: database.connection: environment variable PE_TEST_UNSET_DB_PASSWORD "
        "is not set");
  CHECK(error_of(yaml, {.broker = true, .database = false}) ==
        "test.yaml:2:8: amqp.url: environment variable PE_TEST_UNSET_AMQP_PASSWORD is not set");

  const cfg::Config config = cfg::load_string(yaml, "test.yaml", {.broker = false, .database = false});
  CHECK(config.unresolved == std::vector<std::string>{"amqp.url", "database.connection",
                                                      "amqp.password_file",
                                                      "database.password_file"});
  CHECK(config.database.backend == program_executor::config::DatabaseBackend::postgresql);
}

TEST_CASE("an unused part is still validated", "[config][load_options]") {
  try {
    cfg::load_string("amqp:\n  url: amqp://h:notaport/\n", "test.yaml",
                     {.broker = false, .database = true});
    FAIL("accepted");
  } catch (const cfg::ConfigError& error) {
    CHECK_THAT(error.what(), Catch::StartsWith("test.yaml:2:8: amqp.url: invalid value: not a "
                                               "valid AMQP URL"));
  }
}
