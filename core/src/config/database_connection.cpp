#include "program_executor/config/database_connection.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

namespace program_executor::config {

std::string database_connection_problem(DatabaseBackend backend, std::string_view connection) {
  static const std::regex url_scheme("^([A-Za-z][A-Za-z0-9+.-]*)://");
  const std::string text(connection);
  std::smatch m;
  std::string scheme = std::regex_search(text, m, url_scheme) ? m[1].str() : std::string();
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto wrong_url = [&](const char* expected) {
    return "a " + scheme + ":// URL, but database.backend is " + std::string(to_string(backend)) +
           " (expected " + expected + ")";
  };
  if (backend == DatabaseBackend::sqlite3) {
    if (!scheme.empty()) return wrong_url("db=<file>");
  } else if (backend == DatabaseBackend::postgresql) {
    if (!scheme.empty() && scheme != "postgresql" && scheme != "postgres") {
      return wrong_url("postgresql://... or key=value parameters");
    }
  } else if (backend == DatabaseBackend::mysql) {
    if (scheme == "mysql" || scheme == "mariadb") {
      // The grammar the store's mysql:// reader accepts.
      static const std::regex pattern(
          R"(^(?:mysql|mariadb)://(?:([^:@/]*)(?::([^@/]*))?@)?(\[[^\]]*\]|[^:/?]*)(?::(\d+))?(?:/([^?]*))?(?:\?(.*))?$)",
          std::regex::icase);
      if (!std::regex_match(text, pattern)) {
        return "not a valid mysql:// URL (mysql://user:password@host:port/database)";
      }
    } else if (!scheme.empty()) {
      return wrong_url("mysql://... or SOCI parameters");
    }
  }
  return "";
}

}  // namespace program_executor::config
