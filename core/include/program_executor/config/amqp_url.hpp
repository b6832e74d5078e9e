// The rule for amqp.url, shared by the config validator and the broker
// connection: a URL the loader accepts is one the daemon can connect with.
#pragma once

#include <string>
#include <string_view>

namespace program_executor::config {

/// Why `url` is not a usable broker URL (rabbitmq-c's amqp_parse_url grammar,
/// amqp[s]://[user[:password]@]host[:port]/[vhost], port 1 to 65535), or ""
/// when it is. The text never quotes the URL: it may hold a password.
std::string amqp_url_problem(std::string_view url);

}  // namespace program_executor::config
