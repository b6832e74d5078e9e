// Values the daemon would refuse at start (connecting to the broker, opening
// the database) are refused when the configuration loads, at their
// file:line:col, so `check` refuses them first (issue 18, item 2).
#include <catch2/catch.hpp>

#include <string>

#include "program_executor/config/amqp_url.hpp"
#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"
#include "program_executor/config/database_connection.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;

namespace {

const std::string url_grammar =
    "expected amqp://[user[:password]@]host[:port]/[vhost] or amqps://..., with reserved "
    "characters percent-encoded (a '/' in the vhost as %2F)";

}  // namespace

TEST_CASE("an AMQP URL rabbitmq-c cannot parse is refused at its position",
          "[config][refused_at_load]") {
  const std::string bad_url =
      "test.yaml:2:8: amqp.url: invalid value: not a valid AMQP URL (a port is 1 to 65535, a "
      "vhost one path segment): " + url_grammar;
  CHECK(error_of("amqp:\n  url: amqp://guest:guest@127.0.0.1:notaport/\n") == bad_url);
  CHECK(error_of("amqp:\n  url: amqp://guest:guest@127.0.0.1:70000/\n") == bad_url);
  CHECK(error_of("amqp:\n  url: amqp://h/vhost/extra\n") == bad_url);
  CHECK(error_of("amqp:\n  url: amqp://h:0/\n") ==
        "test.yaml:2:8: amqp.url: invalid value: port 0: a port is 1 to 65535");
  // The password is never part of the message.
  CHECK(error_of("amqp:\n  url: amqp://u:hunter2@h:x/\n").find("hunter2") == std::string::npos);
}

TEST_CASE("URLs the broker connection reads are accepted", "[config][refused_at_load]") {
  for (const char* url : {"amqp://guest:guest@127.0.0.1:5672/", "amqps://u:p@mq.example:5671/v%2Fx",
                          "amqp://[::1]:5672/", "amqp://h", "amqp://h/"}) {
    INFO(url);
    CHECK(cfg::amqp_url_problem(url).empty());
  }
}

TEST_CASE("a database URL of another backend is refused at its position",
          "[config][refused_at_load]") {
  CHECK(error_of("database:\n  backend: sqlite3\n  connection: postgresql://h/db\n") ==
        "test.yaml:3:15: database.connection: a postgresql:// URL, but database.backend is "
        "sqlite3 (expected db=<file>)");
  CHECK(error_of("database:\n  backend: postgresql\n  connection: mysql://u@h/db\n") ==
        "test.yaml:3:15: database.connection: a mysql:// URL, but database.backend is "
        "postgresql (expected postgresql://... or key=value parameters)");
  CHECK(error_of("database:\n  backend: mysql\n  connection: \"mysql://u@h:port/db\"\n") ==
        "test.yaml:3:15: database.connection: not a valid mysql:// URL "
        "(mysql://user:password@host:port/database)");
  CHECK(error_of("database:\n  backend: mysql\n  connection: mariadb://u@h:3306/db\n") ==
        "(no error)");
  CHECK(error_of("database:\n  backend: postgresql\n  connection: host=db user=pe\n") ==
        "(no error)");
  CHECK(cfg::database_connection_problem(cfg::DatabaseBackend::odbc, "anything://at/all").empty());
}
