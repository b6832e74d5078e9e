// In-memory stand-ins for the store and the broker, for unit tests only.
#pragma once

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::test {

/// A ProgramStore over a map, with the same conditional-update rules as the SQL one.
class FakeProgramStore : public store::ProgramStore {
 public:
  void insert(const store::NewProgram& program) override {
    std::lock_guard lock(mutex_);
    if (rows_.count(program.run_id)) throw store::StoreError("duplicate run id");
    store::ProgramRow row;
    row.id = static_cast<long long>(rows_.size()) + 1;
    row.run_id = program.run_id;
    row.jobs = program.jobs;
    row.job_data = program.job_data;
    row.program_data = program.program_data;
    row.created_at = row.updated_at = "2026-01-01T00:00:00.000Z";
    rows_[program.run_id] = row;
  }
  std::optional<store::ProgramRow> find(const std::string& run_id) override {
    std::lock_guard lock(mutex_);
    if (fail_next_find) {
      fail_next_find = false;
      throw store::StoreError("database is gone");
    }
    auto it = rows_.find(run_id);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }
  bool advance(const std::string& run_id, int step) override {
    return update(run_id, step, [](store::ProgramRow& r) {
      ++r.step;
      r.step_retry_count = 0;
    });
  }
  bool finish(const std::string& run_id, int step) override {
    return update(run_id, step, [](store::ProgramRow& r) {
      r.finished_at = "now";
      r.step_retry_count = 0;
    });
  }
  bool record_retry(const std::string& run_id, int step, std::string_view message) override {
    return update(run_id, step, [&](store::ProgramRow& r) {
      ++r.step_retry_count;
      r.error_message = std::string(message);
    });
  }
  bool fail(const std::string& run_id, int step, std::string_view message) override {
    return update(run_id, step, [&](store::ProgramRow& r) {
      r.errored_at = "now";
      r.error_message = std::string(message);
    });
  }
  bool cancel(const std::string& run_id, std::string_view message) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end() || it->second.ended()) return false;
    it->second.errored_at = "now";
    it->second.error_message = std::string(message);
    return true;
  }
  nlohmann::json update_job_data(
      const std::string& run_id, const std::string& job_name,
      const std::function<nlohmann::json(const nlohmann::json&)>& modify) override {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end()) throw store::StoreError("no program with run id " + run_id);
    auto& all = it->second.job_data;
    nlohmann::json current = all.contains(job_name) ? all[job_name] : nlohmann::json::object();
    all[job_name] = modify(current);
    return all[job_name];
  }

  store::ProgramRow row(const std::string& run_id) {
    auto r = find(run_id);
    if (!r) throw std::runtime_error("no row " + run_id);
    return *r;
  }

  bool fail_next_find = false;

 private:
  template <class F>
  bool update(const std::string& run_id, int step, F&& change) {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(run_id);
    if (it == rows_.end() || it->second.ended() || it->second.step != step) return false;
    change(it->second);
    return true;
  }

  std::mutex mutex_;
  std::map<std::string, store::ProgramRow> rows_;
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
  std::vector<Published> published;
  bool fail = false;
};

}  // namespace program_executor::test
