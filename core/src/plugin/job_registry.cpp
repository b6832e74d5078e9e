#include "program_executor/plugin/job_registry.hpp"

#include <utility>

#include <nlohmann/json.hpp>

namespace program_executor::plugin {
namespace {

// Deletes a job object, then drops its reference to the plugin library, in
// that order: the job's destructor is code inside the plugin, so the library
// must still be mapped when it runs. Releasing the library explicitly (rather
// than when the control block destroys the deleter) makes the order certain.
class JobDeleter {
 public:
  explicit JobDeleter(std::shared_ptr<void> library) : library_(std::move(library)) {}

  void operator()(sdk::Job* job) noexcept {
    delete job;
    library_.reset();
  }

 private:
  std::shared_ptr<void> library_;
};

}  // namespace

void JobRegistry::add(const std::string& name, sdk::JobFactory factory, JobOrigin origin) {
  if (!factory) {
    throw std::runtime_error("job '" + name + "' from " + origin.plugin_file +
                             " has an empty factory");
  }
  if (auto found = entries_.find(name); found != entries_.end()) {
    throw DuplicateJobError("job '" + name + "' is registered by both " +
                            found->second.origin.plugin_file + " and " + origin.plugin_file);
  }
  entries_.emplace(name, Entry{std::move(origin), std::move(factory)});
}

bool JobRegistry::contains(std::string_view name) const {
  return entries_.find(name) != entries_.end();
}

std::shared_ptr<sdk::Job> JobRegistry::create(std::string_view name,
                                              const nlohmann::json& program_data) const {
  auto found = entries_.find(name);
  if (found == entries_.end()) return nullptr;
  const Entry& entry = found->second;
  std::unique_ptr<sdk::Job> job = entry.factory(program_data);
  // nullptr already means "no such job" to the caller; a factory that returns
  // nothing is a plugin bug and must not be mistaken for an unknown name.
  if (!job) {
    throw std::runtime_error("the factory of job '" + found->first + "' from " +
                             entry.origin.plugin_file + " returned no object");
  }
  // Constructing the shared_ptr may throw (allocating the control block); in
  // that case the deleter runs on the pointer, so release() is safe here.
  return std::shared_ptr<sdk::Job>(job.release(), JobDeleter(entry.origin.library));
}

std::vector<RegisteredJob> JobRegistry::jobs() const {
  std::vector<RegisteredJob> result;
  result.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) {
    result.push_back(RegisteredJob{name, entry.origin.plugin_file});
  }
  return result;
}

}  // namespace program_executor::plugin
