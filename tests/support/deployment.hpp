// One deployment of the daemon for one test: a temporary directory holding
// config.yaml (the broker, a queue of the test's own, a database, the plugin
// directory and whatever else the test sets), a way to start `program-executor
// run` on it, and cleanup of what the daemon left on the broker and a server
// database. Header-only because it uses core (amqp, store), which only the
// daemon tests link; pe_test_support does not.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/throughput_store.hpp"
#include "support/plugin_paths.hpp"
#include "support/process.hpp"
#include "support/program_cli.hpp"
#include "support/test_environment.hpp"

namespace program_executor::test {

/// A YAML single-quoted scalar; "$${" keeps the loader from expanding "${".
inline std::string yaml_quoted(const std::string& text) {
  std::string quoted = "'";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\'') {
      quoted += "''";
    } else if (text.compare(i, 2, "${") == 0) {
      quoted += "$$";
    } else {
      quoted += text[i];
    }
  }
  return quoted + "'";
}

/// What goes into a deployment's config.yaml. A setting left unset is not
/// written, so the daemon's default applies, as it would for an operator.
struct DeploymentOptions {
  /// amqp.url; empty: no amqp section (commands that never reach a broker).
  std::string amqp_url;
  /// amqp.queue is unique_name(queue_prefix): tests run in parallel on one broker.
  std::string queue_prefix = "pe-it";
  std::string amqp_password_file;  ///< amqp.password_file, when set
  /// amqp.urls (a cluster's nodes) instead of amqp.url, when set; amqp_url
  /// is then one of them, used by the test itself (cleanup).
  std::vector<std::string> amqp_urls;
  std::string queue_type;  ///< amqp.queue_type, when set
  std::optional<int> heartbeat_seconds;
  /// The database for the deployment's directory. Unset: a SQLite file
  /// programs.db there (only database.connection is written). suite_database
  /// of integration/daemon_server_database.hpp picks the suite's backend; a
  /// server database gets its tables dropped at the end.
  std::function<config::DatabaseSettings(const std::filesystem::path&)> database;
  std::optional<bool> migrate;  ///< database.migrate
  /// database.password_file, written as is: it may name ${CREDENTIALS_DIRECTORY}/...
  std::string database_password_file;
  /// The connection the end drops a server database's tables with, when the
  /// deployment's own cannot log in by itself (its password is in
  /// database_password_file); empty: the deployment's connection.
  std::string owner_connection;
  /// plugins.directory; ignored with own_plugin_directory.
  std::string plugin_dir = demo_plugin_dir().string();
  /// An empty plugins/ of the deployment's own, filled with install_plugin().
  bool own_plugin_directory = false;
  std::optional<int> workers;
  std::optional<int> shutdown_grace_seconds;
  std::string log_level;            ///< log.level, when set
  std::string log_format = "json";  ///< log.format, when set (the tests read JSON events)
  /// metrics.listen: none by default, since daemons of parallel tests would
  /// all want port 9464; nullopt leaves the daemon's default.
  std::optional<std::string> metrics_listen = std::string();
  std::string extra_yaml;  ///< written as is at the end: more top-level sections
  /// Queues beyond <queue>, <queue>-retry-1000 and <queue>-parked to delete at the end.
  std::vector<std::string> extra_queue_suffixes;
  /// false: the end deletes no queue (the broker is one the test cannot log
  /// in to with amqp_url, or one that never answers, so the test does it).
  bool delete_queues = true;
};

class Deployment {
 public:
  explicit Deployment(DeploymentOptions options) : options_(std::move(options)) {
    if (!options_.amqp_url.empty()) queue_ = unique_name(options_.queue_prefix);
    if (options_.database) {
      database_ = options_.database(dir_.path());
    } else {
      database_.connection = "db=" + (dir_.path() / "programs.db").string();
    }
    if (options_.own_plugin_directory) {
      options_.plugin_dir = plugins().string();
      std::filesystem::create_directories(plugins());
    }
    write_config();
  }

  ~Deployment() {
    if (!options_.amqp_url.empty() && options_.delete_queues) {
      try {  // leave the broker as we found it
        amqp::Connection connection(amqp::parse_url(options_.amqp_url, {}, 0), "test cleanup");
        std::vector<std::string> suffixes = {"", "-retry-1000", "-parked"};
        suffixes.insert(suffixes.end(), options_.extra_queue_suffixes.begin(),
                        options_.extra_queue_suffixes.end());
        for (const std::string& suffix : suffixes) connection.delete_queue(queue_ + suffix);
      } catch (const std::exception&) {
      }
    }
    if (database_.backend == config::DatabaseBackend::sqlite3) return;  // the file goes with the directory
    try {
      config::DatabaseSettings owner = database_;
      if (!options_.owner_connection.empty()) owner.connection = options_.owner_connection;
      store::Database database(owner, 1);
      soci::session session(database.pool());
      for (const std::string& table :
           {database_.table, store::schema_version_table(database_.table),
            store::throughput_table(database_.table), store::attempts_table(database_.table)}) {
        session << "DROP TABLE IF EXISTS " + database.dialect().quote(table);
      }
    } catch (const std::exception&) {
    }
  }

  Deployment(const Deployment&) = delete;
  Deployment& operator=(const Deployment&) = delete;

  /// Writes config.yaml from the options (again, after a test changed them).
  void write_config() const { write_config_to(config(), database_, options_.migrate); }

  /// Writes the deployment's config to `path` with `database` and
  /// database.migrate `migrate` instead: another user of the same table (a
  /// least-privileged one), beside the deployment's own config.yaml.
  void write_config_to(const std::filesystem::path& path, const config::DatabaseSettings& database,
                       std::optional<bool> migrate) const {
    std::ofstream out(path);
    if (!options_.amqp_url.empty()) {
      if (options_.amqp_urls.empty()) {
        out << "amqp:\n  url: " << yaml_quoted(options_.amqp_url) << "\n";
      } else {
        out << "amqp:\n  urls:\n";
        for (const std::string& url : options_.amqp_urls)
          out << "    - " << yaml_quoted(url) << "\n";
      }
      if (!options_.queue_type.empty()) out << "  queue_type: " << options_.queue_type << "\n";
      if (!options_.amqp_password_file.empty()) {
        out << "  password_file: " << options_.amqp_password_file << "\n";
      }
      out << "  queue: " << queue_ << "\n";
      if (options_.heartbeat_seconds)
        out << "  heartbeat_seconds: " << *options_.heartbeat_seconds << "\n";
    }
    out << "database:\n";
    // The SQLite file of the deployment takes the default backend and table.
    if (options_.database) out << "  backend: " << to_string(database.backend) << "\n";
    out << "  connection: " << yaml_quoted(database.connection) << "\n";
    if (!options_.database_password_file.empty())
      out << "  password_file: " << options_.database_password_file << "\n";
    if (options_.database) out << "  table: " << database.table << "\n";
    if (migrate) out << "  migrate: " << (*migrate ? "true" : "false") << "\n";
    out << "plugins:\n  directory: " << options_.plugin_dir << "\n";
    if (options_.workers) out << "workers: " << *options_.workers << "\n";
    if (options_.shutdown_grace_seconds) {
      out << "shutdown_grace_seconds: " << *options_.shutdown_grace_seconds << "\n";
    }
    if (!options_.log_level.empty() || !options_.log_format.empty()) out << "log:\n";
    if (!options_.log_level.empty()) out << "  level: " << options_.log_level << "\n";
    if (!options_.log_format.empty()) out << "  format: " << options_.log_format << "\n";
    if (options_.metrics_listen)
      out << "metrics:\n  listen: \"" << *options_.metrics_listen << "\"\n";
    out << options_.extra_yaml;
    REQUIRE(out.good());
  }

  /// The options, for a test that changes them and calls write_config().
  DeploymentOptions& options() { return options_; }

  /// Writes config.yaml again with `extra_yaml` at the end instead.
  void rewrite_config(std::string extra_yaml) {
    options_.extra_yaml = std::move(extra_yaml);
    write_config();
  }

  /// Installs a plugin as an operator would: a new file moved into plugins().
  void install_plugin(const std::filesystem::path& from, const std::string& name) const {
    const std::filesystem::path staging = dir_.path() / (name + ".new");
    std::filesystem::copy_file(from, staging, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(staging, plugins() / name);
  }

  /// `program-executor run` with the log in daemon-<n>.log, once it logged
  /// daemon.started. `environment` is added to the inherited one.
  std::unique_ptr<DaemonProcess> start_daemon(
      const std::vector<std::pair<std::string, std::string>>& environment = {},
      std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto log = dir_.path() / ("daemon-" + std::to_string(daemons_++) + ".log");
    auto daemon = std::make_unique<DaemonProcess>(config(), log, environment);
    REQUIRE(daemon->wait_for_log("\"daemon.started\"", timeout));
    return daemon;
  }

  /// {"command", args...}: `program-executor command -c <config> args...`.
  CommandResult cli(std::vector<std::string> args) const {
    const std::string command = args.front();
    args.erase(args.begin());
    return test::cli(config(), command, std::move(args));
  }

  std::string create(const std::string& jobs,
                     const nlohmann::json& job_data = nlohmann::json::object(),
                     const nlohmann::json& program_data = nlohmann::json::object()) const {
    return create_program(config(), jobs, job_data, program_data);
  }
  nlohmann::json status(const std::string& run_id) const {
    return program_status(config(), run_id);
  }
  nlohmann::json wait_until_ended(const std::string& run_id,
                                  std::chrono::seconds timeout = std::chrono::seconds(60)) const {
    return test::wait_until_ended(config(), run_id, timeout);
  }

  std::filesystem::path config() const { return dir_.path() / "config.yaml"; }
  /// A file in the deployment's directory (a log, a socket).
  std::filesystem::path path(const std::string& name) const { return dir_.path() / name; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path plugins() const { return dir_.path() / "plugins"; }
  const std::string& queue() const { return queue_; }
  const std::string& amqp_url() const { return options_.amqp_url; }
  const config::DatabaseSettings& database() const { return database_; }
  const std::string& table() const { return database_.table; }

 private:
  TemporaryDirectory dir_;
  DeploymentOptions options_;
  std::string queue_;
  config::DatabaseSettings database_;
  int daemons_ = 0;
};

}  // namespace program_executor::test
