#include "program_executor/executor/program_creator.hpp"

#include <chrono>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "program_executor/executor/step_publishing.hpp"
#include "program_executor/log/logger.hpp"

namespace program_executor::executor {

std::string new_run_id() {
  thread_local std::mt19937_64 generator{[] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }()};
  // Version 7 (RFC 9562): the first 48 bits are the Unix time in
  // milliseconds, the rest random. Run ids created near one another sort
  // near one another, so the indexes keyed by run id (the programs table's
  // unique one, the attempts') take a batch's entries on a few pages instead
  // of a page each.
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::uint64_t high = (static_cast<std::uint64_t>(now) << 16) | (generator() & 0x0FFFULL) |
                       0x7000ULL;  // version 7
  std::uint64_t low = generator();
  low = (low & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 9562 variant
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", high >> 32, (high >> 16) & 0xFFFF,
                     high & 0xFFFF, low >> 48, low & 0xFFFFFFFFFFFFULL);
}

ProgramCreator::ProgramCreator(store::ProgramStore& store, amqp::MessagePublisher& publisher,
                               std::string queue, bool persistent, metrics::Metrics& metrics,
                               std::chrono::milliseconds expect_within)
    : store_(store),
      publisher_(publisher),
      queue_(std::move(queue)),
      persistent_(persistent),
      metrics_(metrics),
      expect_within_(expect_within) {}

std::string ProgramCreator::create(const sdk::ProgramRequest& request) {
  if (request.jobs.empty()) throw std::invalid_argument("a program needs at least one job");
  for (const auto& job : request.jobs) {
    if (job.empty()) throw std::invalid_argument("a job name is empty");
  }
  if (!request.program_data.is_object()) {
    throw std::invalid_argument("program data must be a JSON object");
  }
  if (!request.job_data.is_object()) {
    throw std::invalid_argument("job data must be a JSON object keyed by job name");
  }
  const std::string run_id = new_run_id();
  store_.insert(store::NewProgram{run_id, request.jobs, request.program_data, request.job_data},
                expect_within_);
  try {
    publish_step(publisher_, queue_, persistent_, run_id, request.jobs, 0, request.program_data);
  } catch (const std::exception& e) {
    // The row exists but its first message does not: end it visibly rather
    // than leave a program that waits forever (the original's orphan rows).
    const std::string why = std::string("could not publish the first step: ") + e.what();
    try {
      // Errored (not cancelled: nobody cancelled it) while no worker holds
      // it, the usual case; should a worker have claimed it (the broker took
      // the message but its confirm was lost), cancel ends it all the same.
      if (!store_.fail(run_id, 0, 0, why)) store_.cancel(run_id, why);
    } catch (const std::exception& nested) {
      log::event(log::Level::error, "program.orphaned", nested.what(), {{"run_id", run_id}});
    }
    throw;
  }
  metrics_.program_created();
  log::event(log::Level::info, "program.created", "",
             {{"run_id", run_id}, {"jobs", static_cast<long long>(request.jobs.size())},
              {"first_job", request.jobs.front()}});
  return run_id;
}

}  // namespace program_executor::executor
