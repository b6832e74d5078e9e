// The binary contract between the daemon and a job plugin.
#pragma once

#include <nlohmann/json.hpp>

/// Version of the plugin ABI. Bump it on any change to a header under
/// program_executor/sdk/ that changes a class layout, a virtual table or a
/// function signature; the daemon refuses plugins built for another version.
#define PROGRAM_EXECUTOR_ABI_VERSION 1

/// Marks a symbol a plugin exports to the daemon (plugins build with hidden
/// visibility, so everything else stays private to the plugin).
#define PROGRAM_EXECUTOR_EXPORT __attribute__((visibility("default")))

namespace program_executor::sdk {

/// What a plugin was built with. The daemon compares every field with its own
/// before it calls anything else in the plugin: C++ objects (std::string,
/// std::function, nlohmann::json) cross the boundary, so the compiler, the
/// standard library ABI and the JSON library must match, not only the SDK.
struct AbiInfo {
  int abi_version;         ///< PROGRAM_EXECUTOR_ABI_VERSION
  int compiler_major;      ///< __GNUC__ (clang reports 4; it is compared too)
  int cxx11_string_abi;    ///< _GLIBCXX_USE_CXX11_ABI
  int json_major;          ///< NLOHMANN_JSON_VERSION_MAJOR
  int json_minor;          ///< NLOHMANN_JSON_VERSION_MINOR
};

/// The AbiInfo of the code being compiled now (the plugin's or the daemon's).
constexpr AbiInfo current_abi() noexcept {
  return AbiInfo{PROGRAM_EXECUTOR_ABI_VERSION, __GNUC__, _GLIBCXX_USE_CXX11_ABI,
                 NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR};
}

}  // namespace program_executor::sdk
