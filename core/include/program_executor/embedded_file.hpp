// A file built into the binary by cmake/EmbedFiles.cmake: the schema
// migrations (store) and the web console's assets (web) ship this way, so
// no installed copy can drift from the code that reads it.
#pragma once

#include <string_view>

namespace program_executor {

struct EmbeddedFile {
  std::string_view name;     ///< its path relative to the directory it was embedded from
  std::string_view content;  ///< its bytes
};

}  // namespace program_executor
