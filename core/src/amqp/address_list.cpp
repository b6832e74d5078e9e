#include "address_list.hpp"

#include <sys/socket.h>

namespace program_executor::amqp {

AddressList AddressList::resolve_stream(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  AddressList addresses;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) == 0) {
    addresses.list_.reset(found);
  }
  return addresses;
}

}  // namespace program_executor::amqp
