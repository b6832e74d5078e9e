// The HTTP side of `serve`: the API's routes under /api/v1, bearer tokens
// and roles, body limits, problem+json for every refusal, and the console's
// embedded files. HTTP itself (parsing, keep-alive, TLS) is cpp-httplib's.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "program_executor/config/config.hpp"
#include "program_executor/web/access_tokens.hpp"
#include "program_executor/web/program_api.hpp"

namespace httplib {
class Server;
}  // namespace httplib

namespace program_executor::web {

/// The server cannot listen (address in use, bad certificate).
class WebServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class WebServer {
 public:
  /// Binds `settings.listen` (port 0: any free port, see port()); throws
  /// WebServerError. Serves nothing until run().
  WebServer(const config::WebSettings& settings, ProgramApi& api, AccessTokens tokens);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  /// Serves requests until stop(), on `settings.threads` threads.
  void run();
  /// Ends run() (from any thread): requests in progress finish first.
  void stop();
  /// Replaces the tokens (SIGHUP) for the requests that follow.
  void set_tokens(AccessTokens tokens);

  int port() const noexcept { return port_; }
  bool tls() const noexcept { return tls_; }

 private:
  std::shared_ptr<const AccessTokens> tokens() const;
  void install_routes();

  ProgramApi& api_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  bool tls_ = false;
  mutable std::mutex tokens_mutex_;
  std::shared_ptr<const AccessTokens> tokens_;
};

}  // namespace program_executor::web
