// The socket of an AMQP connection to one broker host and port, plain TCP or
// TLS: opened, and its failures explained. Connecting to a cluster (several
// hosts) means one BrokerSocket per host tried.
#pragma once

#include <amqp.h>

#include <optional>
#include <string>

#include "program_executor/config/config.hpp"

namespace program_executor::amqp {

class BrokerSocket {
 public:
  /// Creates the socket on `connection`, which owns it from then on (TLS when
  /// `tls` is set, verified as it says), and connects it to host:port within
  /// connect_timeout. `where` names the broker in errors (never the password).
  /// Throws BrokerUnreachableError when host:port cannot be reached at all
  /// (refused, timed out, name not resolved), else AmqpError; either names
  /// rabbitmq-c's status and, where that says too little, the reason
  /// connect_diagnosis.hpp finds.
  BrokerSocket(amqp_connection_state_t connection, std::string host, int port,
               std::optional<config::TlsSettings> tls, std::string where);

  /// Why the broker ended the TLS session on this socket after the handshake
  /// (rabbitmq-c's AMQP_STATUS_SSL_ERROR while logging in: with TLS 1.3 a
  /// broker refuses the client's certificate only then). Empty when unknown.
  std::string tls_refusal() const;

 private:
  [[noreturn]] void fail(const std::string& doing, const std::string& cause) const;
  // The socket as configured, before it is opened: rabbitmq-c's TLS or TCP socket.
  amqp_socket_t* create_socket(amqp_connection_state_t connection);
  void connect(amqp_socket_t* socket) const;

  std::string host_;
  int port_;
  std::optional<config::TlsSettings> tls_;
  std::string where_;
  std::string ca_file_;  // TLS: the CAs that verify the broker
};

}  // namespace program_executor::amqp
