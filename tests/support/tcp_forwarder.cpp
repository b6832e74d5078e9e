#include "support/tcp_forwarder.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <stdexcept>

namespace program_executor::test {
namespace {

int connect_to(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

// Writes all of `data`; false when the peer is gone.
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TcpForwarder::TcpForwarder(std::string target_host, int target_port)
    : target_host_(std::move(target_host)), target_port_(target_port) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) throw std::runtime_error("TcpForwarder: socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(listener_);
    throw std::runtime_error("TcpForwarder: cannot bind a loopback port");
  }
  port_ = ntohs(address.sin_port);
}

TcpForwarder::~TcpForwarder() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listener_);
  std::lock_guard lock(mutex_);
  for (auto& thread : pumps_) thread.join();
}

void TcpForwarder::listen() {
  if (::listen(listener_, 16) != 0) throw std::runtime_error("TcpForwarder: listen() failed");
  acceptor_ = std::thread([this] { accept_loop(); });
}

void TcpForwarder::accept_loop() {
  while (!stopping_) {
    pollfd waiting{listener_, POLLIN, 0};
    if (::poll(&waiting, 1, 100) <= 0) continue;
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard lock(mutex_);
    pumps_.emplace_back([this, client] { pump(client); });
  }
}

void TcpForwarder::pump(int client) {
  const int upstream = connect_to(target_host_, target_port_);
  if (upstream < 0) {
    ::close(client);
    return;
  }
  std::array<pollfd, 2> ends{pollfd{client, POLLIN, 0}, pollfd{upstream, POLLIN, 0}};
  std::array<char, 16384> buffer{};
  bool open = true;
  while (open && !stopping_) {
    if (::poll(ends.data(), ends.size(), 100) <= 0) continue;
    for (std::size_t i = 0; i < ends.size() && open; ++i) {
      if (ends[i].revents == 0) continue;
      const ssize_t n = ::recv(ends[i].fd, buffer.data(), buffer.size(), 0);
      open = n > 0 && write_all(ends[1 - i].fd, buffer.data(), static_cast<std::size_t>(n));
    }
  }
  ::close(client);
  ::close(upstream);
}

}  // namespace program_executor::test
