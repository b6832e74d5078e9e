#include "program_executor/executor/loaded_jobs_record.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace program_executor::executor {
namespace {

namespace fs = std::filesystem;

std::string now_utc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03dZ", text, static_cast<int>(ms));
  return out;
}

std::string absolute_path(const fs::path& path) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::absolute(path).lexically_normal().string() : resolved.string();
}

std::optional<LoadedJobsRecord> read_record(const fs::path& file,
                                            std::vector<std::string>& problems) {
  std::ifstream in(file);
  if (!in) {
    problems.push_back(file.string() + ": cannot be read (" + std::strerror(errno) +
                       "); run as root or as a member of the daemon's group");
    return std::nullopt;
  }
  try {
    return LoadedJobsRecord::from_json(nlohmann::json::parse(in));
  } catch (const std::exception& e) {
    problems.push_back(file.string() + ": not a loaded-jobs record: " + e.what());
    return std::nullopt;
  }
}

}  // namespace

nlohmann::json LoadedJobsRecord::to_json() const {
  nlohmann::json job_list = nlohmann::json::array();
  for (const auto& job : jobs) job_list.push_back({{"job", job.name}, {"plugin", job.plugin_file}});
  nlohmann::json plugin_list = nlohmann::json::array();
  for (const auto& plugin : plugins) {
    plugin_list.push_back(
        {{"file", plugin.file}, {"size", plugin.size}, {"mtime_ns", plugin.mtime_ns}});
  }
  return {{"pid", pid},
          {"config", config},
          {"started_at", started_at},
          {"loaded_at", loaded_at},
          {"reloads", reloads},
          {"plugin_directory", plugin_directory},
          {"jobs", job_list},
          {"plugins", plugin_list}};
}

LoadedJobsRecord LoadedJobsRecord::from_json(const nlohmann::json& json) {
  try {
    LoadedJobsRecord record;
    record.pid = json.at("pid").get<long long>();
    record.config = json.at("config").get<std::string>();
    record.started_at = json.at("started_at").get<std::string>();
    record.loaded_at = json.at("loaded_at").get<std::string>();
    record.reloads = json.at("reloads").get<int>();
    record.plugin_directory = json.at("plugin_directory").get<std::string>();
    for (const auto& job : json.at("jobs")) {
      record.jobs.push_back(
          {job.at("job").get<std::string>(), job.at("plugin").get<std::string>()});
    }
    for (const auto& plugin : json.at("plugins")) {
      record.plugins.push_back({plugin.at("file").get<std::string>(),
                                plugin.at("size").get<std::int64_t>(),
                                plugin.at("mtime_ns").get<std::int64_t>()});
    }
    return record;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(e.what());
  }
}

LoadedPlugin plugin_file_state(const std::string& file) {
  LoadedPlugin plugin{file, -1, -1};
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) {
    plugin.size = static_cast<std::int64_t>(st.st_size);
    plugin.mtime_ns =
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }
  return plugin;
}

LoadedJobsRecord record_of(const plugin::JobRegistry& registry, const std::string& plugin_directory,
                           const std::string& config_path) {
  LoadedJobsRecord record;
  record.pid = static_cast<long long>(::getpid());
  record.config = absolute_path(config_path);
  record.started_at = record.loaded_at = now_utc();
  record.plugin_directory = plugin_directory;
  record.jobs = registry.jobs();
  std::set<std::string> files;
  for (const auto& job : record.jobs) files.insert(job.plugin_file);
  // Taken right after the load: a file replaced later differs from this.
  for (const auto& file : files) record.plugins.push_back(plugin_file_state(file));
  return record;
}

void write_loaded_jobs(const fs::path& directory, const LoadedJobsRecord& record) {
  const fs::path target = directory / loaded_jobs_file_name;
  const fs::path temporary =
      directory / (std::string(".") + loaded_jobs_file_name + "." + std::to_string(record.pid));
  const std::string text = record.to_json().dump(2) + "\n";
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0)
    throw std::runtime_error(temporary.string() + ": cannot create: " + std::strerror(errno));
  bool written = ::fchmod(fd, 0640) == 0;  // the unit's UMask=0077 would leave 0600
  std::size_t done = 0;
  while (written && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) done += static_cast<std::size_t>(n);
  }
  const int error = written ? 0 : errno;
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(written ? errno : error);
    ::unlink(temporary.c_str());
    throw std::runtime_error(target.string() + ": cannot write: " + why);
  }
}

void remove_loaded_jobs(const fs::path& directory, long long pid) noexcept {
  try {
    const fs::path target = directory / loaded_jobs_file_name;
    std::ifstream in(target);
    if (!in) return;
    const LoadedJobsRecord record = LoadedJobsRecord::from_json(nlohmann::json::parse(in));
    if (record.pid == pid) ::unlink(target.c_str());
  } catch (const std::exception&) {
    // Not ours or unreadable: leave it; `jobs` ignores records of dead processes.
  }
}

std::vector<LoadedJobsRecord> find_loaded_jobs(const std::vector<fs::path>& roots,
                                               const fs::path& config,
                                               std::vector<std::string>& problems) {
  const std::string wanted = absolute_path(config);
  std::vector<fs::path> candidates;
  for (const fs::path& root : roots) {
    std::error_code ec;
    candidates.push_back(root / loaded_jobs_file_name);
    for (fs::directory_iterator it(root, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      if (it->is_directory(ec)) candidates.push_back(it->path() / loaded_jobs_file_name);
    }
    // A missing root means no daemon ran here; an unreadable one hides them.
    if (ec && ec != std::errc::no_such_file_or_directory) {
      problems.push_back(root.string() + ": cannot be read (" + ec.message() +
                         "); run as root or as a member of the daemon's group");
    }
  }
  std::vector<LoadedJobsRecord> found;
  for (const fs::path& file : candidates) {
    std::error_code ec;
    if (!fs::exists(file, ec)) continue;
    std::optional<LoadedJobsRecord> record = read_record(file, problems);
    if (record && record->config == wanted) found.push_back(std::move(*record));
  }
  return found;
}

bool process_alive(long long pid) noexcept {
  if (pid <= 0) return false;
  // EPERM: it exists, under another user (the daemon's, seen by an operator).
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

const char* to_string(JobLoadState state) noexcept {
  switch (state) {
    case JobLoadState::loaded: return "loaded";
    case JobLoadState::not_loaded: return "not loaded";
    case JobLoadState::changed: return "changed";
    case JobLoadState::removed: return "removed";
    case JobLoadState::no_daemon: return "no daemon";
  }
  return "unknown";
}

std::vector<JobAvailability> compare_jobs(const std::vector<plugin::RegisteredJob>& on_disk,
                                          const std::vector<LoadedPlugin>& disk_files,
                                          const std::vector<LoadedJobsRecord>& daemons) {
  std::map<std::string, LoadedPlugin> now;
  for (const auto& file : disk_files) now[file.file] = file;
  std::map<std::string, JobAvailability> rows;
  for (const auto& job : on_disk) {
    JobAvailability row{job.name,
                        job.plugin_file,
                        daemons.empty() ? JobLoadState::no_daemon : JobLoadState::loaded,
                        {}};
    for (const auto& daemon : daemons) {
      const auto it = std::find_if(daemon.jobs.begin(), daemon.jobs.end(),
                                   [&](const auto& loaded) { return loaded.name == job.name; });
      if (it == daemon.jobs.end()) {
        row.state = JobLoadState::not_loaded;
        row.missing_in.push_back(daemon.pid);
        continue;
      }
      const auto as_loaded = std::find_if(daemon.plugins.begin(), daemon.plugins.end(),
                                          [&](const auto& p) { return p.file == it->plugin_file; });
      const auto as_now = now.find(job.plugin_file);
      const bool same_file = it->plugin_file == job.plugin_file &&
                             as_loaded != daemon.plugins.end() && as_now != now.end() &&
                             *as_loaded == as_now->second;
      if (!same_file && row.state == JobLoadState::loaded) row.state = JobLoadState::changed;
    }
    rows.emplace(job.name, std::move(row));
  }
  for (const auto& daemon : daemons) {
    for (const auto& loaded : daemon.jobs) {
      if (!rows.count(loaded.name)) {
        rows.emplace(loaded.name,
                     JobAvailability{loaded.name, loaded.plugin_file, JobLoadState::removed, {}});
      }
    }
  }
  std::vector<JobAvailability> result;
  for (auto& [name, row] : rows) result.push_back(std::move(row));
  return result;
}

}  // namespace program_executor::executor
