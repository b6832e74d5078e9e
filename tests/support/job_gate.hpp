// The test's side of the fixture.gate job (tests/fixtures/src/gate.cpp): a
// step that runs until the test opens its gate, so a daemon test waits for
// the state it needs instead of assuming how long a sleep lasts.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/plugin_paths.hpp"
#include "support/test_environment.hpp"

namespace program_executor::test {

/// The plugin directory holding demo.so and gate.so (fixture.gate).
inline std::string demo_and_gate_plugin_dir() { return fixture("demo_gate").string(); }

/// One gate: its fixture.gate steps run until open() is called.
class JobGate {
 public:
  JobGate() = default;

  /// Job data for a program whose fixture.gate steps wait for this gate.
  nlohmann::json job_data() const { return {{"fixture.gate", {{"file", file().string()}}}}; }

  /// Lets every waiting and future fixture.gate step of this gate end.
  void open() const { std::ofstream(file()) << "open\n"; }

 private:
  std::filesystem::path file() const { return directory_.path() / "open"; }

  TemporaryDirectory directory_;
};

}  // namespace program_executor::test
