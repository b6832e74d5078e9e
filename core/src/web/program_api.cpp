#include "program_executor/web/program_api.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include "program_executor/amqp/amqp_error.hpp"
#include "program_executor/config/job_name.hpp"
#include "program_executor/executor/attempt_timeline.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/program_status.hpp"
#include "program_executor/executor/step_publishing.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/web/api_problem.hpp"

namespace program_executor::web {
namespace {

// Jobs per program the API accepts: far above any real program, low enough
// that one request cannot make a row no worker wants to read.
constexpr std::size_t max_jobs = 10000;
constexpr std::size_t row_limit_steps = 1000000;

nlohmann::json optional_text(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// JSON nested deeper than this is refused: copying and writing a value
// recurses once per level, so a small body of [[[[...]]]] could exhaust a
// request thread's stack. Real program data is a few levels deep.
constexpr int max_json_depth = 64;

nlohmann::json parse_body(std::string_view body) {
  try {
    return nlohmann::json::parse(body, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > max_json_depth) {
        throw invalid_request("the body is nested deeper than " + std::to_string(max_json_depth) +
                              " levels");
      }
      return true;
    });
  } catch (const nlohmann::json::parse_error& e) {
    throw ApiProblem(400, "invalid-json", "Invalid JSON",
                     std::string("the body is not valid JSON: ") + e.what());
  }
}

// The members of `object` must all be among `allowed`: a misspelt member
// ("job_data") is an error, not silently ignored.
void only_members(const nlohmann::json& object, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string names;
      for (const auto name : allowed) names += (names.empty() ? "" : ", ") + std::string(name);
      throw invalid_request("unknown member '" + key + "' (expected " + names + ")");
    }
  }
}

std::vector<std::string> job_list(const nlohmann::json& body) {
  if (!body.contains("jobs")) throw invalid_request("'jobs' is required: an array of job names");
  const nlohmann::json& jobs = body["jobs"];
  if (!jobs.is_array()) throw invalid_request("'jobs' must be an array of job names");
  if (jobs.empty()) throw invalid_request("'jobs' must hold at least one job name");
  if (jobs.size() > max_jobs) {
    throw invalid_request("'jobs' holds " + std::to_string(jobs.size()) + " names; at most " +
                          std::to_string(max_jobs));
  }
  std::vector<std::string> names;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const std::string where = "'jobs'[" + std::to_string(i) + "]";
    if (!jobs[i].is_string()) throw invalid_request(where + " must be a string");
    const std::string name = jobs[i].get<std::string>();
    if (!config::is_valid_job_name(name)) {
      throw invalid_request(where + " '" + name + "' is not a job name (" +
                            std::string(config::job_name_rule) + ")");
    }
    names.push_back(name);
  }
  return names;
}

nlohmann::json object_member(const nlohmann::json& body, const char* name) {
  if (!body.contains(name)) return nlohmann::json::object();
  if (!body[name].is_object()) throw invalid_request(std::string("'") + name + "' must be an object");
  return body[name];
}

// A query parameter that is a whole number in [min, max].
int integer_parameter(const std::string& name, const std::string& text, int min, int max) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    throw invalid_request("'" + name + "' must be a whole number from " + std::to_string(min) +
                          " to " + std::to_string(max) + ", not '" + text + "'");
  }
  return value;
}

ApiProblem unavailable(const std::string& what, const std::exception& e) {
  return problem_for_status(503, what + ": " + e.what());
}

// A publisher, or 503 before anything was written: the broker is asked
// first, so a request it cannot take leaves no row behind.
PublisherPool::Lease publisher_or_unavailable(PublisherPool& publishers, const char* nothing_done) {
  try {
    return publishers.borrow();
  } catch (const amqp::AmqpError& e) {
    throw unavailable(std::string("cannot reach the broker; ") + nothing_done, e);
  }
}

}  // namespace

nlohmann::json program_json(const store::ProgramRow& row, bool data) {
  const std::string state = executor::program_state(row);
  const bool at_a_job = state != "finished" && row.step >= 0 &&
                        static_cast<std::size_t>(row.step) < row.jobs.size();
  nlohmann::json json = {
      {"runId", row.run_id},
      {"state", state},
      {"jobs", row.jobs},
      {"step", row.step},
      {"currentJob", at_a_job ? nlohmann::json(row.jobs[static_cast<std::size_t>(row.step)])
                              : nlohmann::json(nullptr)},
      {"stepRetryCount", row.step_retry_count},
      {"error", optional_text(executor::current_error(row))},
      {"createdAt", row.created_at},
      {"updatedAt", row.updated_at},
      {"finishedAt", optional_text(row.finished_at)},
      {"erroredAt", optional_text(row.errored_at)},
      {"cancelledAt", optional_text(row.cancelled_at)},
      {"leaseOwner", optional_text(row.lease_owner)},
  };
  if (data) {
    json["jobData"] = row.job_data;
    json["programData"] = row.program_data;
  }
  return json;
}

ProgramApi::ProgramApi(const config::Config& config, store::ProgramStore& store,
                       PublisherPool& publishers, KnownJobs known_jobs,
                       StepsPerMinute steps_per_minute)
    : config_(config),
      store_(store),
      publishers_(publishers),
      known_jobs_(std::move(known_jobs)),
      steps_per_minute_(std::move(steps_per_minute)) {}

store::ProgramRow ProgramApi::existing(const std::string& run_id) {
  std::optional<store::ProgramRow> row;
  try {
    row = store_.find(run_id);
  } catch (const store::StoreError& e) {
    throw unavailable("cannot read the program", e);
  }
  if (!row) throw ApiProblem(404, "not-found", "Not found", "no program with run id " + run_id);
  return *row;
}

ApiResponse ProgramApi::create(std::string_view text) {
  const nlohmann::json body = parse_body(text);
  if (!body.is_object()) throw invalid_request("the body must be a JSON object with 'jobs'");
  only_members(body, {"jobs", "programData", "jobData"});
  sdk::ProgramRequest request;
  request.jobs = job_list(body);
  request.program_data = object_member(body, "programData");
  request.job_data = object_member(body, "jobData");

  if (!config_.web.allow_unknown_jobs) {
    std::set<std::string> known;
    for (const auto& [name, plugin] : known_jobs_()) known.insert(name);
    std::vector<std::string> unknown;
    for (const std::string& name : request.jobs) {
      if (!known.count(name) && std::find(unknown.begin(), unknown.end(), name) == unknown.end()) {
        unknown.push_back(name);
      }
    }
    if (!unknown.empty()) {
      std::string names;
      for (const auto& name : unknown) names += (names.empty() ? "" : ", ") + name;
      throw ApiProblem(422, "unknown-jobs", "Unknown jobs",
                       "no plugin in " + config_.plugins.directory + " has the job(s) " + names +
                           " (web.allow_unknown_jobs: true accepts them)",
                       {{"unknownJobs", unknown}});
    }
  }

  PublisherPool::Lease lease = publisher_or_unavailable(publishers_, "nothing was created");
  executor::ProgramCreator creator(store_, lease.publisher(), config_.amqp.queue,
                                   config_.amqp.durable, metrics::no_metrics(),
                                   config_.recovery.stale_after);
  std::string run_id;
  try {
    run_id = creator.create(request);
  } catch (const std::invalid_argument& e) {
    throw invalid_request(e.what());
  } catch (const amqp::AmqpError& e) {
    // The creator marked the row errored: no program waits for a message that never came.
    throw unavailable("the first step could not be published; the program is marked errored", e);
  } catch (const store::StoreError& e) {
    throw unavailable("cannot write the program", e);
  }
  return {201, {{"runId", run_id}}, {{"Location", "/api/v1/programs/" + run_id}}};
}

ApiResponse ProgramApi::list(const std::map<std::string, std::string>& query) {
  for (const auto& [name, value] : query) {
    if (name != "state" && name != "job" && name != "limit" && name != "cursor") {
      throw invalid_request("unknown query parameter '" + name +
                            "' (expected state, job, limit, cursor)");
    }
  }
  store::ProgramFilter filter;
  filter.limit = default_limit;
  if (const auto it = query.find("state"); it != query.end() && !it->second.empty()) {
    const std::string& state = it->second;
    if (state != "running" && state != "finished" && state != "errored" && state != "cancelled") {
      throw invalid_request("'state' must be running, finished, errored or cancelled, not '" +
                            state + "'");
    }
    filter.state = state;
  }
  if (const auto it = query.find("job"); it != query.end() && !it->second.empty()) {
    filter.job = it->second;
  }
  if (const auto it = query.find("limit"); it != query.end()) {
    filter.limit = integer_parameter("limit", it->second, 1, max_limit);
  }
  if (const auto it = query.find("cursor"); it != query.end() && !it->second.empty()) {
    long long before = 0;
    const std::string& text = it->second;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), before);
    if (error != std::errc() || end != text.data() + text.size() || before < 1) {
      throw invalid_request("'cursor' must be the nextCursor of a previous page, not '" + text + "'");
    }
    filter.before_id = before;
  }
  // One row more than the page: whether there is a next page, without
  // answering a cursor that leads to an empty one.
  const int limit = filter.limit;
  filter.limit = limit + 1;
  std::vector<store::ProgramRow> rows;
  try {
    rows = store_.list(filter);
  } catch (const store::StoreError& e) {
    throw unavailable("cannot list programs", e);
  }
  const bool more = static_cast<int>(rows.size()) > limit;
  if (more) rows.resize(static_cast<std::size_t>(limit));
  nlohmann::json programs = nlohmann::json::array();
  for (const auto& row : rows) programs.push_back(program_json(row, false));
  return {200,
          {{"programs", programs},
           {"nextCursor", more ? nlohmann::json(std::to_string(rows.back().id)) : nlohmann::json(nullptr)}},
          {}};
}

ApiResponse ProgramApi::get(const std::string& run_id) {
  return {200, program_json(existing(run_id), true), {}};
}

ApiResponse ProgramApi::attempts(const std::string& run_id) {
  // The row first, then its attempts, as `explain` reads them: the answer
  // and the command's --json are built by the same function from the same reads.
  const store::ProgramRow row = existing(run_id);
  std::vector<store::AttemptRecord> history;
  try {
    history = store_.attempts(run_id);
  } catch (const store::StoreError& e) {
    throw unavailable("cannot read the attempt history", e);
  }
  return {200, executor::explain_json(row, history), {}};
}

ApiResponse ProgramApi::cancel(const std::string& run_id) {
  bool cancelled = false;
  try {
    cancelled = store_.cancel(run_id, executor::cancelled_message);
  } catch (const store::StoreError& e) {
    throw unavailable("cannot cancel the program", e);
  }
  const store::ProgramRow row = existing(run_id);
  if (cancelled) {
    log::event(log::Level::info, "program.cancel_requested", "", {{"run_id", run_id}});
    return {200, program_json(row, true), {}};
  }
  const std::string state = executor::program_state(row);
  // Cancelling twice is what a client retrying after a timeout does: fine.
  if (state == "cancelled") return {200, program_json(row, true), {}};
  throw ApiProblem(409, "conflict", "Conflict",
                   "program " + run_id + " is already " + state + "; nothing to cancel");
}

ApiResponse ProgramApi::resume(const std::string& run_id, std::string_view text) {
  int from_step = 0;  // 1-based; 0: where it stopped
  if (!text.empty()) {
    const nlohmann::json body = parse_body(text);
    if (!body.is_object()) throw invalid_request("the body must be a JSON object (or empty)");
    only_members(body, {"fromStep"});
    if (body.contains("fromStep")) {
      const nlohmann::json& value = body["fromStep"];
      if (!value.is_number_integer() || value.get<long long>() < 1) {
        throw invalid_request("'fromStep' must be a whole number from 1 (steps count from 1)");
      }
      if (value.get<long long>() > static_cast<long long>(row_limit_steps)) {
        throw invalid_request("'fromStep' " + value.dump() + ": beyond any program's steps");
      }
      from_step = static_cast<int>(value.get<long long>());
    }
  }
  const store::ProgramRow row = existing(run_id);
  const std::string state = executor::program_state(row);
  if (state != "errored" && state != "cancelled") {
    throw ApiProblem(409, "conflict", "Conflict",
                     "program " + run_id + " is " + state +
                         "; only errored or cancelled programs resume");
  }
  const int total = static_cast<int>(row.jobs.size());
  const int step = from_step > 0 ? from_step - 1 : row.step;
  if (step >= total) {
    throw invalid_request("'fromStep' " + std::to_string(from_step) + ": the program has " +
                          std::to_string(total) + " steps");
  }
  PublisherPool::Lease lease = publisher_or_unavailable(publishers_, "nothing was resumed");
  bool resumed = false;
  try {
    resumed = store_.resume(run_id, step, config_.recovery.stale_after);
  } catch (const store::StoreError& e) {
    throw unavailable("cannot resume the program", e);
  }
  if (!resumed) {
    throw ApiProblem(409, "conflict", "Conflict",
                     "program " + run_id + " changed meanwhile; read it again");
  }
  try {
    executor::publish_step(lease.publisher(), config_.amqp.queue, config_.amqp.durable, run_id,
                           row.jobs, step, row.program_data);
  } catch (const amqp::AmqpError& e) {
    // The row is resumed: the daemons' recovery sweeper publishes the step
    // once it is overdue (recovery.stale_after_seconds).
    log::event(log::Level::warn, "program.resume_publish_failed",
               "the recovery sweeper publishes the step instead",
               {{"run_id", run_id}, {"error", std::string(e.what())}});
  }
  log::event(log::Level::info, "program.resumed", "",
             {{"run_id", run_id}, {"step", step}, {"job", row.jobs[static_cast<std::size_t>(step)]}});
  return {200, program_json(existing(run_id), true), {}};
}

ApiResponse ProgramApi::jobs() {
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& [name, plugin] : known_jobs_()) jobs.push_back({{"name", name}, {"plugin", plugin}});
  return {200, {{"jobs", jobs}}, {}};
}

ApiResponse ProgramApi::stats() {
  std::lock_guard lock(stats_mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (stats_.is_null() || now - stats_at_ >= stats_ttl) {
    try {
      const store::StateCounts counts = store_.count_by_state();
      nlohmann::json steps = nlohmann::json::array();
      for (const auto& [minute, count] : steps_per_minute_(60)) {
        steps.push_back({{"minute", minute}, {"steps", count}});
      }
      store::ProgramFilter errored;
      errored.state = "errored";
      errored.limit = 10;
      nlohmann::json recent = nlohmann::json::array();
      for (const auto& row : store_.list(errored)) recent.push_back(program_json(row, false));
      stats_ = {{"counts",
                 {{"running", counts.running},
                  {"finished", counts.finished},
                  {"errored", counts.errored},
                  {"cancelled", counts.cancelled}}},
                {"stepsPerMinute", steps},
                {"recentErrors", recent}};
      stats_at_ = now;
    } catch (const store::StoreError& e) {
      throw unavailable("cannot read the statistics", e);
    }
  }
  return {200, stats_, {}};
}

ApiResponse ProgramApi::health() {
  try {
    // A lookup by the unique index: cheap, and it fails when the database does.
    (void)store_.find("health-check");
  } catch (const store::StoreError& e) {
    throw unavailable("the database does not answer", e);
  }
  return {200, {{"status", "ok"}}, {}};
}

}  // namespace program_executor::web
