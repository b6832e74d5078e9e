#include "program_executor/store/database_unreachable.hpp"

#include <array>

namespace program_executor::store {

bool database_unreachable(std::string_view message, bool connection_category) {
  // The client libraries' own texts (libpq, libmariadb, psqlODBC passes
  // libpq's through), in English: the daemon never calls setlocale, so they
  // are not translated. A message not listed fails the start at once, as
  // before this wait existed.
  static constexpr std::array<std::string_view, 16> not_there = {
      // libpq: nothing listens, or the server is between a stop and a start.
      "Connection refused", "the database system is starting up",
      "the database system is shutting down", "the database system is in recovery mode",
      "the database system is not yet accepting connections", "too many clients already",
      "server closed the connection unexpectedly", "timeout expired",
      // Any client: the network is not up yet.
      "No route to host", "Network is unreachable", "Connection reset by peer",
      "Temporary failure in name resolution",
      // libmariadb, when it does not set the category itself.
      "Can't connect to server on", "Can't connect to local server through socket",
      "Lost connection to server", "Server shutdown in progress"};
  for (const std::string_view phrase : not_there) {
    if (message.find(phrase) != std::string_view::npos) return true;
  }
  // libpq's Unix socket: the file exists only while the server runs. Not any
  // "No such file or directory": a missing sslrootcert says the same.
  if (message.find("connection to server on socket") != std::string_view::npos &&
      message.find("No such file or directory") != std::string_view::npos) {
    return true;
  }
  // libmariadb classes "Access denied" apart, so its category is trusted.
  return connection_category;
}

}  // namespace program_executor::store
