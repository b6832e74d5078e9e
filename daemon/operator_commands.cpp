// The operator's commands on programs and the schema: status, cancel,
// migrate, version, list, resume (the others: create_command.cpp,
// housekeeping_commands.cpp, check_command.cpp; the services: run_command.cpp,
// serve_command.cpp).
#include "commands.hpp"

#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "program_executor/config/config.hpp"
#include "program_executor/executor/attempt_timeline.hpp"
#include "program_executor/executor/program_status.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/sdk/abi.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/program_pruner.hpp"
#include "cli_errors.hpp"
#include "command_config.hpp"

namespace program_executor::daemon {

int show_status(const CommonOptions& options, const std::string& run_id) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_read_only(config);
    auto store = database->program_store();
    auto row = store->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    const auto attempts = static_cast<long long>(store->attempts(run_id).size());
    if (options.json) {
      nlohmann::json status = nlohmann::json::parse(executor::status_json(*row));
      status["attempts"] = attempts;
      std::cout << status.dump(2) << "\n";  // indented, as status_json writes it
    } else {
      std::cout << executor::format_status(*row) << "attempts      " << attempts
                << " recorded (program-executor explain " << run_id << ")\n";
    }
    return 0;
  });
}

int explain_program(const CommonOptions& options, const std::string& run_id) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_read_only(config);
    auto store = database->program_store();
    auto row = store->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    const std::vector<store::AttemptRecord> attempts = store->attempts(run_id);
    if (options.json) {
      std::cout << executor::explain_json(*row, attempts).dump() << "\n";
    } else {
      for (const std::string& line : executor::format_timeline(*row, attempts)) std::cout << line << "\n";
    }
    return 0;
  });
}

int cancel_program(const CommonOptions& options, const std::string& run_id) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_for_writing(config);
    auto store = database->program_store();
    if (store->cancel(run_id, executor::cancelled_message)) {
      log::event(log::Level::info, "program.cancel_requested", "", {{"run_id", run_id}});
      if (options.json) {
        std::cout << nlohmann::json{{"run_id", run_id}, {"state", "cancelled"}}.dump() << "\n";
      } else {
        std::cout << "cancelled " << run_id << "\n";
      }
      return 0;
    }
    auto row = store->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    const std::string state = executor::program_state(*row);
    if (state == "cancelled") {
      // What was asked holds already: scripts may cancel twice.
      const std::string note = "program " + run_id + " was already cancelled; nothing changed";
      if (options.json) {
        std::cout << nlohmann::json{{"run_id", run_id}, {"state", "cancelled"}, {"note", note}}
                         .dump()
                  << "\n";
      } else {
        std::cout << note << "\n";
      }
      return 0;
    }
    return fail(error_code::invalid_state,
                "program " + run_id + " is already " + state + "; nothing to cancel");
  });
}

int migrate_schema(const CommonOptions& options, bool check_only) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    // --check changes nothing: a SQLite file is opened read-only, never created.
    const auto database = check_only ? open_database_read_only(config, TableRequired::no)
                                     : open_database_for_writing(config, Migrate::no);
    const std::string& table = config.database.table;
    const store::SchemaStatus status = database->schema_status();
    if (check_only && options.json) {
      std::cout << nlohmann::json{{"table", table},
                                  {"exists", status.table_exists},
                                  {"version", status.version},
                                  {"latest", status.latest},
                                  {"current", status.current()}}
                       .dump()
                << "\n";
      return status.current() ? 0 : exit_failure;
    }
    if (check_only) {
      std::cout << "table " << table << ": "
                << (status.table_exists ? "exists" : "does not exist") << ", schema version "
                << status.version << (status.versioned ? "" : " (no version table)")
                << ", this program needs " << status.latest << "\n";
      return status.current() ? 0
                              : fail(error_code::migrations_missing,
                                     "migrations are missing: run `program-executor migrate`");
    }
    const store::MigrationReport report = database->migrate();
    database->ensure_schema();  // the columns the store needs are all there
    if (options.json) {
      std::cout << nlohmann::json{{"table", table},
                                  {"from", report.from},
                                  {"to", report.to},
                                  {"created", !status.table_exists},
                                  {"adopted", report.adopted},
                                  {"applied", report.applied}}
                       .dump()
                << "\n";
      return 0;
    }
    std::cout << "table " << table << ": schema version " << report.from << " -> " << report.to;
    if (!status.table_exists) std::cout << " (created)";
    if (report.adopted) std::cout << " (adopted the existing table as version 1)";
    std::cout << "\n";
    for (const auto& applied : report.applied) std::cout << "  applied " << applied << "\n";
    if (report.applied.empty() && !report.adopted) std::cout << "  nothing to do\n";
    return 0;
  });
}

int print_version(const CommonOptions& options) {
  if (options.json) {
    std::cout << nlohmann::json{{"version", PE_VERSION}, {"plugin_abi", PROGRAM_EXECUTOR_ABI_VERSION}}.dump()
              << "\n";
  } else {
    std::cout << "program-executor " << PE_VERSION << " (plugin ABI "
              << PROGRAM_EXECUTOR_ABI_VERSION << ")\n";
  }
  return 0;
}

int list_programs(const CommonOptions& options, const ListOptions& list) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_read_only(config);
    store::ProgramFilter filter;
    if (!list.state.empty()) filter.state = list.state;
    if (!list.job.empty()) filter.job = list.job;
    if (!list.worker.empty()) filter.worker = list.worker;
    if (!list.errored_since.empty()) {
      // As prune's --finished-before: a moment on this host's clock, turned
      // into an age the database compares with its own clock.
      const auto now = std::chrono::system_clock::now();
      const auto since = store::parse_cutoff(list.errored_since, now);
      filter.errored_within = std::chrono::duration_cast<std::chrono::milliseconds>(now - since);
    }
    filter.limit = list.limit;
    filter.offset = (list.page - 1) * list.limit;
    const std::vector<store::ProgramRow> rows = database->program_store()->list(filter);
    if (options.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& row : rows) out.push_back(nlohmann::json::parse(executor::status_json(row)));
      std::cout << out.dump(2) << "\n";
    } else {
      std::cout << executor::format_list(rows);
      if (static_cast<int>(rows.size()) == list.limit) {
        std::cout << "(more: --page " << list.page + 1 << ")\n";
      }
    }
    return 0;
  });
}

int resume_program(const CommonOptions& options, const std::string& run_id, int from_step) {
  return guarded([&] {
    const config::Config config = load_for_command(options);
    const auto database = open_database_for_writing(config);
    auto store = database->program_store();
    auto row = store->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    const std::string state = executor::program_state(*row);
    if (state != "errored" && state != "cancelled") {
      return fail(error_code::invalid_state,
                  "program " + run_id + " is " + state + "; only errored or cancelled programs resume");
    }
    const int total = static_cast<int>(row->jobs.size());
    const int step = from_step > 0 ? from_step - 1 : row->step;
    if (step >= total) {
      return fail(error_code::invalid_argument,
                  "--from-step " + std::to_string(from_step) + ": the program has " +
                  std::to_string(total) + " steps");
    }
    if (!store->resume(run_id, step, config.recovery.stale_after)) {
      return fail(error_code::invalid_state,
                  "program " + run_id + " changed meanwhile; look at it again with `status`");
    }
    publish_restarted_step(config, options, *row, step, "program.resumed", "resumed");
    return 0;
  });
}

}  // namespace program_executor::daemon
