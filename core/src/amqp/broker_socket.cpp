#include "broker_socket.hpp"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "connect_diagnosis.hpp"
#include "program_executor/amqp/amqp_error.hpp"
#include "rabbitmq_c.hpp"
#include "timeouts.hpp"

namespace program_executor::amqp {
namespace {

// rabbitmq-c 0.11 never loads OpenSSL's default trust store, so an empty
// ca_file would trust nothing; Debian's bundle is the system default.
constexpr const char* system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";

}  // namespace

BrokerSocket::BrokerSocket(amqp_connection_state_t connection, std::string host, int port,
                           std::optional<config::TlsSettings> tls, std::string where)
    : host_(std::move(host)), port_(port), tls_(std::move(tls)), where_(std::move(where)) {
  connect(create_socket(connection));
}

void BrokerSocket::fail(const std::string& doing, const std::string& cause) const {
  throw AmqpError(doing + " on " + where_ + ": " + cause);
}

amqp_socket_t* BrokerSocket::create_socket(amqp_connection_state_t connection) {
  if (!tls_) {
    amqp_socket_t* socket = amqp_tcp_socket_new(connection);
    if (socket == nullptr) fail("creating a TCP socket", "amqp_tcp_socket_new failed");
    return socket;
  }
  const config::TlsSettings& tls = *tls_;
  amqp_socket_t* socket = amqp_ssl_socket_new(connection);
  if (socket == nullptr) fail("creating a TLS socket", "amqp_ssl_socket_new failed");
  // rabbitmq-c 0.11 checks the host name itself against DNS names only, so a
  // broker reached by IP address never matches. When the chain is verified,
  // OpenSSL's own check (IP addresses included) runs within it instead.
  const bool openssl_checks_host = tls.verify_peer && tls.verify_hostname;
  amqp_ssl_socket_set_verify_peer(socket, tls.verify_peer ? 1 : 0);
  amqp_ssl_socket_set_verify_hostname(socket, tls.verify_hostname && !openssl_checks_host ? 1 : 0);
  if (openssl_checks_host) {
    auto* context = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
    if (context == nullptr || !verify_host_in_chain(SSL_CTX_get0_param(context), host_)) {
      fail("configuring TLS", "cannot verify the host name '" + host_ + "'");
    }
  }
  ca_file_ = tls.ca_file;
  std::error_code ignored;
  if (ca_file_.empty() && std::filesystem::exists(system_ca_bundle, ignored)) {
    ca_file_ = system_ca_bundle;
  }
  if (!ca_file_.empty()) {
    const int loaded = amqp_ssl_socket_set_cacert(socket, ca_file_.c_str());
    if (loaded != AMQP_STATUS_OK) {
      fail("loading the CA file '" + ca_file_ + "'", status_text(loaded));
    }
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    fail("configuring TLS", "a client certificate needs both cert_file and key_file");
  }
  if (!tls.cert_file.empty()) {
    const int loaded = amqp_ssl_socket_set_key(socket, tls.cert_file.c_str(), tls.key_file.c_str());
    if (loaded != AMQP_STATUS_OK) {
      fail("loading the client certificate '" + tls.cert_file + "' and key '" + tls.key_file + "'",
           status_text(loaded));
    }
  }
  return socket;
}

void BrokerSocket::connect(amqp_socket_t* socket) const {
  timeval connect_tv = to_timeval(connect_timeout);
  const int opened = amqp_socket_open_noblock(socket, host_.c_str(), port_, &connect_tv);
  if (opened == AMQP_STATUS_OK) return;
  std::string cause = status_text(opened);
  if (opened == AMQP_STATUS_SOCKET_ERROR) {
    const std::string reason = tcp_failure(host_, port_, diagnosis_timeout);
    if (!reason.empty()) cause += ": " + reason;
  }
  if (tls_ && (opened == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ||
               opened == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)) {
    const std::string reason =
        tls_failure(host_, port_, *tls_, ca_file_, opened, diagnosis_timeout);
    if (!reason.empty()) cause += ": " + reason;
  }
  const std::string doing = tls_ ? "connecting (TLS)" : "connecting";
  if (opened == AMQP_STATUS_SOCKET_ERROR || opened == AMQP_STATUS_TIMEOUT ||
      opened == AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED) {
    throw BrokerUnreachableError(doing + " on " + where_ + ": " + cause);
  }
  fail(doing, cause);
}

std::string BrokerSocket::tls_refusal() const {
  if (!tls_) return {};
  // The alert may be in this thread's OpenSSL error queue already; if it is
  // not (the AMQP header was sent before the alert came), another handshake
  // reads it.
  std::string reason;
  if (const char* text = ERR_reason_error_string(ERR_peek_last_error())) reason = text;
  ERR_clear_error();
  if (reason.empty()) {
    reason = tls_failure(host_, port_, *tls_, ca_file_, AMQP_STATUS_SSL_ERROR, diagnosis_timeout);
  }
  return reason;
}

}  // namespace program_executor::amqp
