// The daemon's configuration, loaded from YAML and validated against the schema.
// The member initializers below are the keys' defaults: the schema (schema.cpp)
// names the member each key fills and reads its default from here.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/config/database_backend.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::config {

/// A configuration problem, already formatted as
/// "<file>:<line>:<column>: <key.path>: <what is wrong>".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// amqp.queue_type: how the queues are declared.
enum class QueueType {
  classic,  ///< as program-executor-js declares them
  quorum,   ///< replicated across a RabbitMQ cluster; always durable
};

/// retry.backoff: how the delay between retries grows.
enum class Backoff {
  fixed,        ///< delay_ms every time
  exponential,  ///< doubling from delay_ms up to max_delay_ms
};

struct TlsSettings {
  std::string ca_file;    ///< PEM bundle used to verify the broker; empty: system default
  std::string cert_file;  ///< client certificate (PEM); empty: none
  std::string key_file;   ///< client private key (PEM); empty: none
  bool verify_peer = true;
  bool verify_hostname = true;
};

struct AmqpSettings {
  /// With amqp.password_file set, the file's password is already in here
  /// (percent-encoded): everything that connects reads the password from the URL.
  std::string url = "amqp://guest:guest@127.0.0.1:5672/";
  /// amqp.urls: the nodes of a broker cluster, each a URL as amqp.url (the
  /// password file's password in each); empty when the file gives amqp.url
  /// (or neither). The two keys exclude each other.
  std::vector<std::string> urls;
  std::string password_file;  ///< where the password came from; empty: from the URL itself
  std::string queue = "program-executor";
  bool durable = true;         ///< durable queues and persistent messages
  int prefetch = 64;           ///< unacknowledged messages per worker (half of them per batch)
  int heartbeat_seconds = 30;  ///< 0 disables heartbeats
  QueueType queue_type = QueueType::classic;
  int delivery_limit = 0;      ///< quorum only: the broker's redelivery cap, 0 none
  TlsSettings tls;

  /// The broker nodes to connect to: amqp.urls, or amqp.url alone.
  std::vector<std::string> nodes() const {
    return urls.empty() ? std::vector<std::string>{url} : urls;
  }
};

struct DatabaseSettings {
  DatabaseBackend backend = DatabaseBackend::sqlite3;
  /// With database.password_file set, the file's password is already in here,
  /// in the backend's syntax (config/database_password.hpp).
  std::string connection = "db=/var/lib/program-executor/programs.db";
  std::string password_file;  ///< where the password came from; empty: from the connection
  std::string table = "programs";
  bool migrate = true;                 ///< apply missing schema migrations at start
  int reconnect_timeout_seconds = 10;  ///< how long one operation waits for a lost database
};

struct PluginSettings {
  std::string directory;
};

struct LogSettings {
  log::Level level = log::Level::info;
  log::Format format = log::Format::text;
};

struct MetricsSettings {
  /// "IPV4:PORT" of the Prometheus endpoint; empty: no endpoint.
  std::string listen = "127.0.0.1:9464";
};

/// `program-executor serve`: the HTTP API and web console (docs/api.md).
struct WebSettings {
  std::string listen = "127.0.0.1:8080";  ///< "IPV4:PORT"
  std::string operator_token_file;        ///< one token per line; empty: no operators
  std::string viewer_token_file;          ///< one token per line; empty: no viewers
  bool allow_unknown_jobs = false;
  int max_body_bytes = 1048576;
  int threads = 8;
  std::string tls_cert_file;  ///< empty: plain HTTP
  std::string tls_key_file;
};

/// How a step that failed with a retryable error is retried.
struct RetryPolicySettings {
  Backoff backoff = Backoff::fixed;
  int delay_ms = 1000;
  int max_delay_ms = 300000;
  int jitter_percent = 0;
  int max_attempts = 0;  ///< 0: no limit
};

struct RetrySettings {
  RetryPolicySettings defaults;
  /// Per job name; unset keys take the defaults' values.
  std::map<std::string, RetryPolicySettings, std::less<>> jobs;
};

/// The step protocol's timing (docs/architecture.md, "The step protocol").
struct RecoverySettings {
  std::chrono::seconds lease{30};
  std::chrono::seconds stale_after{60};
  std::chrono::seconds unclaimed_after{0};  ///< 0: stale_after
  std::chrono::hours max_age{168};          ///< 0: no limit
  std::chrono::seconds sweep_interval{5};
  int max_crashes = 3;
};

/// The attempt history (`<table>_attempts`, `program-executor explain`).
struct HistorySettings {
  bool enabled = true;                     ///< false: no attempt is written
  std::chrono::days retention{30};         ///< attempts older are pruned by the sweeper
};

struct Config {
  std::string source;  ///< file the configuration was read from
  /// Secret keys whose value, as written in the file, holds a password itself
  /// rather than a ${NAME} reference (e.g. "amqp.url"): the file must then be
  /// kept from other users (`program-executor check` warns).
  std::vector<std::string> secrets_in_file;
  /// Secret keys of a part the caller said it does not use (LoadOptions) whose
  /// ${NAME} could not be resolved or whose password file was not read: they
  /// keep their defaults and must not be used.
  std::vector<std::string> unresolved;
  AmqpSettings amqp;
  DatabaseSettings database;
  PluginSettings plugins;
  int workers = 2;
  std::chrono::seconds shutdown_grace{30};
  LogSettings log;
  MetricsSettings metrics;
  WebSettings web;
  RecoverySettings recovery;
  RetrySettings retry;
  HistorySettings history;
};

/// The parts of the configuration a caller uses. Every key is validated
/// either way; the secrets of an unused part (amqp.url, amqp.urls and amqp.password_file
/// for the broker, database.connection and database.password_file for the
/// database) need not resolve: an operator's command that only reads the
/// database must not need the broker's password.
struct LoadOptions {
  bool broker = true;
  bool database = true;
};

/// Reads and validates a YAML file. Throws ConfigError (file:line:column: key: problem).
Config load_file(const std::filesystem::path& path, const LoadOptions& options = {});

/// Same, from text; `source_name` stands for the file name in error messages.
Config load_string(std::string_view yaml, std::string_view source_name,
                   const LoadOptions& options = {});

}  // namespace program_executor::config
