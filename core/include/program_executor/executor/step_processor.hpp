// What happens to one step message: program-executor-js's semantics, made
// crash safe by the step protocol (docs/architecture.md, "The step protocol").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/amqp/message_publisher.hpp"
#include "program_executor/executor/fairness_policy.hpp"
#include "program_executor/executor/job_execution.hpp"
#include "program_executor/executor/job_library.hpp"
#include "program_executor/executor/program_creator.hpp"
#include "program_executor/executor/retry_policy.hpp"
#include "program_executor/executor/step_batch.hpp"
#include "program_executor/executor/step_isolation.hpp"
#include "program_executor/executor/step_message.hpp"
#include "program_executor/executor/step_outcome.hpp"
#include "program_executor/log/logger.hpp"
#include "program_executor/metrics/metrics.hpp"
#include "program_executor/store/program_store.hpp"

namespace program_executor::executor {

struct ProcessorSettings {
  std::string queue;         ///< main queue: next steps go here
  std::string parked_queue;  ///< messages that can never run go here
  bool persistent = true;    ///< publish with delivery_mode 2
  MessageLimits limits;
  /// How long a message that is one step ahead of its row waits for the row
  /// to catch up (program-executor-js workers publish the next step before
  /// they update the row) before it is sent to the retry queue.
  std::chrono::milliseconds early_step_wait{500};
  /// Who claims steps: unique per worker ("host:pid:worker").
  std::string owner = "worker";
  /// A claim's lifetime; it is renewed while the job runs (renew_claim_if_due).
  std::chrono::milliseconds lease{30000};
  /// How long a program may sit without moving before the recovery sweeper
  /// republishes its current step.
  std::chrono::milliseconds stale_after{60000};
  /// Delay of the standard retry queue (`<queue>-retry-1000`), used for
  /// yields and infrastructure errors: the step is expected back after it.
  std::chrono::milliseconds retry_delay{1000};
  /// How retryable errors are retried, per job name.
  RetryPolicies retry{};
  /// Whether the deployment's queues are quorum queues (delay queues match).
  bool quorum = false;
  /// Tells slow jobs (FairnessPolicy::slow_job, on their moving average here):
  /// in a batch, their steps run after the fast ones commit, and all but one
  /// go back to the queue.
  FairnessPolicy fairness{};
  /// After a step crashed this many times running alone in an isolated
  /// process (without isolation: after this many workers died running it),
  /// its program is errored.
  int max_crashes = 3;
};

class StepProcessor {
 public:
  /// `stop_requested` is exposed to jobs (JobContext::stop_requested).
  /// `isolation` runs the steps that have a crash on record (step_isolation.hpp);
  /// without it they run here like any other.
  StepProcessor(store::ProgramStore& store, const JobLibrary& jobs,
                amqp::MessagePublisher& publisher, ProcessorSettings settings,
                const std::atomic<bool>& stop_requested,
                metrics::Metrics& metrics = metrics::no_metrics(),
                StepIsolation* isolation = nullptr);

  /// Processes one delivery body. Never throws: every failure, including
  /// the database's and the broker's, becomes an outcome.
  StepOutcome process(std::string_view body);

  /// Processes a batch of delivery bodies, each with process()'s semantics,
  /// but with one query reading their rows, one claim for all their steps,
  /// one commit for the steps that succeeded, and the next steps published
  /// together (one wait for all their confirms). Steps of fast jobs run (and
  /// commit) first; of the steps of slow jobs (FairnessPolicy::slow_job: a
  /// recent run over 5 ms, or not run yet by this processor) one runs and the
  /// others are handed back (Disposition::requeue). One outcome per body, in
  /// order. Never throws.
  std::vector<StepOutcome> process_all(const std::vector<std::string>& bodies);

  /// Extends the claims of the steps in progress when a third of their lease
  /// has passed. Called from the worker thread while jobs run on the job
  /// thread; thread-safe.
  void renew_claim_if_due();

 private:
  struct Claim {
    std::string run_id;
    int step = 0;
    std::int64_t token = 0;
    std::chrono::steady_clock::time_point renewed;
  };

  /// Claims the steps the messages stand for without reading their rows
  /// first (one statement for the batch): the usual case of a step.
  void claim_unread(StepBatch& batch);
  /// Reads the rows of the parsed messages not claimed yet (one query).
  void read_rows(StepBatch& batch);
  /// Checks a message against its row: an outcome if it is not to be run
  /// (parked, cancelled, early, duplicate), nullopt to claim it.
  std::optional<StepOutcome> examine(BatchStep& step);
  bool slow(const std::string& job) const;
  void run_steps(StepBatch& batch, bool slow_ones);
  void claim_steps(StepBatch& batch);
  /// Runs the job (isolated if the step has a crash on record); nullopt when
  /// it succeeded and the step is to be committed, with the attempt that
  /// commit ends in `committed`.
  std::optional<StepOutcome> run_claimed(const StepMessage& message, const store::ProgramRow& row,
                                         const store::StepClaim& claim,
                                         std::optional<store::AttemptEnding>& committed);
  /// Books how the job ended (retry, yield, failure, crash); nullopt to commit.
  std::optional<StepOutcome> settle(const StepMessage& message, const store::ProgramRow& row,
                                    const store::StepClaim& claim, const JobResult& result,
                                    double ms);
  /// The attempt of `message`'s step at `row` as this worker ends it.
  store::AttemptEnding attempt_ending(const StepMessage& message, const store::ProgramRow& row,
                                      std::string_view outcome, double ms,
                                      const std::string& error = {},
                                      const std::string& exception_type = {}) const;
  /// Ends the program in error at the claimed step, `why` kept in its row,
  /// and has `report` log it; if the row refuses (the step was superseded),
  /// says that instead.
  /// `attempt` is written with it.
  StepOutcome error_program(const StepMessage& message, int step, std::int64_t token,
                            const std::string& why, const store::AttemptEnding& attempt,
                            const std::function<void()>& report);
  /// The same, reported as program.errored at `level` with `text`.
  StepOutcome error_program(const StepMessage& message, int step, std::int64_t token,
                            const std::string& why, const store::AttemptEnding& attempt,
                            log::Level level, std::string_view text);
  /// The row refused the step's outcome: drops the claim and says why; the
  /// attempt (when given) is written with the drop as `cancelled` (the
  /// program was cancelled) or `stale` (taken over, or moved on without it).
  StepOutcome superseded(const StepMessage& message, int step, std::int64_t token,
                         const store::AttemptEnding* attempt);
  void commit_steps(StepBatch& batch);
  /// Releases the claim of any step that ended the batch without an outcome.
  void release_unrun(StepBatch& batch);
  /// The outcome of a copy of a step someone holds: dropped.
  StepOutcome busy(const BatchStep& step);
  StepOutcome infrastructure_error(BatchStep& step, const std::string& what);
  StepOutcome park(std::string_view body, const std::string& reason);
  StepOutcome schedule_retry(const StepMessage& message, std::chrono::milliseconds delay);
  void hold(const std::string& run_id, int step, std::int64_t token);
  /// The step of `run_id` ended here: its claim is renewed no more.
  void unhold(const std::string& run_id);
  void drop_holds();
  /// Logs why a renewal failed (a cancel, a takeover, a worker without claims).
  void explain_lost_claim(const Claim& claim);
  /// Counts a delivery's outcome in the metrics.
  void count(const StepOutcome& outcome);

  store::ProgramStore& store_;
  const JobLibrary& jobs_;
  amqp::MessagePublisher& publisher_;
  ProcessorSettings settings_;
  const std::atomic<bool>& stop_requested_;
  metrics::Metrics& metrics_;
  StepIsolation* isolation_;
  ProgramCreator creator_;
  std::mutex claim_mutex_;
  std::vector<Claim> claims_;  ///< the steps in progress, for renewal
  std::set<long long> declared_delays_;  ///< delay queues declared by this processor (ms)
  /// Recent run time per job name (ms, moving average), to tell slow jobs.
  std::map<std::string, double> job_ms_;
};

}  // namespace program_executor::executor
