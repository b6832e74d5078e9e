// Loads job plugins (.so files) in stages: open, ABI check, register.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "program_executor/plugin/job_registry.hpp"

namespace program_executor::plugin {

/// The stage a plugin failed at; each has its own log event and message.
enum class LoadStage {
  scan,      ///< the directory cannot be read
  open,      ///< dlopen failed: not an ELF file, missing dependency, unresolved symbol
  entry,     ///< program_executor_abi or program_executor_register is not exported
  abi,       ///< built against another SDK ABI, compiler or JSON library version
  register_jobs,  ///< the plugin threw while registering, or registered a bad name
  duplicate, ///< a job name is already registered by another plugin
  trust,     ///< the file or a directory above it could be written by someone but its
             ///< owner or root, is owned by another user, is not a regular file, or is a
             ///< symbolic link out of the plugin directory (see trusted_file.hpp)
};

/// Name of a stage as used in log events and messages ("open", "abi", ...).
const char* to_string(LoadStage stage) noexcept;

/// A plugin that cannot be used; what() reads "<file>: <stage>: <problem>".
class PluginLoadError : public std::runtime_error {
 public:
  PluginLoadError(std::filesystem::path file, LoadStage stage, const std::string& problem);
  const std::filesystem::path& file() const noexcept { return file_; }
  LoadStage stage() const noexcept { return stage_; }

 private:
  std::filesystem::path file_;
  LoadStage stage_;
};

/// Loads one plugin file into `registry` (bound immediately, RTLD_NOW|RTLD_LOCAL).
/// The file is opened and checked first (open_trusted_file with the policy of
/// this process: owned by root or the daemon's user, writable by nobody else,
/// nor any directory above it) and loaded through the open descriptor.
/// Nothing is added to the registry unless every stage succeeds.
/// Throws PluginLoadError.
void load_plugin(const std::filesystem::path& file, JobRegistry& registry);

/// Checks `directory` (stage trust) and loads every entry ending in ".so"
/// directly in it, in name order; other names are ignored, but a ".so" that is
/// not a regular file (a directory, a FIFO, a dangling link) is an error.
/// Throws PluginLoadError at the first bad plugin: a daemon never starts with
/// a partial set of jobs.
JobRegistry load_directory(const std::filesystem::path& directory);

}  // namespace program_executor::plugin
