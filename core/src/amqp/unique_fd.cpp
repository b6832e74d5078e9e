#include "unique_fd.hpp"

#include <unistd.h>

#include <utility>

namespace program_executor::amqp {

UniqueFd::~UniqueFd() { reset(); }

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

void UniqueFd::reset(int fd) noexcept {
  // close() is not retried on EINTR: on Linux the descriptor is released anyway.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

int UniqueFd::release() noexcept { return std::exchange(fd_, -1); }

}  // namespace program_executor::amqp
