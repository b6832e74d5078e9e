// The migration files of core/sql, built into the library at build time
// (cmake/EmbedFiles.cmake, from the list in core/CMakeLists.txt).
#pragma once

#include <string_view>
#include <vector>

namespace program_executor::store::detail {

struct EmbeddedFile {
  std::string_view name;     ///< path under core/sql: "<dialect>/NNN_<name>.sql"
  std::string_view content;  ///< the file's bytes
};

/// Every migration file (generated source).
const std::vector<EmbeddedFile>& embedded_files();

}  // namespace program_executor::store::detail
