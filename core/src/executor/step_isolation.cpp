#include "program_executor/executor/step_isolation.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include "program_executor/executor/step_message.hpp"

namespace program_executor::executor {
namespace {

// Owns one end of a pipe.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

void make_pipe(Fd& read_end, Fd& write_end) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("creating a pipe for an isolated step: ") +
                             std::strerror(errno));
  }
  read_end.reset(ends[0]);
  write_end.reset(ends[1]);
}

std::string describe_end(int status) {
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = ::sigdescr_np(signal);
    return "killed by signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status)) + " without a result";
}

}  // namespace

nlohmann::json IsolatedStep::to_json() const {
  return nlohmann::json{{"body", body}, {"step", step}, {"attempt", attempt}, {"token", token}};
}

IsolatedStep IsolatedStep::from_json(const nlohmann::json& json) {
  try {
    IsolatedStep step;
    step.body = json.at("body").get<std::string>();
    step.step = json.at("step").get<int>();
    step.attempt = json.at("attempt").get<int>();
    step.token = json.at("token").get<std::int64_t>();
    return step;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("an isolated step must be {body, step, attempt, token}: ") +
                                e.what());
  }
}

ProcessIsolation::ProcessIsolation(std::vector<std::string> command) : command_(std::move(command)) {
  if (command_.empty()) throw std::invalid_argument("the isolated step command is empty");
}

JobResult ProcessIsolation::run(const IsolatedStep& step, const std::atomic<bool>& stop) {
  Fd request_read, request_write, result_read, result_write;
  make_pipe(request_read, request_write);
  make_pipe(result_read, result_write);
  // Everything the child needs is built before fork(): between fork() and
  // exec() a child of a threaded process may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (std::string& argument : command_) argv.push_back(argument.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  sigset_t unblocked;
  sigemptyset(&unblocked);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;

  const pid_t child = ::fork();
  if (child < 0) {
    return JobResult{JobResult::Kind::infrastructure,
                     std::string("starting an isolated process: ") + std::strerror(errno)};
  }
  if (child == 0) {
    // Die with the thread that runs us rather than run on unsupervised.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    // The daemon blocks the signals its main loop waits for; the job's
    // process must receive them (SIGTERM asks it to stop), with their
    // default actions until exec() gives it its own.
    ::sigaction(SIGTERM, &default_action, nullptr);
    ::sigaction(SIGINT, &default_action, nullptr);
    ::sigprocmask(SIG_SETMASK, &unblocked, nullptr);
    if (::dup2(request_read.get(), STDIN_FILENO) < 0 || ::dup2(result_write.get(), 3) < 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  request_read.reset();
  result_write.reset();

  // The request is small (one message, at most the message size limit); a
  // child that dies before reading it makes this write fail, which is fine.
  const std::string request = step.to_json().dump();
  std::size_t written = 0;
  while (written < request.size()) {
    const ssize_t n = ::write(request_write.get(), request.data() + written, request.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  request_write.reset();

  std::string output;
  bool stop_sent = false;
  char buffer[4096];
  while (true) {
    if (stop && !stop_sent) {
      ::kill(child, SIGTERM);
      stop_sent = true;
    }
    pollfd ready{result_read.get(), POLLIN, 0};
    const int polled = ::poll(&ready, 1, 200);
    if (polled < 0 && errno != EINTR) break;
    if (polled <= 0) continue;
    const ssize_t n = ::read(result_read.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of file: the child closed it or died
    output.append(buffer, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!output.empty()) {
    // A result counts whatever happened after it was written.
    try {
      return JobResult::from_json(nlohmann::json::parse(output));
    } catch (const std::exception& e) {
      return JobResult{JobResult::Kind::crashed,
                       std::string("the isolated process wrote an unreadable result: ") + e.what()};
    }
  }
  if (stop_sent && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) {
    // We asked it to stop (the daemon is stopping): not the job's doing.
    return JobResult{JobResult::Kind::yielded, "stopped with the daemon before it finished"};
  }
  return JobResult{JobResult::Kind::crashed, "the isolated process running the job " + describe_end(status)};
}

}  // namespace program_executor::executor
