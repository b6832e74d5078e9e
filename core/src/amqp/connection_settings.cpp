#include "program_executor/amqp/connection_settings.hpp"

#include "program_executor/config/amqp_url.hpp"

#include <amqp.h>

#include <stdexcept>
#include <vector>

namespace program_executor::amqp {
namespace {

// Percent-encodes everything but RFC 3986 unreserved characters, so that
// describe() prints a URL amqp_parse_url would read back the same way.
std::string percent_encode(const std::string& text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0x0F];
    }
  }
  return out;
}

// The URL with the password replaced, for error messages. The userinfo ends at
// the last '@' (rabbitmq-c's grammar has no '@' after it), and the password is
// what follows its first ':'. Without an '@' there is no password to hide.
std::string redact(const std::string& url) {
  const auto at = url.rfind('@');
  if (at == std::string::npos) return url;
  const auto scheme_end = url.find("://");
  const std::size_t user_start =
      (scheme_end != std::string::npos && scheme_end < at) ? scheme_end + 3 : 0;
  const auto colon = url.find(':', user_start);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":***" + url.substr(at);
}

}  // namespace

std::string ConnectionSettings::describe() const {
  std::string out = tls ? "amqps://" : "amqp://";
  out += percent_encode(user) + "@";
  // An IPv6 literal needs brackets, or its colons read as the port separator.
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ":" + std::to_string(port) + "/";
  // "/" is the default vhost, which parse_url gives for an empty path.
  if (vhost != "/") out += percent_encode(vhost);
  return out;
}

ConnectionSettings parse_url(const std::string& url, const config::TlsSettings& tls,
                             int heartbeat_seconds) {
  if (heartbeat_seconds < 0) {
    throw std::invalid_argument("heartbeat_seconds must be 0 (off) or positive, got " +
                                std::to_string(heartbeat_seconds));
  }
  // amqp_parse_url writes NULs into its argument and points into it.
  std::vector<char> buffer(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_connection_info info{};
  amqp_default_connection_info(&info);
  // The config loader refused such a URL already; callers that build their
  // own (tests, pe-bench) get the same rule and words.
  if (const std::string problem = config::amqp_url_problem(url); !problem.empty()) {
    throw std::invalid_argument("invalid AMQP URL '" + redact(url) + "': " + problem);
  }
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) {
    throw std::invalid_argument("invalid AMQP URL '" + redact(url) + "'");  // cannot happen
  }
  ConnectionSettings settings;
  settings.host = info.host;
  settings.port = info.port;
  settings.user = info.user;
  settings.password = info.password;
  // rabbitmq-c yields "" for "amqp://host/"; no broker has an empty vhost, and
  // amqplib (the original's client) reads an empty path as the default "/".
  settings.vhost = (info.vhost == nullptr || *info.vhost == '\0') ? "/" : info.vhost;
  settings.tls = info.ssl != 0;
  settings.tls_options = tls;
  settings.heartbeat_seconds = heartbeat_seconds;
  return settings;
}

}  // namespace program_executor::amqp
