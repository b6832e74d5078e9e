// What a running daemon has loaded, recorded for `program-executor jobs`: the
// plugin directory shows what *would* load, the record what *did*, so a plugin
// installed but not yet reloaded is visible before its steps are skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "program_executor/plugin/job_registry.hpp"

namespace program_executor::executor {

/// The record's file name inside the daemon's state directory
/// ($STATE_DIRECTORY, which systemd's StateDirectory= sets and the hardened
/// unit lets the daemon write: /var/lib/program-executor, or
/// /var/lib/program-executor/INSTANCE for program-executor@INSTANCE).
inline constexpr const char* loaded_jobs_file_name = "loaded-jobs.json";

/// Where the packaged units keep their state: `jobs` looks here and one level down.
inline constexpr const char* default_state_root = "/var/lib/program-executor";

/// A plugin file as it was when loaded: a later install shows as a change.
struct LoadedPlugin {
  std::string file;
  std::int64_t size = -1;      ///< bytes; -1 if it could not be read
  std::int64_t mtime_ns = -1;  ///< modification time, ns since the epoch; -1 if unknown
  bool operator==(const LoadedPlugin&) const = default;
};

/// One daemon process's loaded jobs, written on start and on every reload.
struct LoadedJobsRecord {
  long long pid = 0;
  std::string config;      ///< absolute path of the configuration it runs
  std::string started_at;  ///< UTC ISO 8601
  std::string loaded_at;   ///< of the last successful (re)load, UTC ISO 8601
  int reloads = 0;         ///< successful reloads since the start
  std::string plugin_directory;
  std::vector<plugin::RegisteredJob> jobs;  ///< name and plugin file, by name
  std::vector<LoadedPlugin> plugins;        ///< every plugin file, as loaded

  nlohmann::json to_json() const;
  /// Throws std::runtime_error when `json` is not a record.
  static LoadedJobsRecord from_json(const nlohmann::json& json);
};

/// A record for `registry`, loaded from `plugin_directory` by this process now.
LoadedJobsRecord record_of(const plugin::JobRegistry& registry, const std::string& plugin_directory,
                           const std::string& config_path);

/// The file as it is now (size, modification time; -1 when it cannot be read).
LoadedPlugin plugin_file_state(const std::string& file);

/// Writes `record` to `directory`/loaded-jobs.json atomically (a temporary
/// file renamed over it), mode 0640 whatever the umask, so the daemon's group
/// can read it. Throws std::runtime_error naming the file.
void write_loaded_jobs(const std::filesystem::path& directory, const LoadedJobsRecord& record);

/// Removes the record in `directory` if it is this `pid`'s (a clean stop).
void remove_loaded_jobs(const std::filesystem::path& directory, long long pid) noexcept;

/// Every record under `roots` (each root and its immediate subdirectories)
/// of a daemon running `config` (compared as absolute paths). Unreadable
/// files are skipped: `problems` gets one line each.
std::vector<LoadedJobsRecord> find_loaded_jobs(const std::vector<std::filesystem::path>& roots,
                                               const std::filesystem::path& config,
                                               std::vector<std::string>& problems);

/// Whether the process of a record still runs (kill(pid, 0)).
bool process_alive(long long pid) noexcept;

/// How a job of the directory compares with what the running daemons loaded.
enum class JobLoadState {
  loaded,      ///< every running daemon has it, from the file as it is now
  not_loaded,  ///< on disk, but a running daemon lacks it: reload to serve it
  changed,     ///< loaded, but its plugin file changed since: reload to run the new one
  removed,     ///< a daemon still has it, the directory no longer does
  no_daemon,   ///< on disk; no running daemon of this configuration is known
};

const char* to_string(JobLoadState state) noexcept;

struct JobAvailability {
  std::string job;
  std::string plugin_file;  ///< on disk, or (removed) as loaded
  JobLoadState state = JobLoadState::no_daemon;
  std::vector<long long> missing_in;  ///< pids of running daemons lacking it (not_loaded)
};

/// Compares the jobs the plugin directory provides now (`on_disk`, with the
/// current state of their files) with the running daemons' records; sorted
/// by job name.
std::vector<JobAvailability> compare_jobs(const std::vector<plugin::RegisteredJob>& on_disk,
                                          const std::vector<LoadedPlugin>& disk_files,
                                          const std::vector<LoadedJobsRecord>& daemons);

}  // namespace program_executor::executor
