// amqp.urls, the schema's list key: a sequence of 1 to 16 broker URLs, each
// item validated as amqp.url is and placed in errors as amqp.urls[<index>].
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "program_executor/config/config.hpp"
#include "program_executor/config/schema.hpp"
#include "support/config_error.hpp"
#include "support/scoped_env.hpp"
#include "support/test_environment.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;
using program_executor::test::ScopedEnv;
using program_executor::test::TemporaryDirectory;

namespace {

using Strings = std::vector<std::string>;

const std::string default_url = cfg::AmqpSettings{}.url;

// "amqp:\n  urls: [<url 0>, ..., <url count-1>]\n", each URL a distinct node.
std::string flow_list(int count) {
  std::string yaml = "amqp:\n  urls: [";
  for (int i = 0; i < count; ++i) {
    yaml += (i == 0 ? "" : ", ") + std::string("amqp://node") + std::to_string(i) + "/";
  }
  return yaml + "]\n";
}

}  // namespace

TEST_CASE("a list of three nodes is kept in its order and leaves amqp.url alone",
          "[config][amqp_urls]") {
  const cfg::Config config = cfg::load_string(
      "amqp:\n"
      "  urls:\n"
      "    - amqp://rabbit-1.example:5672/prod\n"
      "    - amqps://rabbit-2.example/prod\n"
      "    - amqp://worker@rabbit-3.example:5673/prod\n",
      "test.yaml");
  const Strings expected = {"amqp://rabbit-1.example:5672/prod", "amqps://rabbit-2.example/prod",
                            "amqp://worker@rabbit-3.example:5673/prod"};
  CHECK(config.amqp.urls == expected);
  CHECK(config.amqp.nodes() == expected);
  CHECK(config.amqp.url == default_url);
  CHECK(config.secrets_in_file.empty());
  CHECK(config.unresolved.empty());
}

TEST_CASE("a one-item list is one node", "[config][amqp_urls]") {
  const cfg::Config config = cfg::load_string(flow_list(1), "test.yaml");
  CHECK(config.amqp.urls == Strings{"amqp://node0/"});
  CHECK(config.amqp.nodes() == Strings{"amqp://node0/"});
}

TEST_CASE("without amqp.urls the one node is amqp.url", "[config][amqp_urls]") {
  const cfg::Config given = cfg::load_string("amqp:\n  url: amqp://solo:5673/v\n", "test.yaml");
  CHECK(given.amqp.urls.empty());
  CHECK(given.amqp.nodes() == Strings{"amqp://solo:5673/v"});
  const cfg::Config empty = cfg::load_string("", "test.yaml");
  CHECK(empty.amqp.urls.empty());
  CHECK(empty.amqp.nodes() == Strings{default_url});
}

TEST_CASE("amqp.urls must be a sequence of 1 to 16 values", "[config][amqp_urls]") {
  CHECK(error_of("amqp:\n  urls: amqp://one/\n") ==
        "test.yaml:2:9: amqp.urls: expected a sequence of 1 to 16 values, each an AMQP URL, "
        "found a scalar");
  CHECK(error_of("amqp:\n  urls:\n    a: amqp://one/\n") ==
        "test.yaml:3:5: amqp.urls: expected a sequence of 1 to 16 values, each an AMQP URL, "
        "found a mapping");
  CHECK(error_of("amqp:\n  urls: []\n") ==
        "test.yaml:2:9: amqp.urls: expected 1 to 16 values, found an empty sequence (remove the "
        "key to leave it unset)");
  CHECK(error_of("amqp:\n  urls:\n") ==
        "test.yaml:2:3: amqp.urls: no value (remove the key to use its default)");
  CHECK(error_of(flow_list(16)) == "(no error)");
  CHECK(cfg::load_string(flow_list(16), "test.yaml").amqp.urls.size() == 16);
  CHECK(error_of(flow_list(17)) == "test.yaml:2:9: amqp.urls: expected 1 to 16 values, found 17");
}

TEST_CASE("an item is validated as amqp.url and named by its index", "[config][amqp_urls]") {
  const std::string head = "amqp:\n  urls:\n    - amqp://ok/\n";
  CHECK(error_of(head + "    - http://bad/\n") ==
        "test.yaml:4:7: amqp.urls[1]: invalid value: must start with amqp:// or amqps://");
  // Secret: the value itself is not quoted back.
  CHECK(error_of(head + "    - amqp://u:hunter2@h:0/\n") ==
        "test.yaml:4:7: amqp.urls[1]: invalid value: port 0: a port is 1 to 65535");
  CHECK(error_of(head + "    - [amqp://nested/]\n") ==
        "test.yaml:4:7: amqp.urls[1]: expected an AMQP URL, found a sequence");
  // A missing item is placed at the list: yaml-cpp puts it where the next token starts.
  CHECK(error_of(head + "    -\n") == "test.yaml:3:5: amqp.urls[1]: no value (remove the item)");
  CHECK(error_of("amqp:\n  urls: [amqp://ok/, {a: b}]\n") ==
        "test.yaml:2:22: amqp.urls[1]: expected an AMQP URL, found a mapping");
  // The items are joined by a line break into the key's value: none may hold one.
  CHECK(error_of("amqp:\n  urls: [amqp://ok/, \"amqp://h\\nx/\"]\n") ==
        "test.yaml:2:22: amqp.urls[1]: invalid value: contains a control character (a line "
        "break, a tab): percent-encode it (%0A, %09)");
}

TEST_CASE("the same node twice is an error at the second", "[config][amqp_urls]") {
  CHECK(error_of("amqp:\n"
                 "  urls:\n"
                 "    - amqp://n1/\n"
                 "    - amqp://n2/\n"
                 "    - amqp://n1/\n") ==
        "test.yaml:5:7: amqp.urls[2]: duplicate value (first as amqp.urls[0], line 3, column 7)");
  // Compared once expanded: two spellings of one node are still one node.
  const ScopedEnv host("PE_TEST_URLS_HOST", "n2");
  CHECK(error_of("amqp:\n  urls: [amqp://n2/, \"amqp://${PE_TEST_URLS_HOST}/\"]\n") ==
        "test.yaml:2:22: amqp.urls[1]: duplicate value (first as amqp.urls[0], line 2, column 10)");
}

TEST_CASE("amqp.url and amqp.urls exclude each other", "[config][amqp_urls]") {
  CHECK(error_of("amqp:\n  url: amqp://one/\n  urls:\n    - amqp://two/\n") ==
        "test.yaml:4:5: amqp.urls: set amqp.url or amqp.urls, not both");
  // Even when the command does not resolve amqp.url.
  const ScopedEnv unset("PE_TEST_UNSET_URLS_PASSWORD", nullptr);
  CHECK(error_of("amqp:\n  urls: [amqp://two/]\n"
                 "  url: amqp://u:${PE_TEST_UNSET_URLS_PASSWORD}@one/\n",
                 {.broker = false, .database = true}) ==
        "test.yaml:2:9: amqp.urls: set amqp.url or amqp.urls, not both");
}

TEST_CASE("${NAME} is expanded in each item", "[config][amqp_urls]") {
  const ScopedEnv password("PE_TEST_URLS_PASSWORD", "hunter2");
  const ScopedEnv unset("PE_TEST_UNSET_URLS_PASSWORD", nullptr);
  const cfg::Config config = cfg::load_string(
      "amqp:\n  urls:\n    - amqp://u:${PE_TEST_URLS_PASSWORD}@n1/\n    - amqp://n2/\n",
      "test.yaml");
  CHECK(config.amqp.urls == Strings{"amqp://u:hunter2@n1/", "amqp://n2/"});
  CHECK(config.secrets_in_file.empty());  // a reference is no written password
  CHECK(error_of("amqp:\n  urls:\n    - amqp://n1/\n"
                 "    - amqp://u:${PE_TEST_UNSET_URLS_PASSWORD}@n2/\n") ==
        "test.yaml:4:7: amqp.urls[1]: environment variable PE_TEST_UNSET_URLS_PASSWORD is not set");
}

TEST_CASE("a password written in any item is a secret in the file", "[config][amqp_urls]") {
  const cfg::Config config = cfg::load_string(
      "amqp:\n  urls:\n    - amqp://n1/\n    - amqp://u:written@n2/\n", "test.yaml");
  CHECK(config.secrets_in_file == Strings{"amqp.urls"});
}

TEST_CASE("amqp.password_file puts its password into every item", "[config][amqp_urls]") {
  const TemporaryDirectory dir;
  const auto file = dir.path() / "amqp-password";
  std::ofstream(file) << "s3cr:t\n";
  const cfg::Config config = cfg::load_string(
      "amqp:\n"
      "  urls:\n"
      "    - amqp://alice@n1/\n"
      "    - amqp://n2:5673/v\n"
      "    - amqp://bob:old@n3/\n"
      "  password_file: " +
          file.string() + "\n",
      "test.yaml");
  CHECK(config.amqp.urls == Strings{"amqp://alice:s3cr%3At@n1/", "amqp://guest:s3cr%3At@n2:5673/v",
                                    "amqp://bob:s3cr%3At@n3/"});
  CHECK(config.amqp.nodes() == config.amqp.urls);
  CHECK(config.secrets_in_file == Strings{"amqp.urls"});  // bob:old, replaced but written
}

TEST_CASE("a command without the broker need not resolve amqp.urls", "[config][amqp_urls]") {
  const ScopedEnv unset("PE_TEST_UNSET_URLS_PASSWORD", nullptr);
  const std::string yaml =
      "amqp:\n  urls:\n    - amqp://n1/\n    - amqp://u:${PE_TEST_UNSET_URLS_PASSWORD}@n2/\n"
      "    - amqp://u:${PE_TEST_UNSET_URLS_PASSWORD}@n3/\n";
  const cfg::Config config =
      cfg::load_string(yaml, "test.yaml", {.broker = false, .database = true});
  // The whole key is left unset, and noted once: a list short of a node must not be used.
  CHECK(config.unresolved == Strings{"amqp.urls"});
  CHECK(config.amqp.urls.empty());
  // The other items are still validated.
  CHECK(error_of(yaml + "    - http://bad/\n", {.broker = false, .database = true}) ==
        "test.yaml:6:7: amqp.urls[3]: invalid value: must start with amqp:// or amqps://");
  // The command that uses the broker must resolve it.
  CHECK(error_of(yaml) ==
        "test.yaml:4:7: amqp.urls[1]: environment variable PE_TEST_UNSET_URLS_PASSWORD is not set");
}

TEST_CASE("the validator gives the items joined by a line break, and where each is",
          "[config][amqp_urls]") {
  std::map<std::string, cfg::GivenValue, std::less<>> given;
  const auto values = cfg::load_values("amqp:\n  urls:\n    - amqp://n1/\n    -   amqp://n2/\n",
                                       "test.yaml", cfg::schema(), given);
  CHECK(values.at("amqp.urls") == "amqp://n1/\namqp://n2/");
  CHECK(values.count("amqp.url") == 1);  // its default
  // The key itself at the sequence, the items at themselves.
  CHECK(given.at("amqp.urls").line == 3);
  CHECK(given.at("amqp.urls").column == 5);
  CHECK(given.at("amqp.urls").raw == "amqp://n1/\namqp://n2/");
  CHECK(given.at("amqp.urls[0]").raw == "amqp://n1/");
  CHECK(given.at("amqp.urls[1]").line == 4);
  CHECK(given.at("amqp.urls[1]").column == 9);
  CHECK(given.at("amqp.urls[1]").raw == "amqp://n2/");
}

TEST_CASE("the reference shows amqp.urls as a secret list of AMQP URLs", "[config][amqp_urls]") {
  CHECK(cfg::schema_markdown().find(
            "| `amqp.urls` | list of 1 to 16 values of type AMQP URL (`amqp://` or `amqps://`), "
            "secret | (unset) | no |") != std::string::npos);
}
