// The jobs the daemon can run, by globally unique name, with the plugin each came from.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "program_executor/sdk/plugin.hpp"

namespace program_executor::plugin {

/// Two plugins (or one plugin twice) registered the same job name.
class DuplicateJobError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where a job came from. `library` keeps the shared object mapped: every job
/// object created from the factory holds a copy, so a plugin is unloaded only
/// when its registry entry and all its job objects are gone.
struct JobOrigin {
  std::string plugin_file;         ///< path of the .so (or a label in tests)
  std::shared_ptr<void> library;   ///< may be null for jobs compiled into the host
};

struct RegisteredJob {
  std::string name;
  std::string plugin_file;
};

/// Immutable once built; shared read-only by every worker thread.
class JobRegistry {
 public:
  /// Adds `name`; throws DuplicateJobError naming both plugin files if taken.
  void add(const std::string& name, sdk::JobFactory factory, JobOrigin origin);

  bool contains(std::string_view name) const;

  /// Creates the job, or returns nullptr when no job has that name. The
  /// returned object keeps its plugin loaded until it is destroyed.
  /// Exceptions thrown by the plugin's factory propagate.
  std::shared_ptr<sdk::Job> create(std::string_view name, const nlohmann::json& program_data) const;

  /// Every job, sorted by name.
  std::vector<RegisteredJob> jobs() const;

  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    // Declared first so it is destroyed last: the factory's code (its
    // std::function manager) lives in the plugin, which `origin.library` maps.
    JobOrigin origin;
    sdk::JobFactory factory;
  };
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace program_executor::plugin
