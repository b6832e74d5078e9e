// Where and how to reach the broker.
#pragma once

#include <string>

#include "program_executor/config/config.hpp"

namespace program_executor::amqp {

struct ConnectionSettings {
  std::string host;
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password = "guest";
  bool tls = false;                 ///< amqps://
  config::TlsSettings tls_options;  ///< used when tls is true
  int heartbeat_seconds = 30;

  /// "amqp://user@host:port/vhost", never the password: for logs and errors.
  std::string describe() const;
};

/// Parses an amqp:// or amqps:// URL (rabbitmq-c's amqp_parse_url rules).
/// Throws std::invalid_argument with a message that does not echo the password.
ConnectionSettings parse_url(const std::string& url, const config::TlsSettings& tls,
                             int heartbeat_seconds);

}  // namespace program_executor::amqp
