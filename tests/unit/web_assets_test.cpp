// The files `serve` answers with that are built into the binary
// (cmake/EmbedFiles.cmake): the console's page, script and style sheet and
// the OpenAPI document, each with its content type, byte for byte as in
// core/src/web/.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/web/web_assets.hpp"

using namespace program_executor;
namespace fs = std::filesystem;

namespace {

std::string source_file(const std::string& name) {
  std::ifstream in(fs::path(PE_SOURCE_DIR) / "core" / "src" / "web" / name, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("the console and the OpenAPI document are embedded with their content types",
          "[web][assets]") {
  const std::pair<const char*, const char*> expected[] = {
      {"console/index.html", "text/html; charset=utf-8"},
      {"console/app.js", "text/javascript; charset=utf-8"},
      {"console/style.css", "text/css; charset=utf-8"},
      {"openapi.json", "application/json"},
  };
  for (const auto& [name, content_type] : expected) {
    INFO(name);
    const auto asset = web::web_asset(name);
    REQUIRE(asset);
    CHECK(asset->content_type == content_type);
    CHECK_FALSE(asset->content.empty());
    // Byte for byte what the tree holds: nothing cut, nothing added.
    CHECK(std::string(asset->content) == source_file(name));
  }
  // Whatever else is embedded is served with a real content type.
  for (const EmbeddedFile& file : web::embedded_files()) {
    INFO(file.name);
    const auto asset = web::web_asset(file.name);
    REQUIRE(asset);
    CHECK(asset->content_type != "application/octet-stream");
  }
}

TEST_CASE("the embedded page loads the embedded script and style sheet", "[web][assets]") {
  const auto page = web::web_asset("console/index.html");
  REQUIRE(page);
  const std::string html(page->content);
  CHECK_THAT(html, Catch::StartsWith("<!doctype html>", Catch::CaseSensitive::No));
  CHECK_THAT(html, Catch::Contains("app.js") && Catch::Contains("style.css"));
}

TEST_CASE("the embedded OpenAPI document is JSON, OpenAPI 3.1, describing every route",
          "[web][assets]") {
  const auto asset = web::web_asset("openapi.json");
  REQUIRE(asset);
  nlohmann::json document;
  REQUIRE_NOTHROW(document = nlohmann::json::parse(asset->content));
  REQUIRE(document["openapi"].is_string());
  CHECK_THAT(document["openapi"].get<std::string>(), Catch::StartsWith("3.1"));
  const nlohmann::json& paths = document["paths"];
  for (const char* path : {"/api/v1/programs", "/api/v1/programs/{runId}",
                           "/api/v1/programs/{runId}/cancel", "/api/v1/programs/{runId}/resume",
                           "/api/v1/jobs", "/api/v1/stats", "/api/v1/health",
                           "/api/v1/openapi.json"}) {
    INFO(path);
    CHECK(paths.contains(path));
  }
}

TEST_CASE("a name that is not embedded has no asset", "[web][assets]") {
  for (const char* name : {"", "index.html", "console/", "console/missing.js", "/openapi.json",
                           "../web/openapi.json", "console/../openapi.json", "OPENAPI.JSON",
                           "openapi.json "}) {
    INFO("'" << name << "'");
    CHECK_FALSE(web::web_asset(name));
  }
}
