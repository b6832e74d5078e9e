#include "program_executor/executor/worker_identity.hpp"

#include <unistd.h>

namespace program_executor::executor {

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

std::string process_identity() { return host_name() + ":" + std::to_string(::getpid()); }

std::string worker_identity(int index) {
  return process_identity() + ":" + std::to_string(index);
}

}  // namespace program_executor::executor
