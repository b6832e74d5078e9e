// The migration files of core/sql, built into the library at build time
// (cmake/EmbedFiles.cmake, from the list in core/CMakeLists.txt).
#pragma once

#include <vector>

#include "program_executor/embedded_file.hpp"

namespace program_executor::store::detail {

/// Every migration file (generated source), named "<dialect>/NNN_<name>.sql".
const std::vector<EmbeddedFile>& embedded_files();

}  // namespace program_executor::store::detail
