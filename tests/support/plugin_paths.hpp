// Where the build put the plugins the tests load: the demo plugin and the
// fixture plugins of tests/fixtures (one directory per case).
#pragma once

#include <filesystem>
#include <string>

namespace program_executor::test {

/// plugins/demo of the build tree: the directory holding demo.so.
inline std::filesystem::path demo_plugin_dir() { return PE_DEMO_PLUGIN_DIR; }

/// The demo plugin itself.
inline std::filesystem::path demo_plugin() { return demo_plugin_dir() / "demo.so"; }

/// A path under tests/fixtures of the build tree: a case's directory ("good")
/// or a plugin in it ("good/good.so").
inline std::filesystem::path fixture(const std::string& relative) {
  return std::filesystem::path(PE_FIXTURE_PLUGIN_DIR) / relative;
}

}  // namespace program_executor::test
