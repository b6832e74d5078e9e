// program-executor: the daemon (`run`) and the operator's commands, one binary.
// A thin shell: parsing arguments, signals and exit codes; the work is in core.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "cli_errors.hpp"
#include "commands.hpp"
#include "run_step_command.hpp"
#include "serve_command.hpp"
#include "housekeeping_commands.hpp"

namespace {

// --json anywhere before "--" asks for JSON errors too, even when the rest of
// the command line cannot be parsed.
bool asks_for_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace program_executor::daemon;
  CLI::App app{"program-executor: runs programs (ordered lists of jobs loaded from plugins) from\n"
               "RabbitMQ, bookkeeping their progress in a SQL table."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("program-executor ") + PE_VERSION);
  app.footer("Exit codes: 0 ok, 1 failure, 2 usage error. Configuration reference: "
             "docs/configuration.md.\nRun `program-executor COMMAND --help`.");

  CommonOptions common;
  auto add_config = [&common](CLI::App* command) {
    command->add_option("-c,--config", common.config_path, "YAML configuration file")
        ->capture_default_str();
    command->add_option("--log-format", common.log_format,
                        "Log lines as text or json for this run (default: the config's "
                        "log.format for run, text for the other commands)")
        ->check(CLI::IsMember({"text", "json"}));
  };
  // Operator commands read the daemon unit's environment file for ${NAME}.
  auto add_environment = [&common](CLI::App* command) {
    command->add_option("--environment-file", common.environment_file,
                        "Environment file the daemon's unit reads (default: environment, or "
                        "NAME.environment for NAME.yaml, beside the config)");
  };
  auto add_json = [&common](CLI::App* command) {
    command->add_flag("--json", common.json,
                      "Print the result as JSON, for scripts (errors too: {\"error\", "
                      "\"message\"} on stdout)");
  };

  auto* run = app.add_subcommand("run", "Run the daemon: consume programs until SIGTERM/SIGINT");
  add_config(run);
  // The daemon's output is its log: --json would have nothing to apply to.
  bool run_json = false;
  run->add_flag("--json", run_json)->group("");

  auto* serve = app.add_subcommand(
      "serve",
      "Run the HTTP API and web console (the config's web: section; docs/api.md): until "
      "SIGTERM/SIGINT, SIGHUP rereads the token files and the plugin directory's jobs");
  add_config(serve);
  add_environment(serve);

  CreateOptions create_options;
  auto* create = app.add_subcommand("create", "Create a program and print its run id");
  add_config(create);
  add_environment(create);
  create->add_option("--jobs", create_options.jobs,
                     "Job names, comma separated, in order (none empty); jobs no plugin in the "
                     "plugin directory has are warned about")
      ->required();
  create->add_option("--program-data", create_options.program_data,
                     "JSON object every job of the program sees")
      ->capture_default_str();
  create->add_option("--job-data", create_options.job_data,
                     "JSON object of initial job data keyed by job name")
      ->capture_default_str();
  create->add_flag("--strict", create_options.strict,
                   "Refuse jobs no plugin in the plugin directory has (instead of a warning)");
  add_json(create);

  std::string run_id;
  auto* status = app.add_subcommand("status", "Show a program: its state, jobs and where it stands");
  add_config(status);
  add_environment(status);
  status->add_option("RUN_ID", run_id, "Run id of the program")->required();
  status->add_flag("--json", common.json, "Print the row as JSON, with the table's column names");

  auto* explain = app.add_subcommand(
      "explain",
      "Show what happened to a program: each attempt of each step, where it ran, how long, the "
      "retries, yields and crashes, and why the program is in its state");
  add_config(explain);
  add_environment(explain);
  explain->add_option("RUN_ID", run_id, "Run id of the program")->required();
  explain->add_flag("--json", common.json,
                    "Print {runId, state, reason, attempts: [...]}, attempts oldest first");

  ListOptions list_options;
  auto* list = app.add_subcommand("list", "List programs, newest first");
  add_config(list);
  add_environment(list);
  list->add_option("--state", list_options.state, "running, finished, errored or cancelled")
      ->check(CLI::IsMember({"running", "finished", "errored", "cancelled"}));
  list->add_option("--job", list_options.job, "Only programs with this job");
  list->add_option("--errored-since", list_options.errored_since,
                   "Only programs that errored since: DURATION back from now (90d, 12h, 30m, 45s, "
                   "2w) or UTC TIMESTAMP (2026-01-31, 2026-01-31T12:00:00Z)");
  list->add_option("--worker", list_options.worker,
                   "Only programs whose step this worker holds: HOST, HOST:PID or HOST:PID:WORKER "
                   "(as the WORKER column shows)");
  list->add_option("--limit", list_options.limit, "Programs per page")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  list->add_option("--page", list_options.page, "Page number, from 1")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  add_json(list);

  int from_step = 0;
  auto* resume = app.add_subcommand(
      "resume", "Restart an errored or cancelled program, keeping its job data");
  add_config(resume);
  add_environment(resume);
  resume->add_option("RUN_ID", run_id, "Run id of the program")->required();
  resume->add_option("--from-step", from_step,
                     "Step to restart at, 1-based as `status` numbers them (default: where it stopped)")
      ->check(CLI::Range(1, 1000000));
  add_json(resume);

  auto* jobs = app.add_subcommand("jobs", "List every job the plugin directory provides");
  add_config(jobs);
  add_environment(jobs);
  add_json(jobs);

  auto* cancel = app.add_subcommand(
      "cancel",
      "Stop a program: errored_at is set (message \"cancelled\"), its next step is dropped; "
      "a program already cancelled is left as it is (exit 0)");
  add_config(cancel);
  add_environment(cancel);
  cancel->add_option("RUN_ID", run_id, "Run id of the program")->required();
  add_json(cancel);

  CheckOptions check_options;
  auto* check = app.add_subcommand(
      "check",
      "Validate the configuration, load every plugin with the trust checks, and look for "
      "secrets other users can read and files the daemon's user cannot read; exit 1 naming "
      "each problem (warnings: exit 0, unless --strict)");
  add_config(check);
  add_environment(check);
  check->add_flag("--strict", check_options.strict, "Warnings fail the check too (exit 1)");
  check->add_flag("--connect", check_options.connect,
                  "Also reach the broker (queues compatible with the config) and the database "
                  "(table and schema version); changes nothing");
  check->add_option("--user", check_options.user,
                    "The daemon's user, whose access to the config and files is checked")
      ->capture_default_str();
  add_json(check);

  bool migrate_check = false;
  auto* migrate = app.add_subcommand(
      "migrate", "Create or upgrade the bookkeeping table's schema (needs DDL privileges)");
  add_config(migrate);
  add_environment(migrate);
  migrate->add_flag("--check", migrate_check,
                    "Change nothing: print the schema version, exit 1 if migrations are missing");
  add_json(migrate);

  auto* version = app.add_subcommand("version", "Print the version and the plugin ABI version");
  add_json(version);

  // Started by the daemon to run one step alone (docs/guarantees.md, "Crashes"); not listed.
  auto* run_step = app.add_subcommand("run-step", "Run one step in an isolated process")->group("");
  add_config(run_step);
  // prune, parked; resume --rerun-finished; jobs against the running daemons.
  HousekeepingCommands housekeeping(app, common);
  housekeeping.extend_resume(resume);
  housekeeping.extend_jobs(jobs);

  // --json anywhere asks for JSON errors, even when CLI11 took it as the value
  // of another option (`create --jobs --json`) or it is run's.
  set_json_errors(asks_for_json(argc, argv));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return fail_usage(app, error);
  }
  if (run_json) {
    return fail(error_code::usage,
                "run has no --json: the daemon's output is its log; use --log-format json (or "
                "log.format: json) for JSON lines");
  }

  // The broker socket may close under us; that is an error to report, not a signal to die of.
  std::signal(SIGPIPE, SIG_IGN);

  if (const auto code = housekeeping.run(run_id, from_step)) return *code;
  if (*run) return run_daemon(common);
  if (*serve) return serve_web(common);
  if (*run_step) return run_isolated_step_command(common.config_path);
  if (*create) return create_program(common, create_options);
  if (*status) return show_status(common, run_id);
  if (*list) return list_programs(common, list_options);
  if (*explain) return explain_program(common, run_id);
  if (*resume) return resume_program(common, run_id, from_step);
  if (*cancel) return cancel_program(common, run_id);
  if (*check) return check_config(common, check_options);
  if (*migrate) return migrate_schema(common, migrate_check);
  if (*version) return print_version(common);
  return exit_usage;
}
