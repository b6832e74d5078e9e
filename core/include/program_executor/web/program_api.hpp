// What the HTTP API does, apart from HTTP: each route's work on the store and
// the broker, taking the request's parts and returning the answer's status
// and JSON body, or throwing ApiProblem before anything changed.
// (web_server.hpp carries it over HTTP: routes, tokens, limits, the console.)
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "program_executor/config/config.hpp"
#include "program_executor/store/program_store.hpp"
#include "program_executor/web/publisher_pool.hpp"

namespace program_executor::web {

struct ApiResponse {
  int status = 200;
  nlohmann::json body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Steps executed per minute over the last `minutes` minutes, oldest first:
/// ("YYYY-MM-DDTHH:MM:00Z", steps).
using StepsPerMinute = std::function<std::vector<std::pair<std::string, long long>>(int minutes)>;

/// The jobs the plugin directory provides: name and plugin file, by name.
using KnownJobs = std::function<std::vector<std::pair<std::string, std::string>>()>;

/// A program as the API shows it (docs/api.md): camelCase, the state and the
/// current error decided as `status` decides them; with `data`, its job data
/// and program data too.
nlohmann::json program_json(const store::ProgramRow& row, bool data);

class ProgramApi {
 public:
  ProgramApi(const config::Config& config, store::ProgramStore& store, PublisherPool& publishers,
             KnownJobs known_jobs, StepsPerMinute steps_per_minute);

  /// POST /programs: 201 {"runId"} and a Location header.
  ApiResponse create(std::string_view body);
  /// GET /programs?state=&job=&limit=&cursor=
  ApiResponse list(const std::map<std::string, std::string>& query);
  ApiResponse get(const std::string& run_id);
  /// GET /programs/{runId}/attempts: the attempt history and the reason line,
  /// as `program-executor explain --json` prints them (executor::explain_json).
  ApiResponse attempts(const std::string& run_id);
  ApiResponse cancel(const std::string& run_id);
  /// POST /programs/{runId}/resume with {"fromStep"} or an empty body.
  ApiResponse resume(const std::string& run_id, std::string_view body);
  ApiResponse jobs();
  /// Counts by state, steps per minute, the newest errors; computed at most
  /// once per `stats_ttl` (every open console polls it).
  ApiResponse stats();
  ApiResponse health();

  static constexpr std::chrono::milliseconds stats_ttl{2000};
  static constexpr int max_limit = 500;
  static constexpr int default_limit = 50;

 private:
  store::ProgramRow existing(const std::string& run_id);

  const config::Config& config_;
  store::ProgramStore& store_;
  PublisherPool& publishers_;
  KnownJobs known_jobs_;
  StepsPerMinute steps_per_minute_;

  std::mutex stats_mutex_;
  std::chrono::steady_clock::time_point stats_at_{};
  nlohmann::json stats_;
};

}  // namespace program_executor::web
