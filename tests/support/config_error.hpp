// The message a configuration is refused with, as its user reads it: what the
// config tests compare.
#pragma once

#include <string>
#include <string_view>

#include "program_executor/config/config.hpp"

namespace program_executor::test {

/// What config::load_string() refuses `yaml` with (the file named test.yaml),
/// or "(no error)" when it accepts it.
inline std::string error_of(std::string_view yaml, const config::LoadOptions& options = {}) {
  try {
    config::load_string(yaml, "test.yaml", options);
  } catch (const config::ConfigError& error) {
    return error.what();
  }
  return "(no error)";
}

}  // namespace program_executor::test
