// The configuration schema: every key the daemon reads, in one table. The
// validator checks the file against it, the loader fills Config through each
// key's member and docs/configuration.md is generated from it, so a key cannot
// exist in one and be missing from another.
#include "program_executor/config/schema.hpp"

#include <string>

#include "member.hpp"

#ifndef PE_DEFAULT_PLUGIN_DIR
#error "PE_DEFAULT_PLUGIN_DIR must be defined by the build (see core/CMakeLists.txt)"
#endif

namespace program_executor::config {

namespace {

// A key's default is its member's value in a default Config (config.hpp's
// member initializers), unless the entry gives one.
std::vector<KeySpec> with_member_defaults(std::vector<KeySpec> keys) {
  const Config defaults;
  for (KeySpec& key : keys) {
    if (key.default_value.empty() && key.member.read != nullptr) {
      key.default_value = key.member.read(defaults);
    }
  }
  return keys;
}

}  // namespace

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> keys = with_member_defaults({
      {.path = "amqp.url",
       .type = ValueType::amqp_url,
       .member = member<&Config::amqp, &AmqpSettings::url>,
       .help = "Broker URL, `amqp://user:password@host:port/vhost` (`amqps://` for TLS). It holds "
               "the password: take it from the environment with `${NAME}`, or leave it out and "
               "use `amqp.password_file`.",
       .secret = true},
      {.path = "amqp.urls",
       .type = ValueType::amqp_url,
       .list = true,
       .member = member<&Config::amqp, &AmqpSettings::urls>,
       .help = "The nodes of a RabbitMQ cluster, each a URL as `amqp.url`. A worker connects to "
               "the first it can reach, in an order shuffled per worker so a fleet spreads over "
               "the nodes, and fails over to the next when its connection is lost. Use "
               "`amqp.url` or `amqp.urls`, not both; `amqp.password_file` and `amqp.tls` apply "
               "to every node. The URLs may hold passwords: take them from the environment with "
               "`${NAME}`, or use `amqp.password_file`.",
       .secret = true},
      {.path = "amqp.password_file",
       .type = ValueType::path,
       .member = member<&Config::amqp, &AmqpSettings::password_file>,
       .help = "File holding the broker password (its whole content, less one final line "
               "break), for the user named in `amqp.url`, or in each of `amqp.urls` (`guest` "
               "when none); it replaces any password written there. With systemd credentials: "
               "`${CREDENTIALS_DIRECTORY}/amqp-password` and `LoadCredential=amqp-password:FILE` "
               "in the unit. Must be a regular file of at most 4096 bytes."},
      {.path = "amqp.queue",
       .type = ValueType::queue_name,
       .member = member<&Config::amqp, &AmqpSettings::queue>,
       .help = "Queue the steps of programs travel on; `<queue>-retry-1000` is declared beside it "
               "for retries. Every worker of one deployment uses the same name."},
      {.path = "amqp.durable",
       .type = ValueType::boolean,
       .member = member<&Config::amqp, &AmqpSettings::durable>,
       .help = "Durable queues and persistent messages, so a broker restart loses no program. "
               "`false` joins a deployment of the original Node.js library, whose queues are not "
               "durable (RabbitMQ refuses to re-declare a queue with another durability)."},
      {.path = "amqp.prefetch",
       .type = ValueType::integer,
       .member = member<&Config::amqp, &AmqpSettings::prefetch>,
       .help = "Unacknowledged messages the broker hands to each worker at a time. A worker "
               "runs up to half of them as one batch, with one claim and one commit for all "
               "(see docs/performance.md); while a batch runs longer than 100 ms, the messages "
               "waiting behind it go back to the broker for other workers. `1` runs one step "
               "at a time, as program-executor-js does.",
       .min = 1,
       .max = 1000},
      {.path = "amqp.heartbeat_seconds",
       .type = ValueType::integer,
       .member = member<&Config::amqp, &AmqpSettings::heartbeat_seconds>,
       .help = "AMQP heartbeat interval in seconds; `0` disables heartbeats.",
       .min = 0,
       .max = 3600},
      {.path = "amqp.queue_type",
       .type = ValueType::choice,
       .member = member<&Config::amqp, &AmqpSettings::queue_type>,
       .help = "`classic` queues, as program-executor-js declares them, or `quorum` queues, "
               "replicated across a RabbitMQ cluster (needs `amqp.durable: true`).",
       .choices = choices_of<QueueType>()},
      {.path = "amqp.delivery_limit",
       .type = ValueType::integer,
       .member = member<&Config::amqp, &AmqpSettings::delivery_limit>,
       .help = "Quorum queues only: the broker dead-letters a message delivered this many times "
               "(a backstop behind `recovery.max_crashes`; the message comes back through the "
               "retry queue); `0`: no limit. Messages handed back from behind a slow job count "
               "as deliveries too: keep it well above `recovery.max_crashes`.",
       .min = 0,
       .max = 1000000},
      {.path = "amqp.tls.ca_file",
       .type = ValueType::path,
       .member = member<&Config::amqp, &AmqpSettings::tls, &TlsSettings::ca_file>,
       .help = "PEM bundle of the CAs that verify the broker (`amqps://` only); unset: the "
               "system's default CAs."},
      {.path = "amqp.tls.cert_file",
       .type = ValueType::path,
       .member = member<&Config::amqp, &AmqpSettings::tls, &TlsSettings::cert_file>,
       .help = "Client certificate (PEM) for mutual TLS; unset: none."},
      {.path = "amqp.tls.key_file",
       .type = ValueType::path,
       .member = member<&Config::amqp, &AmqpSettings::tls, &TlsSettings::key_file>,
       .help = "Private key (PEM) of `amqp.tls.cert_file`."},
      {.path = "amqp.tls.verify_peer",
       .type = ValueType::boolean,
       .member = member<&Config::amqp, &AmqpSettings::tls, &TlsSettings::verify_peer>,
       .help = "Verify the broker's certificate chain. Turn off only for tests."},
      {.path = "amqp.tls.verify_hostname",
       .type = ValueType::boolean,
       .member = member<&Config::amqp, &AmqpSettings::tls, &TlsSettings::verify_hostname>,
       .help = "Check that the broker's certificate names the host of `amqp.url` (with "
               "`amqp.urls`, of the node connected to)."},
      {.path = "database.backend",
       .type = ValueType::choice,
       .member = member<&Config::database, &DatabaseSettings::backend>,
       .help = "SQL backend: `sqlite3` (a file on this host), `postgresql` (PostgreSQL 11+), "
               "`mysql` (MariaDB 10.5+, MySQL 8) or `odbc` (a server reached through an ODBC "
               "driver; PostgreSQL and MySQL/MariaDB so far). See docs/databases.md.",
       .choices = choices_of<DatabaseBackend>()},
      {.path = "database.connection",
       .type = ValueType::string,
       .member = member<&Config::database, &DatabaseSettings::connection>,
       .help = "Connection string of the backend: sqlite3 `db=<file>`; postgresql "
               "`host=... dbname=... user=... password=...` or a `postgresql://` URL; mysql "
               "`host=... db=... user=... password=...` or a `mysql://` URL; odbc an ODBC "
               "connection string (`DSN=...` or `DRIVER={...};SERVER=...`). It may hold a "
               "password: take it from the environment with `${NAME}`, or leave it out and use "
               "`database.password_file`.",
       .secret = true},
      {.path = "database.password_file",
       .type = ValueType::path,
       .member = member<&Config::database, &DatabaseSettings::password_file>,
       .help = "File holding the database password (its whole content, less one final line "
               "break), for the user named in `database.connection`; it replaces any password "
               "written there. postgresql, mysql and odbc only (each in its own syntax: "
               "`password='...'`, the userinfo of a URL, `PWD={...}`). With systemd credentials: "
               "`${CREDENTIALS_DIRECTORY}/db-password` and `LoadCredential=db-password:FILE` in "
               "the unit. Must be a regular file of at most 4096 bytes."},
      {.path = "database.table",
       .type = ValueType::sql_identifier,
       .member = member<&Config::database, &DatabaseSettings::table>,
       .help = "Table recording the progress of each program, created on first use (or taken "
               "over from program-executor-js). Every worker of one deployment uses the same "
               "table. At most 48 characters (`<table>_schema_version` must fit)."},
      {.path = "database.migrate",
       .type = ValueType::boolean,
       .member = member<&Config::database, &DatabaseSettings::migrate>,
       .help = "Apply missing schema migrations at start (needs a user allowed to create and "
               "alter the table). `false`: only check that the schema is current and refuse to "
               "start otherwise; run `program-executor migrate` with such a user instead."},
      {.path = "database.reconnect_timeout_seconds",
       .type = ValueType::integer,
       .member = member<&Config::database, &DatabaseSettings::reconnect_timeout_seconds>,
       .help = "After the database connection is lost, how long one operation keeps trying to "
               "reconnect (with backoff) before it fails; a failed step is retried later.",
       .min = 0,
       .max = 3600},
      {.path = "plugins.directory",
       .type = ValueType::path,
       .member = member<&Config::plugins, &PluginSettings::directory>,
       // The build's directory: a default Config has none.
       .default_value = PE_DEFAULT_PLUGIN_DIR,
       .help = "Directory whose `*.so` files are loaded as job plugins at start.",
       .documented_default = "`<libdir>/program-executor/plugins`, fixed at build time"},
      {.path = "workers",
       .type = ValueType::integer,
       .member = member<&Config::workers>,
       .help = "Messages processed in parallel.",
       .min = 1,
       .max = 256},
      {.path = "shutdown_grace_seconds",
       .type = ValueType::integer,
       .member = member<&Config::shutdown_grace>,
       .help = "After SIGTERM, seconds the running jobs get to finish before the daemon stops.",
       .min = 0,
       .max = 86400},
      {.path = "retry.backoff",
       .type = ValueType::choice,
       .member = member<&Config::retry, &RetrySettings::defaults, &RetryPolicySettings::backoff>,
       .help = "How the delay between retries of a failed step grows: `fixed` (`delay_ms` every time, as program-executor-js) or `exponential` (doubling from `delay_ms` up to `max_delay_ms`). Retries wait in broker queues `<queue>-retry-<ms>`; no broker plugin is needed.",
       .choices = choices_of<Backoff>()},
      {.path = "retry.delay_ms",
       .type = ValueType::integer,
       .member = member<&Config::retry, &RetrySettings::defaults, &RetryPolicySettings::delay_ms>,
       .help = "Delay before the first retry, in milliseconds. Delays other than 1000 are rounded to a ladder of retry queues about 19 % apart.",
       .min = 100,
       .max = 86400000},
      {.path = "retry.max_delay_ms",
       .type = ValueType::integer,
       .member = member<&Config::retry, &RetrySettings::defaults, &RetryPolicySettings::max_delay_ms>,
       .help = "Longest delay between two retries, in milliseconds (exponential backoff).",
       .min = 100,
       .max = 86400000},
      {.path = "retry.jitter_percent",
       .type = ValueType::integer,
       .member = member<&Config::retry, &RetrySettings::defaults, &RetryPolicySettings::jitter_percent>,
       .help = "Random spread of each delay, in percent of it (20: from 90 % to 110 %), so steps that failed together do not retry together.",
       .min = 0,
       .max = 100},
      {.path = "retry.max_attempts",
       .type = ValueType::integer,
       .member = member<&Config::retry, &RetrySettings::defaults, &RetryPolicySettings::max_attempts>,
       .help = "Executions of a step ending in a retryable error before its program is errored with a message saying so; `0`: retry forever (as program-executor-js). Yields (a checkpoint past its time limit) do not count.",
       .min = 0,
       .max = 1000000},
      {.path = "retry.jobs.*.backoff",
       .type = ValueType::choice,
       .member = retry_job_member<&RetryPolicySettings::backoff>,
       .help = "This job's backoff (overrides `retry.backoff`).",
       .choices = choices_of<Backoff>(),
       .documented_default = "the `retry.backoff` value"},
      {.path = "retry.jobs.*.delay_ms",
       .type = ValueType::integer,
       .member = retry_job_member<&RetryPolicySettings::delay_ms>,
       .help = "This job's first delay (overrides `retry.delay_ms`).",
       .min = 100,
       .max = 86400000,
       .documented_default = "the `retry.delay_ms` value"},
      {.path = "retry.jobs.*.max_delay_ms",
       .type = ValueType::integer,
       .member = retry_job_member<&RetryPolicySettings::max_delay_ms>,
       .help = "This job's longest delay (overrides `retry.max_delay_ms`).",
       .min = 100,
       .max = 86400000,
       .documented_default = "the `retry.max_delay_ms` value"},
      {.path = "retry.jobs.*.jitter_percent",
       .type = ValueType::integer,
       .member = retry_job_member<&RetryPolicySettings::jitter_percent>,
       .help = "This job's jitter (overrides `retry.jitter_percent`).",
       .min = 0,
       .max = 100,
       .documented_default = "the `retry.jitter_percent` value"},
      {.path = "retry.jobs.*.max_attempts",
       .type = ValueType::integer,
       .member = retry_job_member<&RetryPolicySettings::max_attempts>,
       .help = "This job's attempt limit (overrides `retry.max_attempts`).",
       .min = 0,
       .max = 1000000,
       .documented_default = "the `retry.max_attempts` value"},
      {.path = "recovery.lease_seconds",
       .type = ValueType::integer,
       .member = member<&Config::recovery, &RecoverySettings::lease>,
       .help = "A worker's claim on the step it runs lasts this long and is renewed while the job "
               "runs; a claim that runs out (the worker died) lets another worker take the step.",
       .min = 2,
       .max = 3600},
      {.path = "recovery.stale_after_seconds",
       .type = ValueType::integer,
       .member = member<&Config::recovery, &RecoverySettings::stale_after>,
       .help = "A running program that has not moved for this long past when it was expected to "
               "(its claim expired, or its next step message is missing) gets its current step "
               "republished by the recovery sweeper. Bounds the recovery time after a crash.",
       .min = 1,
       .max = 86400},
      {.path = "recovery.unclaimed_after_seconds",
       .type = ValueType::integer,
       .member = member<&Config::recovery, &RecoverySettings::unclaimed_after>,
       .help = "How long a step nobody claimed may be overdue before the sweeper republishes it "
               "(a lost message); `0`: `recovery.stale_after_seconds`. program-executor-js workers "
               "take no claim, so in a deployment shared with them a step they run looks "
               "unclaimed: set this above their longest job there, or it runs twice.",
       .min = 0,
       .max = 604800},
      {.path = "recovery.max_age_hours",
       .type = ValueType::integer,
       .member = member<&Config::recovery, &RecoverySettings::max_age>,
       .help = "Running programs that stopped moving longer ago than this are not republished "
               "(taking over an old table must not revive abandoned work); they are counted in "
               "the log (`recovery.abandoned`) and can be resumed by hand. `0`: no limit.",
       .min = 0,
       .max = 876000},
      {.path = "recovery.sweep_interval_seconds",
       .type = ValueType::integer,
       .member = member<&Config::recovery, &RecoverySettings::sweep_interval>,
       .help = "How often each daemon looks for overdue programs.",
       .min = 1,
       .max = 3600},
      {.path = "recovery.max_crashes",
       .type = ValueType::integer,
       .member = member<&Config::recovery, &RecoverySettings::max_crashes>,
       .help = "A step whose process died this many times while it ran alone (segfault, abort, "
               "out of memory) errors its program instead of crashing workers forever. A step "
               "that was in a process that died runs alone, isolated, until it moves on, so only "
               "the job that crashes is stopped (docs/guarantees.md).",
       .min = 1,
       .max = 1000},
      {.path = "history.enabled",
       .type = ValueType::boolean,
       .member = member<&Config::history, &HistorySettings::enabled>,
       .help = "Write the attempt history: one row per attempt of a step in `<table>_attempts`, "
               "in the transaction of the step's state change, read by `program-executor "
               "explain` (docs/operations.md). `false`: nothing is written (what is there stays "
               "readable and is still pruned)."},
      {.path = "history.retention",
       .type = ValueType::integer,
       .member = member<&Config::history, &HistorySettings::retention>,
       .help = "Days an attempt is kept: older ones are deleted by the recovery sweeper in "
               "bounded batches (docs/databases.md, *Attempt history*). `prune` also deletes the "
               "attempts of the programs it deletes.",
       .min = 1,
       .max = 36500},
      {.path = "log.level",
       .type = ValueType::choice,
       .member = member<&Config::log, &LogSettings::level>,
       .help = "Lowest severity written to the log.",
       .choices = choices_of<log::Level>()},
      {.path = "log.format",
       .type = ValueType::choice,
       .member = member<&Config::log, &LogSettings::format>,
       .help = "`text`: one line per event for people; `json`: one JSON object per line for log "
               "shippers.",
       .choices = choices_of<log::Format>()},
      {.path = "metrics.listen",
       .type = ValueType::string,
       .member = member<&Config::metrics, &MetricsSettings::listen>,
       .help = "Address of the Prometheus endpoint, `http://<listen>/metrics`: `IPV4:PORT` "
               "(`0.0.0.0:9464` for every interface; no IPv6). Loopback by default, since the "
               "endpoint has no authentication. Empty (`\"\"`): no endpoint. See "
               "docs/operations.md for the metrics."},
      {.path = "web.listen",
       .type = ValueType::string,
       .member = member<&Config::web, &WebSettings::listen>,
       .help = "Address of the HTTP API and web console that `program-executor serve` runs "
               "(docs/api.md, docs/console.md): `IPV4:PORT`. Loopback by default; put a TLS "
               "reverse proxy in front, or set `web.tls.*`, before opening it to a network. "
               "The workers (`run`) ignore the `web:` section."},
      {.path = "web.operator_token_file",
       .type = ValueType::path,
       .member = member<&Config::web, &WebSettings::operator_token_file>,
       .help = "File of the bearer tokens of operators (read, create, cancel, resume): one "
               "token per line, blank lines and `#` comments ignored, at least 16 characters "
               "each. With systemd credentials: `${CREDENTIALS_DIRECTORY}/operator-tokens`. "
               "Read at start and on SIGHUP."},
      {.path = "web.viewer_token_file",
       .type = ValueType::path,
       .member = member<&Config::web, &WebSettings::viewer_token_file>,
       .help = "File of the bearer tokens of viewers (read only), as `web.operator_token_file`. "
               "`serve` refuses to start when neither file names a token."},
      {.path = "web.allow_unknown_jobs",
       .type = ValueType::boolean,
       .member = member<&Config::web, &WebSettings::allow_unknown_jobs>,
       .help = "Let `POST /api/v1/programs` create programs with jobs no plugin of "
               "`plugins.directory` has (a producer deployed before its plugin); refused with "
               "422 otherwise."},
      {.path = "web.max_body_bytes",
       .type = ValueType::integer,
       .member = member<&Config::web, &WebSettings::max_body_bytes>,
       .help = "Largest request body the API reads; a larger one is refused with 413 before it "
               "is read whole.",
       .min = 1024,
       .max = 67108864},
      {.path = "web.threads",
       .type = ValueType::integer,
       .member = member<&Config::web, &WebSettings::threads>,
       .help = "Requests `serve` handles at once (its thread pool; each holds one database "
               "session while it runs).",
       .min = 1,
       .max = 256},
      {.path = "web.tls.cert_file",
       .type = ValueType::path,
       .member = member<&Config::web, &WebSettings::tls_cert_file>,
       .help = "Certificate chain (PEM) for HTTPS; with `web.tls.key_file`. Empty: plain HTTP."},
      {.path = "web.tls.key_file",
       .type = ValueType::path,
       .member = member<&Config::web, &WebSettings::tls_key_file>,
       .help = "Private key (PEM) of `web.tls.cert_file`."},
  });
  return keys;
}

namespace {

std::string type_text(const KeySpec& key) {
  std::string text;
  if (key.list) text = "list of 1 to " + std::to_string(max_list_items) + " values of type ";
  switch (key.type) {
    case ValueType::string:
      text += "string";
      break;
    case ValueType::boolean:
      text += "boolean";
      break;
    case ValueType::integer:
      text += "integer, " + std::to_string(key.min) + " to " + std::to_string(key.max);
      break;
    case ValueType::choice:
      text += "one of";
      for (std::size_t i = 0; i < key.choices.size(); ++i) {
        text += (i == 0 ? " `" : ", `");
        text += key.choices[i];
        text += '`';
      }
      break;
    case ValueType::queue_name:
      text += "queue name (1 to 200 of `A-Z a-z 0-9 _ . : -`, not starting with `amq.`)";
      break;
    case ValueType::sql_identifier:
      text += "SQL identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters)";
      break;
    case ValueType::path:
      text += "path";
      break;
    case ValueType::amqp_url:
      text += "AMQP URL (`amqp://` or `amqps://`)";
      break;
  }
  if (key.secret) text += ", secret";
  return text;
}

// A table cell must not contain a raw pipe or line break.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string schema_markdown() {
  std::string out =
      "| key | type | default | required | description |\n"
      "| --- | --- | --- | --- | --- |\n";
  for (const KeySpec& key : schema()) {
    std::string default_text;
    if (!key.documented_default.empty()) {
      default_text = key.documented_default;
    } else if (key.default_value.empty()) {
      default_text = "(unset)";
    } else {
      default_text = "`" + std::string(key.default_value) + "`";
    }
    out += "| `" + cell(key.path) + "` | " + cell(type_text(key)) + " | " + cell(default_text) +
           " | " + (key.required ? "yes" : "no") + " | " + cell(key.help) + " |\n";
  }
  return out;
}

}  // namespace program_executor::config
