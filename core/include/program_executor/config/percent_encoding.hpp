// Percent-encoding for the userinfo of a URL (amqp://, postgresql://, mysql://).
#pragma once

#include <string>
#include <string_view>

namespace program_executor::config {

/// Every byte but RFC 3986's unreserved characters as %XX, so a password of any
/// characters fits in a URL's userinfo: amqp_parse_url, libpq and the store's
/// mysql:// parser all decode it.
std::string percent_encode(std::string_view text);

}  // namespace program_executor::config
