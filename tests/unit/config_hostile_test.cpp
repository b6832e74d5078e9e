// Configuration text that once made the loader misbehave, found by the
// libFuzzer harness tests/fuzz/config_fuzz.cpp; each must now fail promptly
// with a positioned error. (The same inputs are in tests/fuzz/corpus/config/
// as regression seeds.)
#include <catch2/catch.hpp>

#include <string>

#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;

TEST_CASE("a document starting with ',' is refused instead of exhausting memory",
          "[config][hostile]") {
  // yaml-cpp 0.7's LoadAll() produced empty documents from this forever.
  const std::string expected =
      "test.yaml:1:1: invalid YAML: the parser cannot get past this point (a ',' outside [ ] or "
      "{ }?)";
  CHECK(error_of(",") == expected);
  CHECK(error_of(", (a SQLite file)\namqp:\n  queue: q\n") == expected);
  // Where it is legal, a ',' still is.
  CHECK(error_of("log: {level: info, format: json}\n") == "(no error)");
  CHECK(error_of("amqp:\n  queue: a,b\n") ==
        "test.yaml:2:10: amqp.queue: invalid value 'a,b': a queue name is 1 to 200 of A-Z a-z "
        "0-9 _ . : -");
}

TEST_CASE("recursive and deep documents are refused", "[config][hostile]") {
  CHECK_THAT(error_of("a: &x [*x]\n"), Catch::StartsWith("test.yaml:1:"));
  CHECK_THAT(error_of(std::string(5000, '[')), Catch::StartsWith("test.yaml:1:"));
  CHECK_THAT(error_of("workers: 2\n---\n,\n"),
             Catch::Contains("more than one YAML document") ||
                 Catch::Contains("cannot get past this point"));
}
