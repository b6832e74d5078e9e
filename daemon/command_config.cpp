#include "command_config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <system_error>

#include <iostream>

#include <nlohmann/json.hpp>

#include "cli_errors.hpp"
#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/queue_topology.hpp"
#include "program_executor/config/environment_file.hpp"
#include "program_executor/executor/step_publishing.hpp"
#include "program_executor/log/logger.hpp"
#include "sqlite_file.hpp"

namespace program_executor::daemon {
namespace {

UnitEnvironment last_environment;

// Reads a whole (small) file; errno's text on failure.
bool read_whole(const std::filesystem::path& path, std::string& text, std::string& problem) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    problem = std::generic_category().message(errno);
    return false;
  }
  char buffer[4096];
  while (true) {
    const ssize_t count = ::read(fd, buffer, sizeof buffer);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      problem = std::generic_category().message(errno);
      ::close(fd);
      return false;
    }
    if (count == 0) break;
    text.append(buffer, static_cast<std::size_t>(count));
    if (text.size() > 1024 * 1024) {
      problem = "larger than 1 MiB";
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  return true;
}

// "environment variable X is not set" from the loader, with where the unit
// takes it from and how to give it to this command.
std::string with_environment_hint(const std::string& message) {
  if (message.find("environment variable ") == std::string::npos ||
      message.find(" is not set") == std::string::npos) {
    return message;
  }
  const UnitEnvironment& environment = last_environment;
  if (message.find("CREDENTIALS_DIRECTORY") != std::string::npos) {
    return message +
           "; an operator's command outside the unit: run it as root with "
           "CREDENTIALS_DIRECTORY set to the directory of the credential files (the unit's "
           "LoadCredential= sources), or give the secret through the environment file";
  }
  if (environment.file.empty()) return message;
  if (!environment.exists) {
    return message + "; the unit's environment file " + environment.file.string() +
           " does not exist: write NAME=value lines there (mode 0640), or set the variable";
  }
  if (!environment.read) {
    return message + "; the unit's environment file " + environment.file.string() +
           " cannot be read by this user (" + environment.problem +
           "): run the command as root (sudo), or set the variable";
  }
  return message + " (nor in the unit's environment file " + environment.file.string() + ")";
}

}  // namespace

UnitEnvironment import_unit_environment(const CommonOptions& options) {
  UnitEnvironment result;
  const bool explicit_file = !options.environment_file.empty();
  result.file = explicit_file ? std::filesystem::path(options.environment_file)
                              : config::unit_environment_file(options.config_path);
  struct stat st {};
  result.exists = ::stat(result.file.c_str(), &st) == 0;
  if (!result.exists && !explicit_file) return result;
  std::string text;
  result.read = read_whole(result.file, text, result.problem);
  if (!result.read && explicit_file) {
    throw CommandError(error_code::invalid_argument,
                       "--environment-file " + result.file.string() + ": cannot read: " +
                           result.problem);
  }
  for (const auto& [name, value] : config::parse_environment_file(text)) {
    // The shell's value wins: an operator may override one for a command.
    if (std::getenv(name.c_str()) != nullptr) continue;
    ::setenv(name.c_str(), value.c_str(), 0);
    ++result.assigned;
  }
  return result;
}

const UnitEnvironment& last_unit_environment() { return last_environment; }

config::Config load_for_command(const CommonOptions& options, Uses uses) {
  last_environment = import_unit_environment(options);
  config::LoadOptions parts;
  parts.broker = uses == Uses::broker_and_database;
  parts.database = uses != Uses::plugins_only;
  config::Config config;
  try {
    config = config::load_file(options.config_path, parts);
  } catch (const config::ConfigError& e) {
    throw config::ConfigError(with_environment_hint(e.what()));
  }
  const log::Format format =
      log::parse_format(options.log_format.empty() ? "text" : options.log_format);
  log::configure(std::max(log::Level::warn, config.log.level), format);
  if (const auto file = sqlite_file(config.database); file && parts.database) {
    note_database_file(*file);
  }
  return config;
}

std::unique_ptr<amqp::Connection> command_connection(const config::Config& config, const char* name) {
  // With several nodes, the first that answers (in a random order: many
  // commands at once spread over a cluster).
  auto connection =
      amqp::BrokerNodes::from(config.amqp, 0).shuffled(amqp::node_order_seed(0)).connect(name);
  connection->declare(amqp::QueueTopology::from(config.amqp));
  return connection;
}

void publish_restarted_step(const config::Config& config, const CommonOptions& options,
                            const store::ProgramRow& row, int step, const char* event,
                            const std::string& what) {
  const std::string& job = row.jobs[static_cast<std::size_t>(step)];
  auto connection = command_connection(config, "program-executor resume");
  executor::publish_step(*connection, config.amqp.queue, config.amqp.durable, row.run_id, row.jobs,
                         step, row.program_data);
  log::event(log::Level::info, event, "", {{"run_id", row.run_id}, {"step", step}, {"job", job}});
  if (options.json) {
    std::cout << nlohmann::json{{"run_id", row.run_id}, {"state", "running"}, {"step", step}}.dump()
              << "\n";
  } else {
    std::cout << what << " " << row.run_id << " at step " << step + 1 << " of " << row.jobs.size()
              << " (" << job << ")\n";
  }
}

void configure_service_log(const config::Config& config, const CommonOptions& options) {
  log::configure(config.log.level,
                 options.log_format.empty() ? config.log.format : log::parse_format(options.log_format),
                 log::Destination::standard_output);
}

std::unique_ptr<store::Database> open_database_read_only(const config::Config& config,
                                                         TableRequired table) {
  config::DatabaseSettings settings = config.database;
  settings.migrate = false;
  if (const auto file = sqlite_file(settings)) {
    struct stat st {};
    if (::stat(file->c_str(), &st) != 0) {
      throw CommandError(error_code::database,
                         "the SQLite database " + file->string() +
                             " does not exist; this command changes nothing, so it does not "
                             "create it: the daemon creates it at its first start (or run "
                             "`program-executor migrate` as the daemon's user)");
    }
    // SOCI's sqlite3 backend: SQLITE_OPEN_READONLY, which also never creates the file.
    settings.connection += " readonly=true";
    // SQLite may still create the -wal and -shm files beside it: as their owner.
    act_as_owner_of(*file);
  }
  auto database = std::make_unique<store::Database>(settings, 1);
  if (table == TableRequired::no) return database;
  const store::SchemaStatus status = database->schema_status();
  if (!status.table_exists) {
    throw CommandError(error_code::database,
                       "table " + settings.table + " does not exist" +
                           (sqlite_file(config.database)
                                ? " in " + sqlite_file(config.database)->string()
                                : std::string()) +
                           ": the daemon creates it at its first start (or run `program-executor "
                           "migrate`)");
  }
  if (status.version < status.latest) {
    throw CommandError(error_code::migrations_missing,
                       "table " + settings.table + " is at schema version " +
                           std::to_string(status.version) + ", this program needs " +
                           std::to_string(status.latest) +
                           ": run `program-executor migrate` (this command changes nothing)");
  }
  return database;
}

std::unique_ptr<store::Database> open_database_for_writing(const config::Config& config,
                                                           Migrate migrate, std::size_t sessions) {
  if (const auto file = sqlite_file(config.database)) act_as_owner_of(*file);
  auto database = std::make_unique<store::Database>(config.database, sessions);
  if (migrate == Migrate::as_configured) database->ensure_schema();
  return database;
}

}  // namespace program_executor::daemon
