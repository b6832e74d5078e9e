// The one owner of getaddrinfo() results in amqp/: freed on every path.
#pragma once

#include <netdb.h>

#include <memory>
#include <string>

namespace program_executor::amqp {

class AddressList {
 public:
  /// The stream (TCP) addresses of host:port, in getaddrinfo()'s order;
  /// empty when the name does not resolve.
  static AddressList resolve_stream(const std::string& host, int port);

  /// The first address (follow ai_next for the others); nullptr when empty.
  const addrinfo* first() const noexcept { return list_.get(); }

 private:
  struct Free {
    void operator()(addrinfo* list) const noexcept { ::freeaddrinfo(list); }
  };
  std::unique_ptr<addrinfo, Free> list_;
};

}  // namespace program_executor::amqp
