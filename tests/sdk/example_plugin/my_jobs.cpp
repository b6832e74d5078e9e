// A plugin with one job, example.greet: it stores a greeting for the program
// data's "name" in its job data and logs it.
#include <string>

#include <program_executor/sdk/sdk.hpp>

namespace {

namespace sdk = program_executor::sdk;

class GreetJob final : public sdk::Job {
 public:
  // One object per step execution, created from the program data.
  explicit GreetJob(const nlohmann::json& program_data)
      : name_(program_data.value("name", "")) {}

  void execute(const nlohmann::json& /*message*/, sdk::JobDataHandler& job_data,
               sdk::JobContext& context) override {
    if (name_.empty()) {
      // Nothing to do for this program: end it without an error-level log.
      throw sdk::IgnorableError("example.greet: the program data has no \"name\"");
    }
    if (context.stop_requested()) {
      // The daemon is shutting down: run this step again later.
      throw sdk::RetryableError("example.greet: shutting down");
    }
    // Saved at once, and the same on every run: the step may run more than once.
    job_data.merge({{"greeting", "Hello, " + name_ + "!"}});
    context.log(sdk::LogLevel::info, "greeted " + name_);
  }

 private:
  std::string name_;
};

void register_jobs(sdk::Registrar& registrar) {
  sdk::add_job<GreetJob>(registrar, "example.greet");
}

}  // namespace

PROGRAM_EXECUTOR_PLUGIN(register_jobs)
