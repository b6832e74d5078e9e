// Boost.DLL would otherwise use boost::filesystem and need libboost_filesystem;
// with this it is header-only on std::filesystem. Only this file includes it.
#define BOOST_DLL_USE_STD_FS
#include "program_executor/plugin/plugin_loader.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include <boost/dll/shared_library.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/log/logger.hpp"
#include "program_executor/plugin/trusted_file.hpp"
#include "program_executor/sdk/plugin.hpp"

namespace program_executor::plugin {
namespace {

constexpr const char* abi_symbol = "program_executor_abi";
constexpr const char* register_symbol = "program_executor_register";
constexpr std::size_t max_job_name_length = 255;

// The stable event an operator greps for, one per failure stage.
const char* failure_event(LoadStage stage) noexcept {
  switch (stage) {
    case LoadStage::scan: return "plugin.load.scan_failed";
    case LoadStage::open: return "plugin.load.open_failed";
    case LoadStage::entry: return "plugin.load.entry_missing";
    case LoadStage::abi: return "plugin.load.abi_mismatch";
    case LoadStage::register_jobs: return "plugin.load.register_failed";
    case LoadStage::duplicate: return "plugin.load.duplicate_job";
    case LoadStage::trust: return "plugin.load.untrusted";
  }
  return "plugin.load.failed";
}

// Logs the failure under its stage's event and returns the exception to throw,
// so every failure is reported the same way whichever stage it comes from.
PluginLoadError failure(const std::filesystem::path& file, LoadStage stage,
                        const std::string& problem) {
  log::event(log::Level::error, failure_event(stage), problem,
             {{"file", file.string()}, {"stage", to_string(stage)}});
  return PluginLoadError(file, stage, problem);
}

// Boost.DLL reports "<call> failed (dlerror system message: <text>): <errno text>".
// Only <text> means anything (errno is stale after dlopen), and <text> usually
// starts with the path dlopen was given (the /proc/self/fd/N of the open
// file), which PluginLoadError replaces with the plugin's own path.
std::string dlerror_text(const std::string& what, const std::string& load_path) {
  constexpr std::string_view marker = "(dlerror system message: ";
  std::string text = what;
  const auto begin = what.find(marker);
  const auto end = what.rfind(')');
  if (begin != std::string::npos && end != std::string::npos && end > begin) {
    text = what.substr(begin + marker.size(), end - begin - marker.size());
  }
  const std::string prefix = load_path + ": ";
  if (text.starts_with(prefix)) text.erase(0, prefix.size());
  return text;
}

// A loaded plugin: the checked, open file and the library mapped from it.
// `file` is declared first so the descriptor is closed after the unload.
struct LoadedLibrary {
  TrustedFile file;
  boost::dll::shared_library library;

  explicit LoadedLibrary(TrustedFile checked) : file(std::move(checked)) {}
  LoadedLibrary(const LoadedLibrary&) = delete;
  LoadedLibrary& operator=(const LoadedLibrary&) = delete;

  ~LoadedLibrary() {
    if (!library.is_loaded()) return;
    const std::string path = file.load_path();
    library.unload();
    // dlopen() finds an already loaded object by the name it was opened with
    // before it looks at the file. If the object stays loaded (another handle
    // to the same file, or a library glibc will not unload), that name,
    // /proc/self/fd/N, stays attached to it; closing N would let the next
    // plugin opened on descriptor N be answered with this library. Keep N.
    if (void* still_loaded = ::dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD)) {
      ::dlclose(still_loaded);
      file.release();
    }
  }
};

bool valid_job_name(const std::string& name) {
  if (name.empty() || name.size() > max_job_name_length) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == ':' || c == '-';
  });
}

// Collects what a plugin registers without judging it: throwing from add_job
// would unwind through the plugin's own code, which may catch it. The loader
// checks the collected jobs once the plugin has returned.
class CollectingRegistrar final : public sdk::Registrar {
 public:
  struct Collected {
    std::string name;
    sdk::JobFactory factory;
  };

  void add_job(const std::string& name, sdk::JobFactory factory) override {
    jobs_.push_back(Collected{name, std::move(factory)});
  }

  std::vector<Collected>& jobs() noexcept { return jobs_; }

 private:
  std::vector<Collected> jobs_;
};

// Describes every field of `plugin` that differs from the daemon's, or returns
// an empty string when they match.
std::string abi_mismatch(const sdk::AbiInfo& plugin) {
  constexpr sdk::AbiInfo daemon = sdk::current_abi();
  // Only abi_version is known to be at the same place in every ABI version's
  // AbiInfo, so the other fields are read only when it matches.
  if (plugin.abi_version != daemon.abi_version) {
    return "built for plugin ABI " + std::to_string(plugin.abi_version) + ", this daemon has " +
           std::to_string(daemon.abi_version);
  }
  std::string problems;
  auto add = [&problems](const std::string& problem) {
    problems += (problems.empty() ? "" : "; ") + problem;
  };
  if (plugin.compiler_major != daemon.compiler_major) {
    add("built with compiler major version " + std::to_string(plugin.compiler_major) +
        ", daemon has " + std::to_string(daemon.compiler_major));
  }
  if (plugin.cxx11_string_abi != daemon.cxx11_string_abi) {
    add("built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(plugin.cxx11_string_abi) +
        ", daemon has " + std::to_string(daemon.cxx11_string_abi));
  }
  if (plugin.json_major != daemon.json_major || plugin.json_minor != daemon.json_minor) {
    add("built with JSON library " + std::to_string(plugin.json_major) + "." +
        std::to_string(plugin.json_minor) + ", daemon has " + std::to_string(daemon.json_major) +
        "." + std::to_string(daemon.json_minor));
  }
  return problems;
}

}  // namespace

const char* to_string(LoadStage stage) noexcept {
  switch (stage) {
    case LoadStage::scan: return "scan";
    case LoadStage::open: return "open";
    case LoadStage::entry: return "entry";
    case LoadStage::abi: return "abi";
    case LoadStage::register_jobs: return "register";
    case LoadStage::duplicate: return "duplicate";
    case LoadStage::trust: return "trust";
  }
  return "unknown";
}

PluginLoadError::PluginLoadError(std::filesystem::path file, LoadStage stage,
                                 const std::string& problem)
    : std::runtime_error(file.string() + ": " + to_string(stage) + ": " + problem),
      file_(std::move(file)),
      stage_(stage) {}

void load_plugin(const std::filesystem::path& file, JobRegistry& registry) {
  const std::string file_name = file.string();

  // Stage trust, before a byte of the plugin runs: its static initialisers
  // run inside dlopen.
  std::optional<TrustedFile> checked;
  try {
    checked.emplace(open_trusted_file(file, TrustPolicy::for_this_process()));
  } catch (const UntrustedFileError& e) {
    throw failure(file, LoadStage::trust, e.what());
  } catch (const FileOpenError& e) {
    throw failure(file, LoadStage::open, e.what());
  }

  // Stage open, through the descriptor just checked, never through the path
  // again: a file swapped in after the checks is not the one loaded.
  // RTLD_NOW makes an unresolved symbol fail here rather than in the middle of
  // a job; RTLD_LOCAL keeps one plugin's symbols from resolving another's.
  auto loaded = std::make_shared<LoadedLibrary>(std::move(*checked));
  const std::string load_path = loaded->file.load_path();
  try {
    loaded->library.load(load_path,
                         boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::system_error& e) {
    throw failure(file, LoadStage::open, dlerror_text(e.what(), load_path));
  }
  boost::dll::shared_library* library = &loaded->library;

  // Stage entry: probe with has() so a missing symbol is a plain answer, not
  // an exception carrying a stale errno.
  std::string missing;
  for (const char* symbol : {abi_symbol, register_symbol}) {
    if (!library->has(symbol)) missing += (missing.empty() ? "" : ", ") + std::string(symbol);
  }
  if (!missing.empty()) {
    throw failure(file, LoadStage::entry,
                  "does not export " + missing + " (use PROGRAM_EXECUTOR_PLUGIN)");
  }

  // Stage abi, before anything else of the plugin runs: a layout mismatch
  // would otherwise crash on the first virtual call instead of failing here.
  const sdk::AbiInfo* abi = nullptr;
  try {
    abi = library->get<const sdk::AbiInfo*()>(abi_symbol)();
  } catch (const std::exception& e) {
    throw failure(file, LoadStage::abi, std::string(abi_symbol) + "() threw: " + e.what());
  } catch (...) {
    throw failure(file, LoadStage::abi,
                  std::string(abi_symbol) + "() threw a non-standard exception");
  }
  if (abi == nullptr) {
    throw failure(file, LoadStage::abi, std::string(abi_symbol) + "() returned null");
  }
  if (std::string mismatch = abi_mismatch(*abi); !mismatch.empty()) {
    throw failure(file, LoadStage::abi, mismatch);
  }

  // Stage register. The registrar is declared after `library`, so on any
  // failure the plugin's factories are destroyed while it is still mapped.
  CollectingRegistrar registrar;
  try {
    library->get<void(sdk::Registrar&)>(register_symbol)(registrar);
  } catch (const std::exception& e) {
    throw failure(file, LoadStage::register_jobs, std::string("registration threw: ") + e.what());
  } catch (...) {
    throw failure(file, LoadStage::register_jobs, "registration threw a non-standard exception");
  }
  if (registrar.jobs().empty()) {
    throw failure(file, LoadStage::register_jobs, "the plugin registered no jobs");
  }
  for (const auto& job : registrar.jobs()) {
    if (!valid_job_name(job.name)) {
      throw failure(file, LoadStage::register_jobs,
                    "invalid job name '" + job.name +
                        "' (1 to 255 characters from A-Z a-z 0-9 _ . : -)");
    }
    if (!job.factory) {
      throw failure(file, LoadStage::register_jobs, "job '" + job.name + "' has no factory");
    }
  }

  // Stage duplicate. Adding to a copy and swapping it in keeps the registry
  // unchanged when a later name of this plugin clashes (all or nothing).
  JobRegistry staged = registry;
  const std::shared_ptr<void> origin_library = loaded;
  try {
    for (auto& job : registrar.jobs()) {
      staged.add(job.name, std::move(job.factory), JobOrigin{file_name, origin_library});
    }
  } catch (const DuplicateJobError& e) {
    throw failure(file, LoadStage::duplicate, e.what());
  }
  const std::size_t job_count = registrar.jobs().size();
  registry = std::move(staged);

  log::event(log::Level::info, "plugin.loaded", "", {{"file", file_name}, {"jobs", job_count}});
}

JobRegistry load_directory(const std::filesystem::path& directory) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    throw failure(directory, LoadStage::scan,
                  ec ? ec.message() : std::string("not a directory or does not exist"));
  }
  // Checked even when it holds no plugin yet: whoever can write it decides
  // what the daemon runs at its next start.
  try {
    check_trusted_directory(directory, TrustPolicy::for_this_process());
  } catch (const UntrustedFileError& e) {
    throw failure(directory, LoadStage::trust, e.what());
  } catch (const FileOpenError& e) {
    throw failure(directory, LoadStage::scan, e.what());
  }

  std::vector<fs::path> files;
  fs::directory_iterator it(directory, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    // Other names (README.txt, libfoo.so.1) are not plugins. A ".so" that is
    // not a regular file is not skipped but refused by load_plugin: someone
    // meant it to be loaded.
    if (entry.path().extension() == ".so") files.push_back(entry.path());
  }
  if (ec) throw failure(directory, LoadStage::scan, ec.message());

  // Name order makes the load order, and so which of two clashing plugins is
  // reported as the second, the same on every start.
  std::sort(files.begin(), files.end());

  JobRegistry registry;
  for (const fs::path& file : files) load_plugin(file, registry);
  if (files.empty()) {
    log::event(log::Level::warn, "plugin.none_found", "no .so files in the plugin directory",
               {{"directory", directory.string()}});
  }
  return registry;
}

}  // namespace program_executor::plugin
