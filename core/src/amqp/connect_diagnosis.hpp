// Why a connection to the broker failed, when rabbitmq-c's status says too
// little: one more attempt of our own, which asks the kernel or OpenSSL.
#pragma once

#include <openssl/x509_vfy.h>

#include <chrono>
#include <string>

#include "program_executor/config/config.hpp"

namespace program_executor::amqp {

/// Why a TCP connection to host:port fails. rabbitmq-c reports only "a socket
/// error occurred" (and leaves errno at EINPROGRESS), which does not tell
/// "nothing listens" from "no route"; one more attempt of our own does
/// (strerror text). Empty when the name does not resolve or it connects now.
std::string tcp_failure(const std::string& host, int port, std::chrono::milliseconds timeout);

/// Why a TLS connection to host:port failed with rabbitmq-c status `status`.
/// rabbitmq-c says only "SSL peer cert verification failed", "SSL hostname
/// verification failed" or "a SSL error occurred"; one handshake of our own,
/// with the same settings (`tls`, the CAs in `ca_file`), asks OpenSSL why
/// (expired, self-signed, ...), which hosts the certificate names, or, for
/// AMQP_STATUS_SSL_ERROR, which alert the broker ends the session with once it
/// has judged our certificate. Empty when that handshake tells nothing.
std::string tls_failure(const std::string& host, int port, const config::TlsSettings& tls,
                        const std::string& ca_file, int status, std::chrono::milliseconds timeout);

/// Makes OpenSSL's chain verification check that the certificate names `host`
/// (RFC 6125: subjectAltName DNS names with whole-label wildcards, IP
/// addresses). False if OpenSSL refuses the name. The connection and the
/// diagnosing handshake share it, so both judge the host alike.
bool verify_host_in_chain(X509_VERIFY_PARAM* param, const std::string& host);

}  // namespace program_executor::amqp
