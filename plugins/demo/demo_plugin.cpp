// The demo plugin's single export: its job names, each mapped to its class.
#include "demo_jobs.hpp"

namespace program_executor::demo {
namespace {

void register_jobs(sdk::Registrar& registrar) {
  sdk::add_job<SleepJob>(registrar, "demo.sleep");
  sdk::add_job<NoopJob>(registrar, "demo.noop");
  sdk::add_job<LogJob>(registrar, "demo.log");
  sdk::add_job<CountJob>(registrar, "demo.count");
  sdk::add_job<FailJob>(registrar, "demo.fail");
  sdk::add_job<FlakyJob>(registrar, "demo.flaky");
  sdk::add_job<IgnorableJob>(registrar, "demo.ignorable");
  sdk::add_job<PaginateJob>(registrar, "demo.paginate");
  sdk::add_job<SpawnJob>(registrar, "demo.spawn");
}

}  // namespace
}  // namespace program_executor::demo

PROGRAM_EXECUTOR_PLUGIN(program_executor::demo::register_jobs)
