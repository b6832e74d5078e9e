#include <chrono>
#include <string>

#include "demo_jobs.hpp"
#include "parameters.hpp"

namespace program_executor::demo {

PaginateJob::PaginateJob(const nlohmann::json&) {}

void PaginateJob::execute(const nlohmann::json&, sdk::JobDataHandler& job_data,
                          sdk::JobContext& context) {
  const nlohmann::json data = job_data.get();
  const std::int64_t pages = count_parameter(data, "demo.paginate", "pages", 3);
  const std::chrono::milliseconds page_time{
      count_parameter(data, "demo.paginate", "page_ms", 100)};
  const std::chrono::milliseconds max_execution_time{
      count_parameter(data, "demo.paginate", "max_execution_ms", 0)};

  // `page` is the number of pages already done: an earlier execution that
  // yielded (or crashed) left it there, and the work resumes after it.
  for (std::int64_t page = count_parameter(data, "demo.paginate", "page", 0); page < pages;
       ++page) {
    if (!sleep_unless_stopped(page_time, context)) {
      throw sdk::RetryableError("demo.paginate interrupted by shutdown at page " +
                                std::to_string(page + 1) + " of " + std::to_string(pages));
    }
    // Saves the page just finished, then throws ExecutionTimeExceeded if over
    // the limit; it must propagate so the daemon re-queues the step. After the
    // last page there is nothing left to yield for: no limit, so a late last
    // page finishes the step instead of costing one more empty execution.
    const bool last = page + 1 == pages;
    job_data.checkpoint({{"page", page + 1}},
                        last ? std::chrono::milliseconds::zero() : max_execution_time);
  }
}

}  // namespace program_executor::demo
