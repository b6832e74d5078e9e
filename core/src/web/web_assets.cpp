#include "program_executor/web/web_assets.hpp"

namespace program_executor::web {
namespace {

std::string_view content_type_of(std::string_view name) {
  const auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".json")) return "application/json";
  if (ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

}  // namespace

std::optional<WebAsset> web_asset(std::string_view name) {
  for (const EmbeddedFile& file : embedded_files()) {
    if (file.name == name) return WebAsset{file.content, content_type_of(name)};
  }
  return std::nullopt;
}

}  // namespace program_executor::web
