// The files `serve` answers with that are not computed: the console's page,
// script and style sheet, and the OpenAPI document. Built into the binary
// from core/src/web/ by cmake/EmbedFiles.cmake, so the console works offline
// and a package cannot ship a page that does not match its API.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "program_executor/embedded_file.hpp"

namespace program_executor::web {

/// Every embedded file (generated source), named by its path under
/// core/src/web/: "console/app.js", "openapi.json".
const std::vector<EmbeddedFile>& embedded_files();

struct WebAsset {
  std::string_view content;
  std::string_view content_type;  ///< from the file's extension
};

/// The embedded file called `name`, with its content type; nullopt if none.
std::optional<WebAsset> web_asset(std::string_view name);

}  // namespace program_executor::web
