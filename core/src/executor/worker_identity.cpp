#include "program_executor/executor/worker_identity.hpp"

#include <unistd.h>

namespace program_executor::executor {

std::string process_identity() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

std::string worker_identity(int index) {
  return process_identity() + ":" + std::to_string(index);
}

}  // namespace program_executor::executor
