// The thread that runs a worker's steps, a batch at a time.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "program_executor/executor/fairness_policy.hpp"
#include "program_executor/executor/step_outcome.hpp"

namespace program_executor::executor {

/// Runs steps on its own thread so the worker thread can keep its broker
/// connection alive while jobs run. The worker queues deliveries with
/// submit(); whenever the runner is free it takes everything queued (up to
/// `max_batch`) as one batch for `process`, so under load several steps share
/// one claim and one commit, while a lone step starts at once; after a batch
/// that was slow per step (FairnessPolicy::batch_limit) steps run one at a
/// time. Finished outcomes wait in take_finished(); wakeup_fd() becomes
/// readable when there are some, so the worker can wait for them and for its
/// socket together.
class JobRunner {
 public:
  using Process = std::function<std::vector<StepOutcome>(const std::vector<std::string>& bodies)>;
  /// A delivery's outcome, by its delivery tag.
  using Finished = std::pair<std::uint64_t, StepOutcome>;

  JobRunner(Process process, std::size_t max_batch, FairnessPolicy fairness = {});
  /// Waits for the batch in progress, then stops the thread. Deliveries still
  /// queued are not run.
  ~JobRunner();
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  /// Queues a delivery to run.
  void submit(std::uint64_t delivery_tag, std::string body);
  /// Outcomes of the deliveries that finished since the last call, in order.
  std::vector<Finished> take_finished();
  /// Removes the queued deliveries that have not started and returns their
  /// tags (to hand them back to the broker).
  std::vector<std::uint64_t> take_unstarted();
  /// Nothing queued, nothing running (finished outcomes may still wait).
  bool idle() const;
  /// How many deliveries are queued and not started.
  std::size_t queued() const;
  /// Whether a batch is running, and since when (steady clock).
  bool running(std::chrono::steady_clock::time_point* since = nullptr) const;
  /// Blocks until no batch runs and nothing is queued.
  void wait_idle();
  /// Readable (eventfd) while finished outcomes wait to be taken.
  int wakeup_fd() const noexcept { return wakeup_fd_; }

 private:
  struct Queued {
    std::uint64_t delivery_tag;
    std::string body;
  };
  void loop();

  Process process_;
  std::size_t max_batch_;
  FairnessPolicy fairness_;
  int wakeup_fd_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Queued> queue_;
  std::vector<Finished> finished_;
  bool busy_ = false;
  std::chrono::steady_clock::time_point busy_since_{};
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace program_executor::executor
