#include "program_executor/executor/isolated_step.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <string>

#include "program_executor/amqp/broker_nodes.hpp"
#include "program_executor/amqp/connection.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/executor/job_data_handler.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/step_isolation.hpp"
#include "program_executor/executor/step_job_context.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/store/database.hpp"

namespace program_executor::executor {
namespace {

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  return text;
}

bool write_all(int fd, const std::string& text) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    written += static_cast<std::size_t>(n);
  }
  return true;
}

JobResult run(const std::filesystem::path& config_path, const IsolatedStep& step,
              const std::atomic<bool>& stop) {
  const auto started = std::chrono::steady_clock::now();
  const config::Config config = config::load_file(config_path);
  log::configure(config.log.level, config.log.format,
                 log::Destination::standard_output);
  const StepMessage message = parse_step_message(step.body);
  const plugin::JobRegistry jobs = plugin::load_directory(config.plugins.directory);
  // One session for the job's data, one for the programs it creates. The
  // schema is the daemon's business: nothing is migrated here.
  store::Database database(config.database, 2);
  const std::unique_ptr<store::ProgramStore> store = database.program_store();
  amqp::ReconnectingPublisher publisher(
      amqp::BrokerNodes::from(config.amqp, 0).shuffled(amqp::node_order_seed(0)),
      "program-executor isolated step");
  ProgramCreator creator(*store, publisher, config.amqp.queue, config.amqp.durable,
                         metrics::no_metrics(), config.recovery.stale_after);
  StoreJobDataHandler data(*store, message.run_id, message.current_job(), step.token, started);
  StepJobContext context(creator, message.run_id, message.current_job(), step.step, step.attempt,
                         stop);
  return execute_job(jobs, message, data, context);
}

}  // namespace

int run_isolated_step(const std::filesystem::path& config_path, int request_fd, int result_fd,
                      const std::atomic<bool>& stop) {
  // Processes the job starts must not hold the result open: the daemon
  // reads it until end of file.
  ::fcntl(result_fd, F_SETFD, FD_CLOEXEC);
  // Fault injection (PE_CRASH_POINT, test builds) stands for the death of a
  // worker process, not of a job: it stays with the daemon.
  ::unsetenv("PE_CRASH_POINT");
  JobResult result;
  try {
    result = run(config_path, IsolatedStep::from_json(nlohmann::json::parse(read_all(request_fd))),
                 stop);
  } catch (const std::exception& e) {
    // Not the job's doing: the step is retried.
    result = JobResult{JobResult::Kind::infrastructure,
                       std::string("the isolated process could not run the step: ") + e.what()};
  }
  return write_all(result_fd, result.to_json().dump()) ? 0 : 1;
}

}  // namespace program_executor::executor
