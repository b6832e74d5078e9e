// The loader: defaults, a full file, and one exact message per kind of error.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"
#include "program_executor/config/schema.hpp"
#include "support/scoped_env.hpp"
#include "support/test_environment.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;
using program_executor::test::TemporaryDirectory;

namespace {

using program_executor::test::ScopedEnv;

// The message load_string() throws for `yaml`, or "(no error)".
std::string default_plugin_dir() {
  for (const cfg::KeySpec& key : cfg::schema()) {
    if (key.path == "plugins.directory") return std::string(key.default_value);
  }
  return {};
}


std::string repeat(std::string_view text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  return out;
}

void check_defaults(const cfg::Config& config) {
  const cfg::Config defaults;
  CHECK(config.amqp.url == defaults.amqp.url);
  CHECK(config.amqp.url == "amqp://guest:guest@127.0.0.1:5672/");
  CHECK(config.amqp.queue == "program-executor");
  CHECK(config.amqp.durable == defaults.amqp.durable);
  CHECK(config.amqp.prefetch == defaults.amqp.prefetch);
  CHECK(config.amqp.heartbeat_seconds == defaults.amqp.heartbeat_seconds);
  CHECK(config.amqp.tls.ca_file.empty());
  CHECK(config.amqp.tls.cert_file.empty());
  CHECK(config.amqp.tls.key_file.empty());
  CHECK(config.amqp.tls.verify_peer);
  CHECK(config.amqp.tls.verify_hostname);
  CHECK(config.database.backend == defaults.database.backend);
  CHECK(config.database.connection == defaults.database.connection);
  CHECK(config.database.table == defaults.database.table);
  CHECK(config.plugins.directory == default_plugin_dir());
  CHECK_FALSE(config.plugins.directory.empty());
  CHECK(config.workers == defaults.workers);
  CHECK(config.shutdown_grace == defaults.shutdown_grace);
  CHECK(config.log.level == defaults.log.level);
  CHECK(config.log.format == defaults.log.format);
  CHECK(config.recovery.lease == defaults.recovery.lease);
  CHECK(config.recovery.stale_after == std::chrono::seconds(60));
  CHECK(config.recovery.sweep_interval == defaults.recovery.sweep_interval);
  CHECK(config.recovery.max_crashes == 3);
}

TEST_CASE("retry policies: defaults, and overrides per job name that inherit the rest",
          "[config][loader]") {
  const cfg::Config config = cfg::load_string(R"(retry:
  backoff: exponential
  delay_ms: 500
  max_attempts: 5
  jobs:
    export.upload:
      max_attempts: 10
      max_delay_ms: 60000
    "report:build":
      backoff: fixed
)",
                                              "retry.yaml");
  CHECK(config.retry.defaults.backoff == cfg::Backoff::exponential);
  CHECK(config.retry.defaults.delay_ms == 500);
  CHECK(config.retry.defaults.max_delay_ms == 300000);
  CHECK(config.retry.defaults.max_attempts == 5);
  REQUIRE(config.retry.jobs.size() == 2);
  const auto& upload = config.retry.jobs.at("export.upload");
  CHECK(upload.max_attempts == 10);
  CHECK(upload.max_delay_ms == 60000);
  CHECK(upload.backoff == cfg::Backoff::exponential);  // inherited
  CHECK(upload.delay_ms == 500);           // inherited
  CHECK(config.retry.jobs.at("report:build").backoff == cfg::Backoff::fixed);
  CHECK(config.retry.jobs.at("report:build").max_attempts == 5);

  CHECK(error_of("retry:\n  jobs:\n    a.b:\n      max_attemps: 3\n") ==
        "test.yaml:4:7: retry.jobs[a.b].max_attemps: unknown key; allowed keys here: backoff, "
        "delay_ms, max_delay_ms, jitter_percent, max_attempts");
  CHECK(error_of("retry:\n  jobs:\n    a.b:\n      delay_ms: 10\n") ==
        "test.yaml:4:17: retry.jobs[a.b].delay_ms: invalid value '10': must be between 100 and 86400000");
  CHECK(error_of("retry:\n  jobs:\n    \"bad name\":\n      delay_ms: 1000\n") ==
        "test.yaml:3:5: retry.jobs[bad name]: a name here is 1 to 255 of A-Z a-z 0-9 _ . : -");
  CHECK(error_of("retry:\n  delay_ms: 5000\n  max_delay_ms: 1000\n") ==
        "test.yaml:3:17: retry.max_delay_ms: max_delay_ms must not be less than delay_ms");
  CHECK(error_of("retry:\n  jobs:\n    a:\n      delay_ms: 400000\n") ==
        "test.yaml:4:17: retry.jobs[a].delay_ms: max_delay_ms must not be less than delay_ms");
}

TEST_CASE("quorum queues need durable queues", "[config][loader]") {
  const cfg::Config quorum = cfg::load_string("amqp:\n  queue_type: quorum\n  delivery_limit: 20\n", "q.yaml");
  CHECK(quorum.amqp.queue_type == cfg::QueueType::quorum);
  CHECK(quorum.amqp.delivery_limit == 20);
  CHECK_THROWS_WITH(cfg::load_string("amqp:\n  durable: false\n  queue_type: quorum\n", "q.yaml"),
                    "q.yaml:3:15: amqp.queue_type: quorum queues are always durable: amqp.durable must be true");
}

TEST_CASE("recovery settings are read in seconds", "[config][loader]") {
  const cfg::Config config = cfg::load_string(
      "recovery:\n  lease_seconds: 10\n  stale_after_seconds: 20\n  sweep_interval_seconds: 2\n"
      "  max_crashes: 5\n",
      "recovery.yaml");
  CHECK(config.recovery.lease == std::chrono::seconds(10));
  CHECK(config.recovery.stale_after == std::chrono::seconds(20));
  CHECK(config.recovery.sweep_interval == std::chrono::seconds(2));
  CHECK(config.recovery.max_crashes == 5);
  CHECK_THROWS_WITH(cfg::load_string("recovery:\n  lease_seconds: 1\n", "r.yaml"),
                    Catch::Contains("r.yaml:2:18: recovery.lease_seconds"));
}

constexpr std::string_view full_file = R"(# every key, none at its default
amqp:
  url: amqps://worker:secret@rabbit.example.com:5671/prod
  queue: jobs.main
  durable: false
  prefetch: 10
  heartbeat_seconds: 0
  tls:
    ca_file: /etc/ssl/ca.pem
    cert_file: /etc/ssl/client.pem
    key_file: /etc/ssl/client.key
    verify_peer: no
    verify_hostname: False
database:
  backend: sqlite3
  connection: "db=/tmp/p.db timeout=5"
  table: program_runs
plugins:
  directory: /opt/pe/plugins
workers: 256
shutdown_grace_seconds: 86400
log:
  level: trace
  format: json
)";

}  // namespace

TEST_CASE("an empty document means every default", "[config][loader]") {
  for (std::string_view yaml : {"", "# only a comment\n", "---\n", "\n\n", "amqp:\ndatabase:\n"}) {
    INFO("yaml: " << yaml);
    const cfg::Config config = cfg::load_string(yaml, "empty.yaml");
    CHECK(config.source == "empty.yaml");
    check_defaults(config);
  }
}

TEST_CASE("a file setting every key is read completely", "[config][loader]") {
  const cfg::Config config = cfg::load_string(full_file, "full.yaml");
  CHECK(config.amqp.url == "amqps://worker:secret@rabbit.example.com:5671/prod");
  CHECK(config.amqp.queue == "jobs.main");
  CHECK_FALSE(config.amqp.durable);
  CHECK(config.amqp.prefetch == 10);
  CHECK(config.amqp.heartbeat_seconds == 0);
  CHECK(config.amqp.tls.ca_file == "/etc/ssl/ca.pem");
  CHECK(config.amqp.tls.cert_file == "/etc/ssl/client.pem");
  CHECK(config.amqp.tls.key_file == "/etc/ssl/client.key");
  CHECK_FALSE(config.amqp.tls.verify_peer);
  CHECK_FALSE(config.amqp.tls.verify_hostname);
  CHECK(config.database.backend == program_executor::config::DatabaseBackend::sqlite3);
  CHECK(config.database.connection == "db=/tmp/p.db timeout=5");
  CHECK(config.database.table == "program_runs");
  CHECK(config.plugins.directory == "/opt/pe/plugins");
  CHECK(config.workers == 256);
  CHECK(config.shutdown_grace == std::chrono::seconds(86400));
  CHECK(config.log.level == program_executor::log::Level::trace);
  CHECK(config.log.format == program_executor::log::Format::json);
}

TEST_CASE("a partial file keeps the defaults of the keys it leaves out", "[config][loader]") {
  const cfg::Config config = cfg::load_string("amqp:\n  tls:\n    verify_peer: false\nworkers: +3\n", "p.yaml");
  CHECK_FALSE(config.amqp.tls.verify_peer);
  CHECK(config.amqp.tls.verify_hostname);
  CHECK(config.amqp.queue == "program-executor");
  CHECK(config.workers == 3);
  CHECK(config.log.level == program_executor::log::Level::info);
}

TEST_CASE("load_file reads the file and names it in errors", "[config][loader]") {
  const TemporaryDirectory dir;
  const auto path = dir.path() / "config.yaml";
  std::ofstream(path) << full_file;
  const cfg::Config config = cfg::load_file(path);
  CHECK(config.source == path.string());
  CHECK(config.workers == 256);

  std::ofstream(path, std::ios::trunc) << "workers: 4\nlog:\n  level: loud\n";
  try {
    cfg::load_file(path);
    FAIL("no error");
  } catch (const cfg::ConfigError& error) {
    CHECK(std::string(error.what()) ==
          path.string() +
              ":3:10: log.level: invalid value 'loud': must be one of trace, debug, info, warn, error, off");
  }
}

TEST_CASE("a file that cannot be read is reported with the reason", "[config][loader]") {
  const TemporaryDirectory dir;
  const auto missing = dir.path() / "missing.yaml";
  CHECK_THROWS_WITH(cfg::load_file(missing), missing.string() + ": cannot read: No such file or directory");
  CHECK_THROWS_WITH(cfg::load_file(dir.path()), dir.path().string() + ": cannot read: Is a directory");
  const auto empty = dir.path() / "empty.yaml";
  std::ofstream(empty).flush();
  check_defaults(cfg::load_file(empty));
}

TEST_CASE("unknown keys are errors listing the allowed keys", "[config][loader]") {
  CHECK(error_of("workers: 4\nworkerz: 5\n") ==
        "test.yaml:2:1: workerz: unknown key; allowed keys here: amqp, database, plugins, workers, "
        "shutdown_grace_seconds, retry, recovery, history, log, metrics, web");
  CHECK(error_of("amqp:\n  tls:\n    verify: false\n") ==
        "test.yaml:3:5: amqp.tls.verify: unknown key; allowed keys here: ca_file, cert_file, key_file, verify_peer, "
        "verify_hostname");
  CHECK(error_of("database: {backend: sqlite3, pool_size: 4}\n") ==
        "test.yaml:1:30: database.pool_size: unknown key; allowed keys here: backend, connection, "
        "password_file, table, migrate, reconnect_timeout_seconds");
}

TEST_CASE("values of the wrong type are errors at the value", "[config][loader]") {
  CHECK(error_of("workers: many\n") == "test.yaml:1:10: workers: invalid value 'many': expected an integer");
  CHECK(error_of("workers: 1.5\n") == "test.yaml:1:10: workers: invalid value '1.5': expected an integer");
  CHECK(error_of("workers: 99999999999999999999\n") ==
        "test.yaml:1:10: workers: invalid value '99999999999999999999': expected an integer");
  CHECK(error_of("amqp:\n  durable: maybe\n") ==
        "test.yaml:2:12: amqp.durable: invalid value 'maybe': expected a boolean (true or false)");
}

TEST_CASE("integers outside their range are errors", "[config][loader]") {
  CHECK(error_of("amqp:\n  prefetch: 0\n") ==
        "test.yaml:2:13: amqp.prefetch: invalid value '0': must be between 1 and 1000");
  CHECK(error_of("amqp:\n  prefetch: 1001\n") ==
        "test.yaml:2:13: amqp.prefetch: invalid value '1001': must be between 1 and 1000");
  CHECK(error_of("shutdown_grace_seconds: -1\n") ==
        "test.yaml:1:25: shutdown_grace_seconds: invalid value '-1': must be between 0 and 86400");
  CHECK(cfg::load_string("amqp: {prefetch: 1000, heartbeat_seconds: 3600}\n", "t").amqp.prefetch == 1000);
}

TEST_CASE("choices, identifiers and queue names are checked", "[config][loader]") {
  CHECK(error_of("log:\n  level: verbose\n") ==
        "test.yaml:2:10: log.level: invalid value 'verbose': must be one of trace, debug, info, warn, error, off");
  CHECK(error_of("database:\n  backend: oracle\n") ==
        "test.yaml:2:12: database.backend: invalid value 'oracle': must be one of sqlite3, postgresql, "
        "mysql, odbc");
  CHECK(error_of("database:\n  table: programs;drop\n") ==
        "test.yaml:2:10: database.table: invalid value 'programs;drop': an SQL identifier is "
        "[A-Za-z_][A-Za-z0-9_]*, at most 63 characters");
  CHECK(error_of("database:\n  table: 1programs\n") ==
        "test.yaml:2:10: database.table: invalid value '1programs': an SQL identifier is "
        "[A-Za-z_][A-Za-z0-9_]*, at most 63 characters");
  CHECK(error_of("database:\n  table: " + repeat("t", 64) + "\n") ==
        "test.yaml:2:10: database.table: invalid value '" + repeat("t", 64) +
            "': an SQL identifier is [A-Za-z_][A-Za-z0-9_]*, at most 63 characters");
  CHECK(error_of("amqp:\n  queue: my queue\n") ==
        "test.yaml:2:10: amqp.queue: invalid value 'my queue': a queue name is 1 to 200 of A-Z a-z 0-9 _ . : -");
  CHECK(error_of("amqp:\n  queue: \"\"\n") ==
        "test.yaml:2:10: amqp.queue: invalid value '': a queue name is 1 to 200 of A-Z a-z 0-9 _ . : -");
  CHECK(error_of("amqp:\n  queue: amq.jobs\n") ==
        "test.yaml:2:10: amqp.queue: invalid value 'amq.jobs': names starting with amq. are reserved by RabbitMQ");
  CHECK(error_of("plugins:\n  directory: ''\n") ==
        "test.yaml:2:14: plugins.directory: invalid value '': the path is empty");
  // An optional path may be set empty: it stays unset.
  CHECK(cfg::load_string("amqp: {tls: {ca_file: ''}}", "t").amqp.tls.ca_file.empty());
}

TEST_CASE("a mapping where a value is expected, and the reverse, are errors", "[config][loader]") {
  CHECK(error_of("workers:\n  count: 3\n") == "test.yaml:2:3: workers: expected an integer, found a mapping");
  CHECK(error_of("log:\n  level: [info, debug]\n") ==
        "test.yaml:2:10: log.level: expected one of trace, debug, info, warn, error, off, found a sequence");
  CHECK(error_of("amqp: amqp://localhost/\n") == "test.yaml:1:7: amqp: expected a mapping, found a scalar");
  CHECK(error_of("amqp:\n  tls:\n    - verify_peer\n") ==
        "test.yaml:3:5: amqp.tls: expected a mapping, found a sequence");
  CHECK(error_of("- workers\n") == "test.yaml:1:1: (top level): expected a mapping, found a sequence");
  CHECK(error_of("just text\n") == "test.yaml:1:1: (top level): expected a mapping, found a scalar");
  CHECK(error_of("? [a, b]\n: 1\n") == "test.yaml:1:3: (top level): a key must be a string, found a sequence");
}

TEST_CASE("a key without a value is an error at the key", "[config][loader]") {
  CHECK(error_of("amqp:\n  queue:\nworkers: 2\n") ==
        "test.yaml:2:3: amqp.queue: no value (remove the key to use its default)");
}

TEST_CASE("a missing required key is reported at the mapping that should hold it", "[config][loader]") {
  const std::vector<cfg::KeySpec> keys = {
      {.path = "server.host", .type = cfg::ValueType::string, .default_value = "", .required = true, .help = "h"},
      {.path = "server.port", .type = cfg::ValueType::integer, .default_value = "80", .required = false,
       .help = "p", .min = 1, .max = 65535},
      {.path = "name", .type = cfg::ValueType::string, .default_value = "", .required = false, .help = "n"},
  };
  auto error_with = [&](std::string_view yaml) -> std::string {
    try {
      cfg::load_values(yaml, "req.yaml", keys);
    } catch (const cfg::ConfigError& error) {
      return error.what();
    }
    return "(no error)";
  };
  CHECK(error_with("name: x\nserver:\n  port: 8080\n") == "req.yaml:3:3: server.host: required key is missing");
  CHECK(error_with("name: x\nserver:\n") == "req.yaml:2:1: server.host: required key is missing");
  CHECK(error_with("\n\nname: x\n") == "req.yaml:3:1: server.host: required key is missing");
  CHECK(error_with("") == "req.yaml:1:1: server.host: required key is missing");

  const auto values = cfg::load_values("server:\n  host: example.com\n", "req.yaml", keys);
  CHECK(values == std::map<std::string, std::string, std::less<>>{{"server.host", "example.com"},
                                                                  {"server.port", "80"}});
}

TEST_CASE("a duplicate key is an error naming both places", "[config][loader]") {
  CHECK(error_of("workers: 2\nlog:\n  level: info\nworkers: 3\n") ==
        "test.yaml:4:1: workers: duplicate key (first at line 1, column 1)");
  CHECK(error_of("amqp: {queue: a, queue: b}\n") ==
        "test.yaml:1:18: amqp.queue: duplicate key (first at line 1, column 8)");
}

TEST_CASE("YAML syntax errors carry the parser's position and message", "[config][loader]") {
  // yaml-cpp places an unclosed flow at the end of the input.
  CHECK(error_of("amqp:\n  queue: [a, b\n") == "test.yaml:3:1: end of sequence flow not found");
  CHECK(error_of("workers: 2\n  log: x\n") == "test.yaml:2:6: illegal map value");
  CHECK(error_of("log: {level: info: x}\n") == "test.yaml:1:18: end of map flow not found");
  CHECK(error_of("amqp: &a {}\nlog: *b\n") == "test.yaml:2:6: the referenced anchor is not defined");
}

TEST_CASE("more than one YAML document is an error", "[config][loader]") {
  CHECK(error_of("workers: 2\n---\nworkers: 3\n") ==
        "test.yaml:3:1: (top level): more than one YAML document (--- separates documents)");
}

TEST_CASE("${NAME} takes values from the environment", "[config][loader]") {
  const ScopedEnv password("PE_TEST_CONFIG_PASSWORD", "s3cr3t");
  const ScopedEnv workers("PE_TEST_CONFIG_WORKERS", "7");
  const ScopedEnv unset("PE_TEST_CONFIG_UNSET", nullptr);

  const cfg::Config config = cfg::load_string(
      "amqp:\n  url: amqp://app:${PE_TEST_CONFIG_PASSWORD}@mq/\ndatabase:\n"
      "  connection: \"db=/tmp/$${literal}.db\"\nworkers: ${PE_TEST_CONFIG_WORKERS}\n",
      "env.yaml");
  CHECK(config.amqp.url == "amqp://app:s3cr3t@mq/");
  CHECK(config.database.connection == "db=/tmp/${literal}.db");
  CHECK(config.workers == 7);
  // Only "${" starts a reference, only "$${" escapes one.
  CHECK(cfg::load_string("database: {connection: pa$s$$word$}", "t").database.connection == "pa$s$$word$");

  CHECK(error_of("amqp:\n  url: amqp://app:${PE_TEST_CONFIG_UNSET}@mq/\n") ==
        "test.yaml:2:8: amqp.url: environment variable PE_TEST_CONFIG_UNSET is not set");
  CHECK(error_of("amqp:\n  url: amqp://app:${PE_TEST_CONFIG_PASSWORD@mq/\n") ==
        "test.yaml:2:8: amqp.url: unterminated ${ (write $${ for a literal ${)");
  CHECK(error_of("amqp:\n  url: amqp://app:${pass word}@mq/\n") ==
        "test.yaml:2:8: amqp.url: invalid environment variable name in ${...} (letters, digits and _)");
  // The expanded value is what gets validated.
  CHECK(error_of("workers: ${PE_TEST_CONFIG_PASSWORD}\n") ==
        "test.yaml:1:10: workers: invalid value 's3cr3t': expected an integer");
}

TEST_CASE("values of secret keys are never echoed", "[config][loader]") {
  CHECK(error_of("amqp:\n  url: http://user:hunter2@mq/\n") ==
        "test.yaml:2:8: amqp.url: invalid value: must start with amqp:// or amqps://");

  const ScopedEnv url("PE_TEST_CONFIG_URL", "https://user:hunter2@mq/");
  const std::string message = error_of("amqp:\n  url: ${PE_TEST_CONFIG_URL}\n");
  CHECK(message == "test.yaml:2:8: amqp.url: invalid value: must start with amqp:// or amqps://");
  CHECK(message.find("hunter2") == std::string::npos);

  // A NUL in a secret: rejected, and the rest of it not shown either.
  CHECK(error_of("database:\n  connection: \"password=hunter2\\0x\"\n") ==
        "test.yaml:2:15: database.connection: invalid value: contains a NUL character");
}

TEST_CASE("nesting is bounded", "[config][loader]") {
  // The top-level mapping and 31 more are 32 levels, the limit: the error is
  // about the unknown key. One more level is too deep.
  const std::string ok_depth = "x: " + repeat("{a: ", 31) + "1" + repeat("}", 31) + "\n";
  CHECK(error_of(ok_depth).find("test.yaml:1:1: x: unknown key") == 0);

  const std::string too_deep = "x: " + repeat("{a: ", 32) + "1" + repeat("}", 32) + "\n";
  CHECK(error_of(too_deep) == "test.yaml:1:128: x" + repeat(".a", 31) + ": nesting deeper than 32 levels");

  // An alias cycle would recurse forever.
  CHECK(error_of("x: &loop [*loop]\n").find(": nesting deeper than 32 levels") != std::string::npos);

  // Far deeper input is stopped inside the parser, without exhausting the stack.
  CHECK(error_of(repeat("[", 100000)) == "test.yaml:1:1: nesting deeper than 32 levels");
  CHECK(error_of(repeat("- ", 100000) + "x\n").find(": nesting deeper than 32 levels") != std::string::npos);
}

TEST_CASE("alias fan-out cannot make the walk explode", "[config][loader]") {
  std::string yaml = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
  yaml += "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n";
  yaml += "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
  yaml += "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
  yaml += "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
  const std::string message = error_of(yaml);
  CHECK(message.find(": document too large (more than 10000 nodes, counting each use of an alias)") !=
        std::string::npos);
  CHECK(message.rfind("test.yaml:", 0) == 0);
}

TEST_CASE("history.*: the attempt history on for 30 days unless the file says otherwise", "[config]") {
  const cfg::Config defaults = cfg::load_string("workers: 1\n", "d.yaml");
  CHECK(defaults.history.enabled);
  CHECK(defaults.history.retention == std::chrono::days(30));
  const cfg::Config set = cfg::load_string("history:\n  enabled: false\n  retention: 7\n", "h.yaml");
  CHECK_FALSE(set.history.enabled);
  CHECK(set.history.retention == std::chrono::days(7));
  CHECK_THROWS_WITH(cfg::load_string("history:\n  retention: 0\n", "h.yaml"),
                    Catch::Contains("h.yaml:2:") && Catch::Contains("history.retention"));
  CHECK_THROWS_WITH(cfg::load_string("history:\n  keep: 3\n", "h.yaml"),
                    Catch::Contains("history.keep"));
}
