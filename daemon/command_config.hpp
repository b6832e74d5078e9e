// What every operator command does before its work: read the unit's
// environment file, load the configuration for the parts it uses, set up its
// log, and open the database for reading or for writing.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "commands.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/program_row.hpp"

namespace program_executor::daemon {

/// The parts of the deployment a command talks to: it needs their secrets.
enum class Uses { plugins_only, database, broker_and_database };

/// What became of the unit's environment file (for check, and for hints).
struct UnitEnvironment {
  std::filesystem::path file;  ///< empty: none applies
  bool exists = false;
  bool read = false;
  std::string problem;  ///< why it could not be read ("Permission denied")
  int assigned = 0;     ///< variables taken from it (those not set already)
};

/// Sets, from the environment file the daemon's unit reads for this config
/// (--environment-file, else config.yaml -> environment, NAME.yaml ->
/// NAME.environment beside it), every variable not set already. Throws
/// CommandError when --environment-file names a file that cannot be read.
UnitEnvironment import_unit_environment(const CommonOptions& options);

/// The environment import done by the last load_for_command().
const UnitEnvironment& last_unit_environment();

/// Imports the unit's environment, loads the config for `uses` and logs
/// warnings (and above) on stderr as text, or as JSON lines with
/// --log-format json: never mixed into the command's output on stdout.
/// A missing ${NAME} is explained with the environment file.
config::Config load_for_command(const CommonOptions& options,
                                Uses uses = Uses::broker_and_database);

enum class TableRequired { no, yes };
/// The log of a service (`run`, `serve`): the config's level, on stdout (the
/// journal), in --log-format or else the config's format. Called again after
/// a reload, which loads the config as a command does (warnings only).
void configure_service_log(const config::Config& config, const CommonOptions& options);

/// A broker connection for one command: no heartbeats, the queues declared
/// (the parked queue exists even where nothing was parked yet).
std::unique_ptr<amqp::Connection> command_connection(const config::Config& config, const char* name);

/// After `resume` (or `resume --rerun-finished`) set a program's row back to
/// `step`: publishes that step, logs `event` and prints the outcome, `what`
/// ("resumed", "restarted finished program") in text. Should the publish
/// fail, the program is overdue in stale_after and the daemons' recovery
/// sweeper publishes the step instead.
void publish_restarted_step(const config::Config& config, const CommonOptions& options,
                            const store::ProgramRow& row, int step, const char* event,
                            const std::string& what);

enum class Migrate { no, as_configured };

/// Opens the database for a command that changes nothing: a SQLite file is
/// opened read-only and must exist (it is never created or migrated); with
/// TableRequired::yes the table must exist and be current. Throws
/// CommandError naming the file.
std::unique_ptr<store::Database> open_database_read_only(
    const config::Config& config, TableRequired table = TableRequired::yes);

/// Opens the database for a command that writes; Migrate::as_configured makes
/// the table usable as the daemon would (database.migrate), with `sessions`
/// pooled connections (serve: one per request thread). As root, a SQLite
/// file is written as its owner (or its directory's, when it is new).
std::unique_ptr<store::Database> open_database_for_writing(
    const config::Config& config, Migrate migrate = Migrate::as_configured,
    std::size_t sessions = 1);

}  // namespace program_executor::daemon
