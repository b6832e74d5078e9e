// In-memory stand-ins for the store and the broker, for unit tests only.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::test {

/// A ProgramStore over a map, with the same conditional-update and claim
/// rules as the SQL one (time is the steady clock).
class FakeProgramStore : public store::ProgramStore {
 public:
  using Clock = std::chrono::steady_clock;

  void insert(const store::NewProgram& program,
              std::chrono::milliseconds expect_within = std::chrono::minutes(1)) override {
    std::lock_guard lock(mutex_);
    if (rows_.count(program.run_id)) throw store::StoreError("duplicate run id");
    Entry entry;
    entry.row.id = static_cast<long long>(rows_.size()) + 1;
    entry.row.run_id = program.run_id;
    entry.row.jobs = program.jobs;
    entry.row.job_data = program.job_data;
    entry.row.program_data = program.program_data;
    entry.row.created_at = entry.row.updated_at = "2026-01-01T00:00:00.000Z";
    entry.until = Clock::now() + expect_within;
    rows_[program.run_id] = entry;
  }
  std::optional<store::ProgramRow> find(const std::string& run_id) override {
    std::lock_guard lock(mutex_);
    if (fail_next_find) {
      fail_next_find = false;
      throw store::StoreError("database is gone");
    }
    auto it = rows_.find(run_id);
    if (it == rows_.end()) return std::nullopt;
    return it->second.row;
  }
  std::optional<store::StepClaim> claim_step(const std::string& run_id, int step,
                                             const std::string& owner,
                                             std::chrono::milliseconds lease) {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end()) return std::nullopt;
    Entry& e = it->second;
    if (e.row.ended() || e.row.step != step) return std::nullopt;
    if (e.row.lease_owner && e.until && *e.until >= Clock::now()) return std::nullopt;
    if (e.row.lease_owner) ++e.row.step_crash_count;
    e.row.lease_owner = owner;
    ++e.row.lease_token;
    e.until = Clock::now() + lease;
    return store::StepClaim{e.row.lease_token, e.row.step_crash_count,
                            e.row.step_isolated_crash_count};
  }
  bool renew(const std::string& run_id, int step, std::int64_t token,
             std::chrono::milliseconds lease) override {
    return update(run_id, step, token, [&](Entry& e) {
      if (!e.row.lease_owner) return false;
      e.until = Clock::now() + lease;
      return true;
    });
  }
  bool release(const std::string& run_id, int step, std::int64_t token,
               std::chrono::milliseconds expect_within,
               const store::AttemptEnding* attempt = nullptr) override {
    return logged(run_id, step, attempt, update(run_id, step, token, [&](Entry& e) {
      e.row.lease_owner.reset();
      e.until = Clock::now() + expect_within;
      return true;
    }));
  }
  bool advance_step(const std::string& run_id, int step, std::int64_t token,
                    std::chrono::milliseconds expect_within) {
    return update(run_id, step, token, [&](Entry& e) {
      ++e.row.step;
      e.row.step_retry_count = 0;
      e.row.step_crash_count = 0;
      e.row.step_isolated_crash_count = 0;
      e.row.lease_owner.reset();
      e.until = Clock::now() + expect_within;
      return true;
    });
  }
  bool finish_step(const std::string& run_id, int step, std::int64_t token) {
    return update(run_id, step, token, [](Entry& e) {
      e.row.finished_at = "now";
      e.ended = Clock::now();
      e.row.step_retry_count = 0;
      e.row.lease_owner.reset();
      e.until.reset();
      return true;
    });
  }
  bool record_retry(const std::string& run_id, int step, std::int64_t token,
                    std::string_view message, std::chrono::milliseconds expect_within,
                    const store::AttemptEnding* attempt = nullptr) override {
    return logged(run_id, step, attempt, update(run_id, step, token, [&](Entry& e) {
      ++e.row.step_retry_count;
      e.row.error_message = std::string(message);
      e.row.lease_owner.reset();
      e.until = Clock::now() + expect_within;
      return true;
    }));
  }
  bool record_isolated_crash(const std::string& run_id, int step, std::int64_t token,
                             std::string_view message,
                             std::chrono::milliseconds expect_within,
                             const store::AttemptEnding* attempt = nullptr) override {
    return logged(run_id, step, attempt, update(run_id, step, token, [&](Entry& e) {
      ++e.row.step_crash_count;
      ++e.row.step_isolated_crash_count;
      e.row.error_message = std::string(message);
      e.row.lease_owner.reset();
      e.until = Clock::now() + expect_within;
      return true;
    }));
  }
  void drop_claim(const std::string& run_id, std::int64_t token, int step = 0,
                  const store::AttemptEnding* attempt = nullptr) override {
    logged(run_id, step, attempt, true);
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end() || it->second.row.lease_token != token) return;
    it->second.row.lease_owner.reset();
    if (it->second.row.ended()) it->second.until.reset();
  }
  bool fail(const std::string& run_id, int step, std::int64_t token,
            std::string_view message, const store::AttemptEnding* attempt = nullptr) override {
    return logged(run_id, step, attempt, update(run_id, step, token, [&](Entry& e) {
      e.row.errored_at = "now";
      e.ended = Clock::now();
      e.row.error_message = std::string(message);
      e.row.lease_owner.reset();
      e.until.reset();
      return true;
    }));
  }
  bool cancel(const std::string& run_id, std::string_view message) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end() || it->second.row.ended()) return false;
    it->second.row.errored_at = it->second.row.cancelled_at = "now";
    it->second.ended = Clock::now();
    it->second.row.error_message = std::string(message);
    it->second.row.lease_owner.reset();
    it->second.until.reset();
    return true;
  }
  nlohmann::json update_job_data(
      const std::string& run_id, const std::string& job_name, std::int64_t token,
      const std::function<nlohmann::json(const nlohmann::json&)>& modify) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end()) throw store::StoreError("no program with run id " + run_id);
    if (it->second.row.lease_token != token) throw store::StoreError("the claim was lost");
    if (it->second.row.ended()) throw store::ProgramEnded("the program was cancelled");
    auto& all = it->second.row.job_data;
    nlohmann::json current = all.contains(job_name) ? all[job_name] : nlohmann::json::object();
    all[job_name] = modify(current);
    return all[job_name];
  }
  std::vector<store::ProgramRow> list(const store::ProgramFilter& filter) override {
    std::lock_guard lock(mutex_);
    std::vector<store::ProgramRow> found;
    for (const auto& [id, e] : rows_) {
      const auto& row = e.row;
      if (filter.job && std::find(row.jobs.begin(), row.jobs.end(), *filter.job) == row.jobs.end()) continue;
      if (filter.state && row.state() != *filter.state) continue;
      if (filter.before_id && row.id >= *filter.before_id) continue;
      found.push_back(row);
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.id > b.id; });
    const auto first = std::min<std::size_t>(static_cast<std::size_t>(filter.offset), found.size());
    const auto last = std::min<std::size_t>(first + static_cast<std::size_t>(filter.limit), found.size());
    return {found.begin() + static_cast<long>(first), found.begin() + static_cast<long>(last)};
  }
  bool resume(const std::string& run_id, int from_step, std::chrono::milliseconds expect_within) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end() || !it->second.row.errored_at || it->second.row.finished_at) return false;
    auto& row = it->second.row;
    row.errored_at.reset();
    row.cancelled_at.reset();
    row.error_message.reset();
    row.step = from_step;
    row.step_retry_count = 0;
    row.step_crash_count = 0;
    row.step_isolated_crash_count = 0;
    row.lease_owner.reset();
    it->second.until = Clock::now() + expect_within;
    return true;
  }
  std::vector<store::StaleProgram> overdue(const store::RecoveryWindow&, int limit) override {
    std::lock_guard lock(mutex_);
    std::vector<store::StaleProgram> found;
    for (auto& [id, e] : rows_) {
      if (static_cast<int>(found.size()) >= limit) break;
      if (!e.row.ended() && e.until && *e.until < Clock::now()) {
        found.push_back({id, e.row.step, e.row.lease_token, e.row.jobs, e.row.program_data});
      }
    }
    return found;
  }
  long long count_abandoned(const store::RecoveryWindow&) override { return 0; }
  bool begin_recovery(const std::string& run_id, int step, std::int64_t token,
                      const store::RecoveryWindow&, std::chrono::milliseconds expect_within) override {
    return update(run_id, step, token, [&](Entry& e) {
      if (!e.until || *e.until >= Clock::now()) return false;
      if (e.row.lease_owner) ++e.row.step_crash_count;
      e.row.lease_owner.reset();
      e.until = Clock::now() + expect_within;
      return true;
    });
  }

  store::ProgramRow row(const std::string& run_id) {
    auto r = find(run_id);
    if (!r) throw std::runtime_error("no row " + run_id);
    return *r;
  }
  /// Makes the row's lease or expected time lie in the past, as after a crash.
  void expire(const std::string& run_id) {
    std::lock_guard lock(mutex_);
    rows_.at(run_id).until = Clock::now() - std::chrono::seconds(1);
  }

  // Counted, then one step at a time (a fake has no transactions).
  std::vector<std::optional<store::StepClaim>> claim_all(
      const std::vector<store::ClaimRequest>& requests, const std::string& owner,
      std::chrono::milliseconds lease) override {
    ++claim_batches;
    std::vector<std::optional<store::StepClaim>> claims;
    for (const store::ClaimRequest& request : requests) {
      claims.push_back(claim_step(request.run_id, request.step, owner, lease));
    }
    return claims;
  }
  // Counted, then the base class's loop over find().
  std::vector<std::optional<store::ProgramRow>> find_all(const std::vector<std::string>& run_ids) override {
    ++read_batches;
    return ProgramStore::find_all(run_ids);
  }
  // Counted as a claim batch; claims through claim_step() where the message's step
  // is the row's, as SqlProgramStore does in one statement.
  std::vector<std::optional<store::ClaimedRow>> claim_unread(
      const std::vector<store::UnreadClaim>& requests, const std::string& owner,
      std::chrono::milliseconds lease) override {
    std::vector<std::optional<store::ClaimedRow>> claimed(requests.size());
    if (!claim_unread_enabled) return claimed;
    ++claim_batches;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const std::optional<store::ProgramRow> row = find(requests[i].run_id);  // may fail (fail_next_find)
      if (!row || !seen.insert(row->run_id).second) continue;
      const int step = static_cast<int>(row->jobs.size()) - requests[i].jobs_left;
      if (row->ended() || row->step != step) continue;
      if (const std::optional<store::StepClaim> taken = claim_step(row->run_id, step, owner, lease)) {
        claimed[i] = store::ClaimedRow{*find(row->run_id), *taken};
        claimed[i]->row.job_data = claimed[i]->row.program_data = nlohmann::json::object();
      }
    }
    return claimed;
  }
  std::vector<bool> commit_all(const std::vector<store::StepCommit>& commits,
                               std::chrono::milliseconds expect_within) override {
    ++commit_batches;
    if (fail_next_commit) {
      fail_next_commit = false;
      throw store::StoreError("database is gone");
    }
    std::vector<bool> matched;
    for (const store::StepCommit& commit : commits) {
      const bool moved = commit.last ? finish_step(commit.run_id, commit.step, commit.token)
                                     : advance_step(commit.run_id, commit.step, commit.token, expect_within);
      matched.push_back(logged(commit.run_id, commit.step,
                               commit.attempt ? &*commit.attempt : nullptr, moved));
    }
    return matched;
  }

  // Deletes ended rows whose end lies more than `ended_more_than` back, lowest id first.
  long long delete_ended(std::chrono::milliseconds ended_more_than, int limit) override {
    std::lock_guard lock(mutex_);
    ++delete_batches;
    std::vector<std::pair<long long, std::string>> ended;  // (id, run id)
    for (const auto& [run_id, e] : rows_) {
      if (e.ended && *e.ended < Clock::now() - ended_more_than) ended.emplace_back(e.row.id, run_id);
    }
    std::sort(ended.begin(), ended.end());
    long long deleted = 0;
    for (const auto& [id, run_id] : ended) {
      if (deleted >= limit) break;
      rows_.erase(run_id);
      ++deleted;
    }
    return deleted;
  }
  bool restart_finished(const std::string& run_id, int from_step,
                        std::chrono::milliseconds expect_within) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end() || !it->second.row.finished_at || it->second.row.errored_at) return false;
    auto& row = it->second.row;
    row.finished_at.reset();
    row.error_message.reset();
    row.step = from_step;
    row.step_retry_count = 0;
    row.step_crash_count = 0;
    row.step_isolated_crash_count = 0;
    row.lease_owner.reset();
    it->second.ended.reset();
    it->second.until = Clock::now() + expect_within;
    return true;
  }

  /// The attempts the store was given with a change that matched, in order
  /// (AttemptRecord without times or token).
  std::vector<store::AttemptRecord> attempts(const std::string& run_id) override {
    std::lock_guard lock(mutex_);
    std::vector<store::AttemptRecord> found;
    for (const store::AttemptRecord& record : attempt_log_) {
      if (record.run_id == run_id) found.push_back(record);
    }
    return found;
  }

  bool fail_next_find = false;  ///< the next read of a row fails (find, or claim_unread)
  bool fail_next_commit = false;
  bool claim_unread_enabled = true;  ///< false: claim_unread claims nothing, as the base class
  int read_batches = 0;
  int claim_batches = 0;
  int commit_batches = 0;
  int delete_batches = 0;  ///< delete_ended calls

 private:
  // Keeps `attempt` when the change it came with matched; returns `matched`.
  bool logged(const std::string& run_id, int step, const store::AttemptEnding* attempt, bool matched) {
    if (attempt == nullptr || !matched) return matched;
    std::lock_guard lock(mutex_);
    store::AttemptRecord record;
    record.id = static_cast<long long>(attempt_log_.size()) + 1;
    record.run_id = run_id;
    record.step = step;
    record.job = attempt->job;
    record.attempt = attempt->attempt;
    record.worker = attempt->worker;
    record.duration_ms = attempt->duration_ms;
    record.outcome = attempt->outcome;
    if (!attempt->error.empty()) record.error = attempt->error;
    if (!attempt->exception_type.empty()) record.exception_type = attempt->exception_type;
    attempt_log_.push_back(std::move(record));
    return matched;
  }
  std::vector<store::AttemptRecord> attempt_log_;

  struct Entry {
    store::ProgramRow row;
    std::optional<Clock::time_point> until;
    std::optional<Clock::time_point> ended;  ///< when finish, fail or cancel ended it
  };

  template <class F>
  bool update(const std::string& run_id, int step, std::int64_t token, F&& change) {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end() || it->second.row.ended() || it->second.row.step != step ||
        it->second.row.lease_token != token) {
      return false;
    }
    return change(it->second);
  }

  std::mutex mutex_;
  std::map<std::string, Entry> rows_;
};

/// Records what would have been published; can be told to fail.
class FakePublisher : public amqp::MessagePublisher {
 public:
  struct Published {
    std::string queue;
    std::string body;
    amqp::PublishProperties properties;
  };
  void publish(const std::string& queue, std::string_view body,
               const amqp::PublishProperties& properties) override {
    if (fail) throw std::runtime_error("broker nacked the message");
    published.push_back({queue, std::string(body), properties});
  }
  void publish_all(const std::vector<amqp::OutgoingMessage>& messages) override {
    ++batches;
    for (const auto& message : messages) publish(message.queue, message.body, message.properties);
  }
  void declare(const amqp::QueueSpec& queue) override {
    if (fail) throw std::runtime_error("broker closed the channel");
    declared.push_back(queue);
  }
  int batches = 0;  ///< publish_all calls
  std::vector<Published> published;
  std::vector<amqp::QueueSpec> declared;
  bool fail = false;
};

}  // namespace program_executor::test
