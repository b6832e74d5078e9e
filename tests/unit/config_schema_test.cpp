// The schema table is consistent, and docs/configuration.md embeds exactly
// the reference generated from it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "program_executor/config/config.hpp"
#include "program_executor/config/schema.hpp"

namespace cfg = program_executor::config;

namespace {

constexpr std::string_view begin_marker = "<!-- BEGIN GENERATED SCHEMA -->\n";
constexpr std::string_view end_marker = "<!-- END GENERATED SCHEMA -->";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "a.b.c" with value v as block YAML: "a:\n  b:\n    c: \"v\"\n".
std::string yaml_setting(std::string_view path, std::string_view value) {
  std::string yaml;
  std::string indent;
  while (true) {
    const auto dot = path.find('.');
    yaml += indent + std::string(path.substr(0, dot)) + ":";
    if (dot == std::string_view::npos) break;
    yaml += "\n";
    indent += "  ";
    path.remove_prefix(dot + 1);
  }
  return yaml + " \"" + std::string(value) + "\"\n";
}

}  // namespace

TEST_CASE("docs/configuration.md embeds the generated schema table verbatim", "[config][schema]") {
  const std::string docs = read_text(PE_SOURCE_DIR "/docs/configuration.md");
  const auto begin = docs.find(begin_marker);
  const auto end = docs.find(end_marker);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  REQUIRE(begin < end);
  const std::string embedded = docs.substr(begin + begin_marker.size(), end - begin - begin_marker.size());
  const std::string expected = cfg::schema_markdown();
  if (embedded != expected) {
    std::cerr << "docs/configuration.md is out of date. Put this between the markers:\n"
              << begin_marker << expected << end_marker << "\n";
  }
  CHECK(embedded == expected);
}

TEST_CASE("schema keys are unique, documented and self-consistent", "[config][schema]") {
  std::set<std::string_view> paths;
  for (const cfg::KeySpec& key : cfg::schema()) {
    INFO(key.path);
    CHECK(paths.insert(key.path).second);
    CHECK_FALSE(key.help.empty());
    CHECK((key.required ? key.default_value.empty() : true));
    if (key.type == cfg::ValueType::integer) CHECK(key.min <= key.max);
    if (key.type == cfg::ValueType::choice) {
      CHECK_FALSE(key.choices.empty());
      // A per-job key has no default of its own: it inherits the global one.
      if (!key.default_value.empty()) {
        CHECK(std::find(key.choices.begin(), key.choices.end(), key.default_value) != key.choices.end());
      }
    }
  }
  // No path may be both a value and a mapping ("amqp" and "amqp.url").
  for (std::string_view path : paths) {
    INFO(path);
    CHECK(std::none_of(paths.begin(), paths.end(), [&](std::string_view other) {
      return other.size() > path.size() && other.substr(0, path.size() + 1) == std::string(path) + ".";
    }));
  }
}

TEST_CASE("every default passes the validation of its own key", "[config][schema]") {
  for (const cfg::KeySpec& key : cfg::schema()) {
    if (key.default_value.empty()) continue;
    INFO(key.path);
    const auto values = cfg::load_values(yaml_setting(key.path, key.default_value), "defaults.yaml", cfg::schema());
    const auto it = values.find(key.path);
    REQUIRE(it != values.end());
    CHECK(it->second == key.default_value);
  }
}

TEST_CASE("the expected keys exist with the documented types and limits", "[config][schema]") {
  auto find = [](std::string_view path) -> const cfg::KeySpec& {
    const auto& keys = cfg::schema();
    const auto it = std::find_if(keys.begin(), keys.end(), [&](const cfg::KeySpec& k) { return k.path == path; });
    REQUIRE(it != keys.end());
    return *it;
  };
  // 18 + amqp.password_file and database.password_file (security) + metrics.listen (ops)
  // + 6 recovery.* (step protocol, unclaimed steps, old programs) + amqp.queue_type and
  // amqp.delivery_limit (quorum queues) + 5 retry.* and 5 retry.jobs.*.* + 8 web.* (serve)
  // + history.enabled and history.retention (the attempt history) + amqp.urls (a cluster)
  CHECK(cfg::schema().size() == 52);
  CHECK(find("history.enabled").type == cfg::ValueType::boolean);
  CHECK(find("history.enabled").default_value == "true");
  CHECK(find("history.retention").type == cfg::ValueType::integer);
  CHECK(find("history.retention").default_value == "30");  // days
  CHECK(find("history.retention").min == 1);
  CHECK(find("web.listen").default_value == "127.0.0.1:8080");
  CHECK(find("web.allow_unknown_jobs").default_value == "false");
  CHECK(find("web.max_body_bytes").min == 1024);
  CHECK(find("recovery.unclaimed_after_seconds").default_value == "0");  // as stale_after
  CHECK(find("recovery.max_age_hours").default_value == "168");
  CHECK(find("retry.jobs.*.max_attempts").default_value.empty());  // inherits retry.max_attempts
  CHECK(find("retry.max_attempts").default_value == "0");           // forever, as the original
  CHECK(find("amqp.queue_type").choices == std::vector<std::string_view>{"classic", "quorum"});
  CHECK(find("recovery.lease_seconds").min == 2);
  CHECK(find("recovery.stale_after_seconds").default_value == "60");
  CHECK(find("recovery.max_crashes").min == 1);
  CHECK(find("amqp.url").secret);
  CHECK(find("amqp.url").type == cfg::ValueType::amqp_url);
  CHECK(find("database.connection").secret);
  CHECK_FALSE(find("database.table").secret);
  CHECK(find("amqp.prefetch").min == 1);
  CHECK(find("amqp.prefetch").max == 1000);
  CHECK(find("amqp.heartbeat_seconds").max == 3600);
  CHECK(find("workers").min == 1);
  CHECK(find("workers").max == 256);
  CHECK(find("shutdown_grace_seconds").max == 86400);
  CHECK(find("database.backend").choices ==
        std::vector<std::string_view>{"sqlite3", "postgresql", "mysql", "odbc"});
  CHECK(find("log.format").choices == std::vector<std::string_view>{"text", "json"});
  CHECK(find("log.level").choices ==
        std::vector<std::string_view>{"trace", "debug", "info", "warn", "error", "off"});
  CHECK(find("retry.backoff").choices == std::vector<std::string_view>{"fixed", "exponential"});
  CHECK(find("retry.jobs.*.backoff").choices == find("retry.backoff").choices);
  CHECK_FALSE(find("plugins.directory").default_value.empty());
}

// Texts a key accepts, as normalized by the validator: its default, each
// choice, its bounds, both booleans, or some text.
std::vector<std::string> sample_values(const cfg::KeySpec& key) {
  std::vector<std::string> samples;
  if (!key.default_value.empty()) samples.push_back(key.default_value);
  switch (key.type) {
    case cfg::ValueType::choice:
      samples.insert(samples.end(), key.choices.begin(), key.choices.end());
      break;
    case cfg::ValueType::integer:
      samples.push_back(std::to_string(key.min));
      samples.push_back(std::to_string(key.max));
      break;
    case cfg::ValueType::boolean:
      samples.insert(samples.end(), {"true", "false"});
      break;
    default:
      samples.push_back("sample_text");
      break;
  }
  return samples;
}

TEST_CASE("every key fills its own member and reads it back", "[config][schema]") {
  const auto& keys = cfg::schema();
  auto find = [&](std::string_view path) -> const cfg::KeySpec* {
    const auto it = std::find_if(keys.begin(), keys.end(), [&](const cfg::KeySpec& k) { return k.path == path; });
    return it == keys.end() ? nullptr : &*it;
  };
  for (const cfg::KeySpec& key : keys) {
    INFO(key.path);
    REQUIRE(key.member.fill != nullptr);
    const bool per_job = key.path.rfind("retry.jobs.*.", 0) == 0;
    // A per-job key has no default of its own; every other key has a member to read.
    CHECK((key.member.read == nullptr) == per_job);
    for (const std::string& value : sample_values(key)) {
      INFO(value);
      cfg::Config config;
      if (per_job) {
        // It fills the job's policy; read it through the global key of the same name.
        key.member.fill(config, "some.job", value);
        REQUIRE(config.retry.jobs.count("some.job") == 1);
        const cfg::KeySpec* global = find("retry." + std::string(key.path.substr(13)));
        REQUIRE(global != nullptr);
        cfg::Config as_defaults;
        as_defaults.retry.defaults = config.retry.jobs.at("some.job");
        CHECK(global->member.read(as_defaults) == value);
      } else {
        key.member.fill(config, {}, value);
        CHECK(key.member.read(config) == value);
      }
    }
  }
  // No two keys fill the same member: a value other than the default shows
  // through the key's own member only.
  const cfg::Config defaults;
  for (const cfg::KeySpec& key : keys) {
    if (key.member.read == nullptr) continue;
    INFO(key.path);
    const auto samples = sample_values(key);
    const auto other_value = std::find_if(samples.begin(), samples.end(), [&](const std::string& value) {
      return value != key.member.read(defaults);
    });
    REQUIRE(other_value != samples.end());
    cfg::Config config;
    key.member.fill(config, {}, *other_value);
    for (const cfg::KeySpec& other : keys) {
      if (&other == &key || other.member.read == nullptr) continue;
      INFO(other.path);
      CHECK(other.member.read(config) == other.member.read(defaults));
    }
  }
}

TEST_CASE("defaults come from the member initializers of config.hpp", "[config][schema]") {
  const cfg::Config defaults;
  for (const cfg::KeySpec& key : cfg::schema()) {
    if (key.member.read == nullptr || key.path == "plugins.directory") continue;
    INFO(key.path);
    CHECK(key.default_value == key.member.read(defaults));
  }
}

TEST_CASE("the markdown reference has one row per key and escapes pipes", "[config][schema]") {
  const std::string markdown = cfg::schema_markdown();
  CHECK(markdown.rfind("| key | type | default | required | description |\n| --- | --- | --- | --- | --- |\n", 0) == 0);
  CHECK(static_cast<std::size_t>(std::count(markdown.begin(), markdown.end(), '\n')) == cfg::schema().size() + 2);
  for (const cfg::KeySpec& key : cfg::schema()) {
    CHECK(markdown.find("| `" + std::string(key.path) + "` |") != std::string::npos);
  }
  CHECK(markdown.find("| `log.level` | one of `trace`, `debug`, `info`, `warn`, `error`, `off` | `info` | no |") !=
        std::string::npos);
  CHECK(markdown.find("| `amqp.tls.ca_file` | path | (unset) | no |") != std::string::npos);
  // The build-dependent plugin directory is shown in its documented form.
  CHECK(markdown.find("`<libdir>/program-executor/plugins`, fixed at build time") != std::string::npos);
}
