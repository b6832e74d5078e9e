// amqp.url is checked with the parser the connection uses (rabbitmq-c's), so
// `check` and the loader refuse exactly what `run` would refuse later.
#include "program_executor/config/amqp_url.hpp"

#include <amqp.h>

#include <algorithm>
#include <vector>

namespace program_executor::config {

std::string amqp_url_problem(std::string_view url) {
  const std::string expected =
      "expected amqp://[user[:password]@]host[:port]/[vhost] or amqps://..., with reserved "
      "characters percent-encoded (a '/' in the vhost as %2F)";
  if (url.rfind("amqp://", 0) != 0 && url.rfind("amqps://", 0) != 0) {
    return "must start with amqp:// or amqps://";
  }
  // rabbitmq-c takes them into the host, user or password as they are; a
  // line break would also split an item of amqp.urls (joined by '\n').
  if (std::any_of(url.begin(), url.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
      })) {
    return "contains a control character (a line break, a tab): percent-encode it (%0A, %09)";
  }
  // amqp_parse_url writes NULs into its argument and points into it.
  std::vector<char> buffer(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_connection_info info{};
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) {
    return "not a valid AMQP URL (a port is 1 to 65535, a vhost one path segment): " + expected;
  }
  // rabbitmq-c reads ":0" as port 0, which no broker listens on.
  if (info.port <= 0) return "port 0: a port is 1 to 65535";
  return "";
}

}  // namespace program_executor::config
