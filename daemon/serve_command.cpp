#include "serve_command.hpp"

#include <unistd.h>

#include <memory>
#include <mutex>
#include <thread>

#include <systemd/sd-daemon.h>

#include "cli_errors.hpp"
#include "command_config.hpp"
#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/queue_topology.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/store/database_unreachable.hpp"
#include "program_executor/store/throughput_store.hpp"
#include "program_executor/web/access_tokens.hpp"
#include "program_executor/web/program_api.hpp"
#include "program_executor/web/publisher_pool.hpp"
#include "program_executor/web/web_server.hpp"
#include "service_signals.hpp"
#include "sqlite_file.hpp"

namespace program_executor::daemon {
namespace {

using JobList = std::vector<std::pair<std::string, std::string>>;

// The plugin directory's jobs, loaded as `jobs` loads them. A directory that
// does not load leaves the list empty (every create then names its jobs as
// unknown) and says why in the log.
JobList load_jobs(const config::Config& config) {
  JobList jobs;
  try {
    const plugin::JobRegistry registry = plugin::load_directory(config.plugins.directory);
    for (const auto& job : registry.jobs()) jobs.emplace_back(job.name, job.plugin_file);
    log::event(log::Level::info, "web.jobs_loaded", "",
               {{"directory", config.plugins.directory}, {"jobs", jobs.size()}});
  } catch (const std::exception& e) {
    log::event(log::Level::error, "web.jobs_not_loaded",
               "programs can be created only with web.allow_unknown_jobs",
               {{"directory", config.plugins.directory}, {"error", std::string(e.what())}});
  }
  return jobs;
}

web::AccessTokens load_tokens(const config::Config& config) {
  try {
    web::AccessTokens tokens =
        web::AccessTokens::load(config.web.viewer_token_file, config.web.operator_token_file);
    if (tokens.empty()) {
      throw CommandError(error_code::config,
                         "no API token: set web.operator_token_file or web.viewer_token_file to "
                         "a file of tokens (one per line, at least 16 characters each)");
    }
    return tokens;
  } catch (const web::TokenFileError& e) {
    throw CommandError(error_code::config, e.what());
  }
}

}  // namespace

int serve_web(const CommonOptions& options) {
  return guarded([&] {
    const config::Config config = load_for_command(options);
    configure_service_log(config, options);
    if (const auto file = sqlite_file(config.database)) note_database_file(*file);

    // Before any thread starts, so only the loop below receives them.
    ServiceSignals signals;

    web::AccessTokens tokens = load_tokens(config);
    const std::size_t operators = tokens.count(web::Role::operator_);
    const std::size_t viewers = tokens.count(web::Role::viewer);
    // One session per request thread, so no request waits for another's. A
    // database server not up yet is waited for, as `run` waits for it.
    std::unique_ptr<store::Database> database;
    if (executor::retry_while_unreachable<store::DatabaseUnreachableError>(
            {"database.waiting", "the database"},
            [&] {
              database = open_database_for_writing(config, Migrate::as_configured,
                                                   static_cast<std::size_t>(config.web.threads));
            },
            executor::StartupBackoff{}, waiting_for(signals, "the database")) == 0) {
      log::event(log::Level::info, "web.stopped", "stopped while waiting for the database",
                 {{"signal", signals.stop_name()}});
      return 0;
    }
    sd_notify(0, "STATUS=");
    auto store = database->program_store();
    store::ThroughputStore throughput(*database);

    std::mutex jobs_mutex;
    auto jobs = std::make_shared<const JobList>(load_jobs(config));
    const web::KnownJobs known_jobs = [&] {
      std::lock_guard lock(jobs_mutex);
      return *jobs;
    };
    const web::StepsPerMinute steps_per_minute = [&](int minutes) {
      std::vector<std::pair<std::string, long long>> steps;
      for (const auto& minute : throughput.last_minutes(minutes)) {
        steps.emplace_back(minute.minute, minute.steps);
      }
      return steps;
    };
    web::PublisherPool publishers(amqp::BrokerNodes::from(config.amqp, 0),
                                  amqp::QueueTopology::from(config.amqp), "program-executor serve");
    web::ProgramApi api(config, *store, publishers, known_jobs, steps_per_minute);
    web::WebServer server(config.web, api, std::move(tokens));
    log::event(log::Level::info, "web.listening", "",
               {{"address", config.web.listen}, {"port", server.port()},
                {"tls", server.tls()}, {"operator_tokens", operators},
                {"viewer_tokens", viewers}, {"pid", static_cast<long long>(::getpid())}});

    std::thread serving([&] { server.run(); });
    sd_notify(0, "READY=1");
    while (signals.wait() == ServiceSignal::reload) {
      sd_notify(0, "RELOADING=1");
      try {
        const config::Config fresh = load_for_command(options);
        configure_service_log(fresh, options);  // loading set the commands' log
        server.set_tokens(load_tokens(fresh));
        auto reloaded = std::make_shared<const JobList>(load_jobs(fresh));
        {
          std::lock_guard lock(jobs_mutex);
          jobs = std::move(reloaded);
        }
        log::event(log::Level::info, "web.reloaded", "token files and the job list reread");
      } catch (const std::exception& e) {
        log::event(log::Level::error, "web.reload_failed", "keeping the tokens and jobs in use",
                   {{"error", std::string(e.what())}});
      }
      sd_notify(0, "READY=1");
    }
    sd_notify(0, "STOPPING=1");
    log::event(log::Level::info, "web.stopping", "",
               {{"signal", signals.stop_name()}});
    server.stop();
    serving.join();
    log::event(log::Level::info, "web.stopped", "");
    return 0;
  });
}

}  // namespace program_executor::daemon
