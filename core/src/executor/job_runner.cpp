#include "program_executor/executor/job_runner.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace program_executor::executor {

JobRunner::JobRunner(Process process, std::size_t max_batch, FairnessPolicy fairness)
    : process_(std::move(process)),
      max_batch_(std::max<std::size_t>(max_batch, 1)),
      fairness_(fairness) {
  wakeup_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeup_fd_ < 0) {
    throw std::runtime_error(std::string("creating the job runner's eventfd: ") +
                             std::strerror(errno));
  }
  thread_ = std::thread([this] { loop(); });
}

JobRunner::~JobRunner() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  changed_.notify_all();
  thread_.join();
  ::close(wakeup_fd_);
}

void JobRunner::submit(std::uint64_t delivery_tag, std::string body) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Queued{delivery_tag, std::move(body)});
  }
  changed_.notify_all();
}

std::vector<JobRunner::Finished> JobRunner::take_finished() {
  std::vector<Finished> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(finished_);
    std::uint64_t count = 0;
    // Reset the eventfd under the lock, so a later outcome sets it again.
    while (::read(wakeup_fd_, &count, sizeof count) > 0) {
    }
  }
  return taken;
}

std::vector<std::uint64_t> JobRunner::take_unstarted() {
  std::lock_guard lock(mutex_);
  std::vector<std::uint64_t> tags;
  for (const Queued& queued : queue_) tags.push_back(queued.delivery_tag);
  queue_.clear();
  return tags;
}

bool JobRunner::idle() const {
  std::lock_guard lock(mutex_);
  return !busy_ && queue_.empty();
}

std::size_t JobRunner::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

bool JobRunner::running(std::chrono::steady_clock::time_point* since) const {
  std::lock_guard lock(mutex_);
  if (busy_ && since != nullptr) *since = busy_since_;
  return busy_;
}

void JobRunner::wait_idle() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return !busy_ && queue_.empty(); });
}

void JobRunner::loop() {
  // Steps whose jobs take longer than batching is worth run one at a time
  // (FairnessPolicy::batch_limit).
  std::size_t limit = max_batch_;
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return quit_ || !queue_.empty(); });
    if (quit_) return;
    std::vector<std::uint64_t> tags;
    std::vector<std::string> bodies;
    while (!queue_.empty() && bodies.size() < limit) {
      tags.push_back(queue_.front().delivery_tag);
      bodies.push_back(std::move(queue_.front().body));
      queue_.pop_front();
    }
    busy_ = true;
    busy_since_ = std::chrono::steady_clock::now();
    lock.unlock();
    std::vector<StepOutcome> outcomes;
    try {
      outcomes = process_(bodies);
    } catch (...) {
      // StepProcessor::process_all never throws; this guards a Process that might.
    }
    outcomes.resize(bodies.size(), StepOutcome{Disposition::retry, StepEvent::step_runner_error});
    const auto per_step = (std::chrono::steady_clock::now() - busy_since_) / bodies.size();
    limit = fairness_.batch_limit(per_step, max_batch_);
    lock.lock();
    for (std::size_t i = 0; i < tags.size(); ++i) {
      finished_.emplace_back(tags[i], std::move(outcomes[i]));
    }
    busy_ = false;
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = ::write(wakeup_fd_, &one, sizeof one);
    changed_.notify_all();
  }
}

}  // namespace program_executor::executor
