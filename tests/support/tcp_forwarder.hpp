// A loopback TCP port that refuses connections until told to listen, then
// forwards each connection to a target (a broker that "comes up late").
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace program_executor::test {

class TcpForwarder {
 public:
  /// Reserves a free port on 127.0.0.1: bound but not listening, so
  /// connecting to it is refused (ECONNREFUSED) until listen().
  TcpForwarder(std::string target_host, int target_port);
  ~TcpForwarder();  ///< closes every forwarded connection and joins its threads
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  int port() const noexcept { return port_; }
  /// From now on, accepts connections and forwards each to the target.
  void listen();

 private:
  std::string target_host_;
  int target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> pumps_;

  void accept_loop();
  void pump(int client);
};

}  // namespace program_executor::test
