// database.backend: which SOCI backend the bookkeeping table is reached
// through. Parsed once, by the config loader (and by the tools that take a
// backend name on their command line), into this enum; spelled only here.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace program_executor::config {

enum class DatabaseBackend { sqlite3, postgresql, mysql, odbc };

/// Every backend, in the order the documentation lists them.
inline constexpr std::array<DatabaseBackend, 4> database_backends = {
    DatabaseBackend::sqlite3, DatabaseBackend::postgresql, DatabaseBackend::mysql,
    DatabaseBackend::odbc};

/// Its name in the config file, which is also SOCI's name for the backend.
constexpr std::string_view to_string(DatabaseBackend backend) noexcept {
  switch (backend) {
    case DatabaseBackend::sqlite3: return "sqlite3";
    case DatabaseBackend::postgresql: return "postgresql";
    case DatabaseBackend::mysql: return "mysql";
    case DatabaseBackend::odbc: return "odbc";
  }
  return "unknown";
}

/// The backend called `name`; nullopt for any other name.
constexpr std::optional<DatabaseBackend> database_backend_named(std::string_view name) noexcept {
  for (const DatabaseBackend backend : database_backends) {
    if (to_string(backend) == name) return backend;
  }
  return std::nullopt;
}

}  // namespace program_executor::config
