// The chaos harness's job plugin. Every execution of a step is recorded
// outside the program's row, in the file named by PE_CHAOS_LOG, so the harness
// can see what ran where and when even for executions whose worker was killed:
//
//   start <run_id> <step> <attempt> <pid> <t_ns> <tid> <ppid>    before the job's work
//   end   <run_id> <step> <attempt> <pid> <t_ns> <tid> <ppid>    after it
//   kill  <run_id> <step> <attempt> <pid> <t_ns> <tid> <ppid>    chaos.poison, just before SIGKILL
//
// ppid tells a step run isolated (in a process the daemon started for it,
// which dies with the daemon) from one run in the daemon itself.
//
// t_ns is CLOCK_REALTIME in nanoseconds (comparable across processes and with
// the harness's own clock). Each line is one write(2) on an O_APPEND file, so
// lines of concurrent workers and processes never interleave.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include <program_executor/sdk/sdk.hpp>

namespace program_executor::chaos {
namespace {

namespace sdk = program_executor::sdk;

long long realtime_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Opened per line: no state in the plugin, and a line is on disk (in the page
// cache) before the job goes on, whatever kills the process next.
void record(const char* kind, const sdk::JobContext& context) {
  const char* path = std::getenv("PE_CHAOS_LOG");
  if (path == nullptr || *path == '\0') {
    throw std::runtime_error("PE_CHAOS_LOG is not set: chaos jobs must record their executions");
  }
  const std::string line =
      std::string(kind) + " " + context.run_id() + " " + std::to_string(context.step()) + " " +
      std::to_string(context.attempt()) + " " + std::to_string(::getpid()) + " " +
      std::to_string(realtime_ns()) + " " + std::to_string(::gettid()) + " " +
      std::to_string(::getppid()) + "\n";
  const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(std::string("cannot open PE_CHAOS_LOG ") + path + ": " +
                             std::strerror(errno));
  }
  // O_APPEND makes one write atomic with respect to other appenders; a short
  // write of a line this small does not happen on a regular file.
  const ssize_t written = ::write(fd, line.data(), line.size());
  const int saved = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size())) {
    throw std::runtime_error(std::string("cannot write PE_CHAOS_LOG ") + path + ": " +
                             std::strerror(saved));
  }
}

// A step of a chaos program: records its start, works for a while, records its end.
class StepJob final : public sdk::Job {
 public:
  explicit StepJob(const nlohmann::json& program_data) {
    if (program_data.is_object()) {
      const auto ms = program_data.find("ms");
      if (ms != program_data.end() && ms->is_number_integer() && ms->get<long long>() >= 0) {
        ms_ = ms->get<long long>();
      }
      const auto random = program_data.find("random");
      random_ = random != program_data.end() && random->is_boolean() && random->get<bool>();
    }
  }

  void execute(const nlohmann::json&, sdk::JobDataHandler&, sdk::JobContext& context) override {
    record("start", context);
    long long ms = ms_;
    if (random_ && ms > 0) {
      thread_local std::mt19937_64 engine{std::random_device{}()};
      ms = std::uniform_int_distribution<long long>(0, ms)(engine);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    record("end", context);
  }

 private:
  long long ms_ = 20;
  bool random_ = false;
};

// A job that kills its worker process on every attempt (as a segfault or the
// OOM killer would): the daemon must stop redelivering it after its persisted
// crash counter runs out, and error the program.
class PoisonJob final : public sdk::Job {
 public:
  explicit PoisonJob(const nlohmann::json&) {}

  void execute(const nlohmann::json&, sdk::JobDataHandler&, sdk::JobContext& context) override {
    record("start", context);
    record("kill", context);
    ::raise(SIGKILL);
  }
};

void register_jobs(sdk::Registrar& registrar) {
  sdk::add_job<StepJob>(registrar, "chaos.step");
  sdk::add_job<PoisonJob>(registrar, "chaos.poison");
}

}  // namespace
}  // namespace program_executor::chaos

PROGRAM_EXECUTOR_PLUGIN(program_executor::chaos::register_jobs)
