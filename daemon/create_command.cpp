// `program-executor create`: a program from the command line. The job names
// are checked before anything is written: none empty, none an option, each
// following the job-name rule; jobs no plugin of the plugin directory has are
// accepted with a warning (a producer may run ahead of a deploy), or refused
// with --strict.
#include <algorithm>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_errors.hpp"
#include "command_config.hpp"
#include "commands.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/job_name.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/plugin/plugin_loader.hpp"

namespace program_executor::daemon {
namespace {

// The names of --jobs, or a usage error naming the bad one.
std::vector<std::string> job_names(const std::string& jobs) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (true) {
    const auto comma = jobs.find(',', start);
    names.push_back(jobs.substr(start, comma == std::string::npos ? std::string::npos
                                                                   : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const std::string which = "--jobs: job " + std::to_string(i + 1) + " of " +
                              std::to_string(names.size());
    if (name.empty()) {
      throw CommandError(error_code::usage,
                         which + " is empty ('" + jobs + "'): give each job a name");
    }
    if (name.front() == '-') {
      throw CommandError(error_code::usage,
                         which + " '" + name +
                             "' starts with '-': an option, not a job name");
    }
    if (!config::is_valid_job_name(name)) {
      throw CommandError(error_code::usage,
                         which + " '" + name + "' is not a job name (" +
                             std::string(config::job_name_rule) + ")");
    }
  }
  return names;
}

nlohmann::json parse_json_object(const std::string& text, const char* option) {
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw CommandError(error_code::usage,
                       std::string(option) + " is not valid JSON: " + e.what());
  }
  if (!value.is_object()) {
    throw CommandError(error_code::usage, std::string(option) + " must be a JSON object");
  }
  return value;
}

void warn(const std::string& message) {
  std::cerr << "program-executor: warning: " << message << "\n";
}

// The jobs of `names` that no plugin in the directory has, in their order.
std::vector<std::string> unknown_jobs(const std::vector<std::string>& names,
                                      const plugin::JobRegistry& registry) {
  std::set<std::string> known;
  for (const auto& job : registry.jobs()) known.insert(job.name);
  std::vector<std::string> unknown;
  for (const auto& name : names) {
    if (!known.count(name) && std::find(unknown.begin(), unknown.end(), name) == unknown.end()) {
      unknown.push_back(name);
    }
  }
  return unknown;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

int create_program(const CommonOptions& options, const CreateOptions& create) {
  return guarded([&] {
    sdk::ProgramRequest request;
    request.jobs = job_names(create.jobs);
    request.program_data = parse_json_object(create.program_data, "--program-data");
    request.job_data = parse_json_object(create.job_data, "--job-data");
    const config::Config config = load_for_command(options);

    // Before anything is written: the jobs the plugin directory provides.
    std::vector<std::string> unknown;
    try {
      unknown = unknown_jobs(request.jobs, plugin::load_directory(config.plugins.directory));
    } catch (const plugin::PluginLoadError& e) {
      if (create.strict) {
        throw CommandError(error_code::plugin,
                           std::string("--strict: cannot check the jobs against the plugin "
                                       "directory: ") + e.what());
      }
      warn(std::string("cannot check the jobs against the plugin directory: ") + e.what());
    }
    if (!unknown.empty()) {
      const std::string message = "no plugin in " + config.plugins.directory +
                                  " has the job(s) " + joined(unknown);
      if (create.strict) {
        throw CommandError(error_code::unknown_jobs, message + " (--strict)");
      }
      warn(message + ": a daemon that has not loaded a job skips it (job.skipped); deploy "
                     "the plugin and reload before the program gets there");
    }

    const auto database = open_database_for_writing(config);
    auto store = database->program_store();
    // A short-lived connection: no heartbeats needed.
    const auto connection = command_connection(config, "program-executor create");
    executor::ProgramCreator creator(*store, *connection, config.amqp.queue, config.amqp.durable,
                                     metrics::no_metrics(), config.recovery.stale_after);
    const std::string run_id = creator.create(request);
    if (options.json) {
      std::cout << nlohmann::json{{"run_id", run_id}, {"unknown_jobs", unknown}}.dump() << "\n";
    } else {
      std::cout << run_id << "\n";
    }
    return 0;
  });
}

}  // namespace program_executor::daemon
