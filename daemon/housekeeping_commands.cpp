#include "housekeeping_commands.hpp"

#include "cli_errors.hpp"
#include "command_config.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/amqp/connection.hpp"
#include "program_executor/amqp/parked_queue.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/executor/loaded_jobs_record.hpp"
#include "program_executor/executor/program_status.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/store/database.hpp"
#include "program_executor/store/program_pruner.hpp"

namespace program_executor::daemon {
namespace {

void add_common(CLI::App* command, CommonOptions& common) {
  command->add_option("-c,--config", common.config_path, "YAML configuration file")
      ->capture_default_str();
  command->add_flag("--json", common.json, "Print the result as JSON, for scripts");
}

std::string utc_text(std::chrono::system_clock::time_point at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

nlohmann::json parked_json(const amqp::ParkedMessage& message) {
  nlohmann::json out{
      {"reason", message.reason},
      {"from", message.from},
      {"run_id", message.run_id ? nlohmann::json(*message.run_id) : nlohmann::json(nullptr)},
      {"body", message.body}};
  if (message.properties.timestamp) out["timestamp_ms"] = *message.properties.timestamp;
  return out;
}

std::string shortened(const std::string& text, std::size_t width) {
  return text.size() <= width ? text : text.substr(0, width - 3) + "...";
}

amqp::ParkedSelection selection_of(const ParkedOptions& parked) {
  if (parked.all == !parked.run_id.empty()) {
    throw std::invalid_argument("say which messages: --run-id RUN_ID or --all (not both)");
  }
  amqp::ParkedSelection selection;
  if (!parked.run_id.empty()) selection.run_id = parked.run_id;
  if (parked.limit > 0) selection.limit = static_cast<std::size_t>(parked.limit);
  return selection;
}

// requeue and drop: the messages taken, one line each, or JSON.
int report_taken(const CommonOptions& options, const std::string& verb, const std::string& queue,
                 const std::vector<amqp::ParkedMessage>& taken) {
  if (options.json) {
    nlohmann::json messages = nlohmann::json::array();
    for (const auto& message : taken) messages.push_back(parked_json(message));
    std::cout
        << nlohmann::json{{verb, taken.size()}, {"queue", queue}, {"messages", messages}}.dump()
        << "\n";
    return 0;
  }
  std::cout << verb << " " << taken.size() << (taken.size() == 1 ? " message" : " messages")
            << (verb == "requeued" ? " to " : " from ") << queue << "\n";
  for (const auto& message : taken) {
    std::cout << "  " << message.run_id.value_or("(no run id)") << "  " << message.reason << "\n";
  }
  return 0;
}

static_assert(PruneOptions{}.batch_size == store::default_prune_batch);

}  // namespace

HousekeepingCommands::HousekeepingCommands(CLI::App& app, CommonOptions& common) : common_(common) {
  prune_ = app.add_subcommand(
      "prune",
      "Delete programs that ended (finished, errored, cancelled) before a moment, in "
      "batches");
  add_common(prune_, common);
  prune_
      ->add_option("--finished-before", prune_options_.finished_before,
                   "DURATION back from now (90d, 12h, 30m, 45s, 2w) or UTC TIMESTAMP "
                   "(2026-01-31, 2026-01-31T12:00:00Z)")
      ->required();
  prune_->add_option("--batch-size", prune_options_.batch_size, "Rows per DELETE statement")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();

  CLI::App* parked =
      app.add_subcommand("parked", "List, requeue or drop the messages parked in <queue>-parked");
  parked->require_subcommand(1);
  parked_list_ = parked->add_subcommand(
      "list", "Show parked messages (reason, source queue, run id, body), leaving them parked");
  add_common(parked_list_, common);
  parked_list_->add_option("--limit", parked_options_.limit, "Messages to show (default 100)")
      ->check(CLI::Range(1, 100000));
  parked_requeue_ = parked->add_subcommand(
      "requeue", "Move parked messages back to the main queue (broker-confirmed) to run again");
  parked_drop_ = parked->add_subcommand("drop", "Delete parked messages for good");
  for (CLI::App* command : {parked_requeue_, parked_drop_}) {
    add_common(command, common);
    command->add_option("--run-id", parked_options_.run_id, "Only the messages of this run id");
    command->add_flag("--all", parked_options_.all, "Every parked message");
    command->add_option("--limit", parked_options_.limit, "At most this many messages")
        ->check(CLI::Range(1, 100000000));
  }
}

void HousekeepingCommands::extend_resume(CLI::App* resume) {
  resume_ = resume;
  resume->description(
      "Restart an errored or cancelled program (a finished one with "
      "--rerun-finished), keeping its job data");
  resume->add_flag("--rerun-finished", rerun_finished_,
                   "Restart a FINISHED program at --from-step N, e.g. one whose steps were skipped "
                   "because no loaded plugin had their job");
}

void HousekeepingCommands::extend_jobs(CLI::App* jobs) {
  jobs_ = jobs;
  jobs->description(
      "Every job the plugin directory provides, and whether the running daemons "
      "have loaded it");
  jobs->add_option("--state-directory", state_directory_,
                   "Where running daemons record what they loaded (default: "
                   "/var/lib/program-executor and its subdirectories)");
}

std::optional<int> HousekeepingCommands::run(const std::string& run_id, int from_step) {
  if (prune_ != nullptr && prune_->parsed()) return prune_programs(common_, prune_options_);
  if (parked_list_ != nullptr && parked_list_->parsed())
    return parked_list(common_, parked_options_);
  if (parked_requeue_ != nullptr && parked_requeue_->parsed()) {
    return parked_requeue(common_, parked_options_);
  }
  if (parked_drop_ != nullptr && parked_drop_->parsed())
    return parked_drop(common_, parked_options_);
  if (resume_ != nullptr && resume_->parsed() && rerun_finished_) {
    return rerun_finished_program(common_, run_id, from_step);
  }
  if (jobs_ != nullptr && jobs_->parsed()) return show_jobs(common_, state_directory_);
  return std::nullopt;
}

int prune_programs(const CommonOptions& options, const PruneOptions& prune) {
  return guarded([&] {
    const auto cutoff =
        store::parse_cutoff(prune.finished_before, std::chrono::system_clock::now());
    const config::Config config = load_for_command(options, Uses::database);
    const auto database = open_database_for_writing(config);
    auto store = database->program_store();
    const store::PruneReport report = store::prune_ended(*store, cutoff, prune.batch_size);
    log::event(log::Level::info, "programs.pruned", "",
               {{"deleted", report.deleted},
                {"batches", report.batches},
                {"ended_before", utc_text(cutoff)}});
    if (options.json) {
      std::cout << nlohmann::json{{"deleted", report.deleted},
                                  {"batches", report.batches},
                                  {"ended_before", utc_text(cutoff)},
                                  {"table", config.database.table}}
                       .dump()
                << "\n";
    } else {
      std::cout << "deleted " << report.deleted << " programs that ended before "
                << utc_text(cutoff) << " from table " << config.database.table << " ("
                << report.batches << (report.batches == 1 ? " batch" : " batches") << " of at most "
                << prune.batch_size << ")\n";
    }
    return 0;
  });
}

int parked_list(const CommonOptions& options, const ParkedOptions& parked) {
  return guarded([&] {
    const config::Config config = load_for_command(options);
    const amqp::QueueTopology topology = amqp::QueueTopology::from(config.amqp);
    auto connection = command_connection(config, "program-executor parked list");
    amqp::ParkedQueue queue(*connection, topology);
    const std::size_t limit = parked.limit > 0 ? static_cast<std::size_t>(parked.limit) : 100;
    const amqp::ParkedListing listing = queue.list(limit);
    if (options.json) {
      nlohmann::json messages = nlohmann::json::array();
      for (const auto& message : listing.messages) messages.push_back(parked_json(message));
      std::cout << nlohmann::json{{"queue", topology.parked_queue()},
                                  {"messages", messages},
                                  {"not_shown", listing.not_shown}}
                       .dump(2)
                << "\n";
      return 0;
    }
    if (listing.messages.empty()) {
      std::cout << "no parked messages in " << topology.parked_queue() << "\n";
      return 0;
    }
    int number = 0;
    for (const auto& message : listing.messages) {
      std::cout << "#" << ++number << "\n"
                << "  reason  " << (message.reason.empty() ? "-" : message.reason) << "\n"
                << "  from    " << (message.from.empty() ? "-" : message.from) << "\n"
                << "  run id  " << message.run_id.value_or("-") << "\n";
      if (message.properties.timestamp) {
        const auto at = std::chrono::system_clock::time_point(
            std::chrono::milliseconds(*message.properties.timestamp));
        std::cout << "  sent    " << utc_text(at) << "\n";
      }
      std::cout << "  body    " << shortened(message.body, 200) << "\n";
    }
    if (listing.not_shown > 0) {
      std::cout << "(" << listing.not_shown << " more not shown: --limit)\n";
    }
    return 0;
  });
}

int parked_requeue(const CommonOptions& options, const ParkedOptions& parked) {
  return guarded([&] {
    const amqp::ParkedSelection selection = selection_of(parked);
    const config::Config config = load_for_command(options);
    const amqp::QueueTopology topology = amqp::QueueTopology::from(config.amqp);
    auto connection = command_connection(config, "program-executor parked requeue");
    amqp::ParkedQueue queue(*connection, topology);
    const auto taken = queue.requeue(selection);
    log::event(
        log::Level::info, "parked.requeued", "",
        {{"queue", topology.main_queue()}, {"messages", static_cast<long long>(taken.size())}});
    return report_taken(options, "requeued", topology.main_queue(), taken);
  });
}

int parked_drop(const CommonOptions& options, const ParkedOptions& parked) {
  return guarded([&] {
    const amqp::ParkedSelection selection = selection_of(parked);
    const config::Config config = load_for_command(options);
    const amqp::QueueTopology topology = amqp::QueueTopology::from(config.amqp);
    auto connection = command_connection(config, "program-executor parked drop");
    amqp::ParkedQueue queue(*connection, topology);
    const auto taken = queue.drop(selection);
    log::event(
        log::Level::info, "parked.dropped", "",
        {{"queue", topology.parked_queue()}, {"messages", static_cast<long long>(taken.size())}});
    return report_taken(options, "dropped", topology.parked_queue(), taken);
  });
}

int show_jobs(const CommonOptions& options, const std::string& state_directory) {
  return guarded([&] {
    const config::Config config = load_for_command(options, Uses::plugins_only);
    const plugin::JobRegistry registry = plugin::load_directory(config.plugins.directory);
    std::vector<executor::LoadedPlugin> disk_files;
    for (const auto& job : registry.jobs()) {
      if (std::none_of(disk_files.begin(), disk_files.end(),
                       [&](const auto& file) { return file.file == job.plugin_file; })) {
        disk_files.push_back(executor::plugin_file_state(job.plugin_file));
      }
    }
    const std::string root =
        state_directory.empty() ? executor::default_state_root : state_directory;
    std::vector<std::string> notes;
    std::vector<executor::LoadedJobsRecord> daemons;
    for (auto& record : executor::find_loaded_jobs({root}, options.config_path, notes)) {
      if (executor::process_alive(record.pid)) {
        daemons.push_back(std::move(record));
      } else {
        notes.push_back("the record of pid " + std::to_string(record.pid) +
                        " is ignored: that daemon is not running");
      }
    }
    const auto rows = executor::compare_jobs(registry.jobs(), disk_files, daemons);
    if (options.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& row : rows) {
        out.push_back({{"job", row.job},
                       {"plugin", row.plugin_file},
                       {"state", executor::to_string(row.state)},
                       {"missing_in", row.missing_in}});
      }
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::size_t job_width = 3;
    std::size_t plugin_width = 6;
    for (const auto& row : rows) {
      job_width = std::max(job_width, row.job.size());
      plugin_width = std::max(plugin_width, row.plugin_file.size());
    }
    std::cout << std::left << std::setw(static_cast<int>(job_width)) << "JOB"
              << "  " << std::setw(static_cast<int>(plugin_width)) << "PLUGIN"
              << "  STATE\n";
    bool reload_needed = false;
    for (const auto& row : rows) {
      std::cout << std::setw(static_cast<int>(job_width)) << row.job << "  "
                << std::setw(static_cast<int>(plugin_width)) << row.plugin_file << "  "
                << executor::to_string(row.state);
      if (!row.missing_in.empty()) {
        std::cout << " (pid";
        for (const long long pid : row.missing_in) std::cout << " " << pid;
        std::cout << ")";
      }
      std::cout << "\n";
      reload_needed = reload_needed || row.state == executor::JobLoadState::not_loaded ||
                      row.state == executor::JobLoadState::changed ||
                      row.state == executor::JobLoadState::removed;
    }
    if (daemons.empty()) {
      std::cout << "no running daemon of " << options.config_path
                << " recorded what it loaded under " << root
                << " (the unit records it in its StateDirectory; elsewhere run the daemon "
                << "with STATE_DIRECTORY set and pass --state-directory)\n";
    }
    for (const auto& daemon : daemons) {
      std::cout << "daemon pid " << daemon.pid << ": started " << daemon.started_at << ", loaded "
                << daemon.loaded_at << " (" << daemon.reloads
                << (daemon.reloads == 1 ? " reload" : " reloads") << "), " << daemon.jobs.size()
                << " jobs\n";
    }
    if (reload_needed) {
      std::cout << "the running daemons differ from the plugin directory: steps of jobs not loaded "
                   "are skipped; `systemctl reload` the unit to load them\n";
    }
    for (const auto& note : notes) std::cout << "note: " << note << "\n";
    return 0;
  });
}

int rerun_finished_program(const CommonOptions& options, const std::string& run_id, int from_step) {
  return guarded([&] {
    if (from_step < 1) {
      return fail(error_code::usage,
          "--rerun-finished needs --from-step N: a finished program has no step where it "
          "stopped");
    }
    const config::Config config = load_for_command(options);
    const auto database = open_database_for_writing(config);
    auto store = database->program_store();
    auto row = store->find(run_id);
    if (!row) return fail(error_code::not_found, "no program with run id " + run_id);
    const std::string state = executor::program_state(*row);
    if (state != "finished") {
      return fail(error_code::invalid_state, "program " + run_id + " is " + state +
                  "; --rerun-finished restarts finished programs (resume without it restarts "
                  "errored or cancelled ones)");
    }
    const int total = static_cast<int>(row->jobs.size());
    const int step = from_step - 1;
    if (step >= total) {
      return fail(error_code::invalid_argument,
                  "--from-step " + std::to_string(from_step) + ": the program has " +
                  std::to_string(total) + " steps");
    }
    if (!store->restart_finished(run_id, step, config.recovery.stale_after)) {
      return fail(error_code::invalid_state, "program " + run_id + " changed meanwhile; look at it again with `status`");
    }
    publish_restarted_step(config, options, *row, step, "program.rerun",
                           "restarted finished program");
    return 0;
  });
}

}  // namespace program_executor::daemon
