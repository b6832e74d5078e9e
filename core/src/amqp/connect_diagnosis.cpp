#include "connect_diagnosis.hpp"

#include <amqp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "address_list.hpp"
#include "rabbitmq_c.hpp"
#include "unique_fd.hpp"

namespace program_executor::amqp {
namespace {

struct SslContextDeleter {
  void operator()(SSL_CTX* context) const noexcept { SSL_CTX_free(context); }
};
struct SslDeleter {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
struct X509Deleter {
  void operator()(X509* certificate) const noexcept { X509_free(certificate); }
};
struct GeneralNamesDeleter {
  void operator()(GENERAL_NAMES* names) const noexcept { GENERAL_NAMES_free(names); }
};

bool is_ip_address(const std::string& host) {
  in6_addr ignored{};
  return ::inet_pton(AF_INET, host.c_str(), &ignored) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &ignored) == 1;
}

// The DNS names and addresses a certificate is for (its subjectAltName, else
// its common name), comma separated.
std::string certificate_names(X509* certificate) {
  std::string names;
  const auto add = [&names](const std::string& name) {
    names += (names.empty() ? "" : ", ") + name;
  };
  const std::unique_ptr<GENERAL_NAMES, GeneralNamesDeleter> alt_names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; alt_names && i < sk_GENERAL_NAME_num(alt_names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt_names.get(), i);
    if (name->type == GEN_DNS) {
      const auto* text = reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName));
      add(std::string(text, static_cast<std::size_t>(ASN1_STRING_length(name->d.dNSName))));
    } else if (name->type == GEN_IPADD) {
      const int length = ASN1_STRING_length(name->d.iPAddress);
      char text[INET6_ADDRSTRLEN] = {};
      const int family = length == 4 ? AF_INET : AF_INET6;
      if ((length == 4 || length == 16) &&
          ::inet_ntop(family, ASN1_STRING_get0_data(name->d.iPAddress), text, sizeof text)) {
        add(text);
      }
    }
  }
  if (names.empty()) {
    char common_name[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, common_name,
                                  sizeof common_name) > 0) {
      add(common_name);
    }
  }
  return names.empty() ? std::string("no host") : names;
}

// A blocking socket connected to the first address of host:port that takes
// it, with `timeout` on each read and write; invalid if none does.
UniqueFd connected_socket(const std::string& host, int port, std::chrono::milliseconds timeout) {
  const AddressList found = AddressList::resolve_stream(host, port);
  for (const addrinfo* a = found.first(); a != nullptr; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) continue;
    timeval tv = to_timeval(timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) return fd;
  }
  return UniqueFd();
}

}  // namespace

std::string tcp_failure(const std::string& host, int port, std::chrono::milliseconds timeout) {
  const AddressList found = AddressList::resolve_stream(host, port);
  std::string reason;
  for (const addrinfo* a = found.first(); a != nullptr; a = a->ai_next) {
    const UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd.valid()) continue;
    int error = 0;
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd p{fd.get(), POLLOUT, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
        socklen_t length = sizeof error;
        if (ready == 0) {
          error = ETIMEDOUT;
        } else if (ready < 0 ||
                   ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
          error = errno;
        }
      }
    }
    if (error == 0) {
      reason.clear();  // it connects now: the failure was transient
      break;
    }
    reason = std::strerror(error);
  }
  return reason;
}

std::string tls_failure(const std::string& host, int port, const config::TlsSettings& tls,
                        const std::string& ca_file, int status, std::chrono::milliseconds timeout) {
  const UniqueFd fd = connected_socket(host, port, timeout);
  if (!fd.valid()) return {};

  const std::unique_ptr<SSL_CTX, SslContextDeleter> context(SSL_CTX_new(TLS_client_method()));
  if (!context) return {};
  if (!ca_file.empty()) SSL_CTX_load_verify_locations(context.get(), ca_file.c_str(), nullptr);
  if (!tls.cert_file.empty() && !tls.key_file.empty()) {
    // A broker that requires one may cut the handshake short without it.
    SSL_CTX_use_certificate_chain_file(context.get(), tls.cert_file.c_str());
    SSL_CTX_use_PrivateKey_file(context.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM);
  }
  // Finish the handshake whatever the verdict, then read the verdict.
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
  const std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(context.get()));
  if (!ssl) return {};
  SSL_set_fd(ssl.get(), fd.get());
  if (!is_ip_address(host)) SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  if (tls.verify_peer && tls.verify_hostname) verify_host_in_chain(SSL_get0_param(ssl.get()), host);
  const bool connected = SSL_connect(ssl.get()) == 1;
  if (status == AMQP_STATUS_SSL_ERROR) {
    // Wait for the broker's verdict without sending anything: writing to a
    // socket the broker closed draws a reset that discards its alert unread.
    // A broker that accepts us says nothing until the AMQP header: timeout.
    std::string reason;
    char reply = 0;
    if (!connected || SSL_read(ssl.get(), &reply, 1) <= 0) {
      if (const char* text = ERR_reason_error_string(ERR_peek_last_error())) reason = text;
    }
    ERR_clear_error();
    return reason;
  }
  ERR_clear_error();  // a failure after the broker's certificate arrived still tells
  const std::unique_ptr<X509, X509Deleter> certificate(SSL_get1_peer_certificate(ssl.get()));
  if (!certificate) return {};
  if (status == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED) {
    return "the certificate is for " + certificate_names(certificate.get()) + ", not " + host;
  }
  const long verdict = SSL_get_verify_result(ssl.get());
  if (verdict == X509_V_OK) return {};
  std::string reason = X509_verify_cert_error_string(verdict);
  if (verdict == X509_V_ERR_HOSTNAME_MISMATCH || verdict == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    reason += ": the certificate is for " + certificate_names(certificate.get()) + ", not " + host;
  }
  return reason;
}

bool verify_host_in_chain(X509_VERIFY_PARAM* param, const std::string& host) {
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return is_ip_address(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1
                             : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0) == 1;
}

}  // namespace program_executor::amqp
