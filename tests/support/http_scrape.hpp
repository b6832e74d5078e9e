// A plain HTTP GET over loopback and the reading of a Prometheus exposition:
// what the metrics tests need to scrape an endpoint, without a client library.
#pragma once

#include <string>

namespace program_executor::test {

/// GET http://127.0.0.1:<port><path> with HTTP/1.0 (the server closes after
/// the response): the whole response, status line and headers included, or
/// "" if nothing answers. Waits at most 5 s for the answer.
std::string http_get(int port, const std::string& path);

/// The body of a response `http_get` returned ("" if it has none).
std::string http_body(const std::string& response);

/// The value of the sample line `series` ("name{labels}" exactly as exposed)
/// in a Prometheus text exposition, or -1 if there is none.
double metrics_sample(const std::string& exposition, const std::string& series);

}  // namespace program_executor::test
