// How a plugin tells the daemon which jobs it provides.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "program_executor/sdk/abi.hpp"
#include "program_executor/sdk/job.hpp"

namespace program_executor::sdk {

/// Creates a job object from the program data of the program being run.
using JobFactory = std::function<std::unique_ptr<Job>(const nlohmann::json& program_data)>;

/// Collects the jobs of one plugin while it registers.
class Registrar {
 public:
  /// Adds a job under `name`, which must be unique across every loaded plugin.
  virtual void add_job(const std::string& name, JobFactory factory) = 0;

 protected:
  ~Registrar() = default;
};

/// Registers job class `T`, constructed as `T(program_data)`, under `name`.
template <class T>
void add_job(Registrar& registrar, const std::string& name) {
  registrar.add_job(name, [](const nlohmann::json& program_data) -> std::unique_ptr<Job> {
    return std::make_unique<T>(program_data);
  });
}

}  // namespace program_executor::sdk

/// Exports a plugin: its ABI description and its registration function
/// `void register_function(program_executor::sdk::Registrar&)`. Use it once,
/// in one source file of the plugin, at global scope.
#define PROGRAM_EXECUTOR_PLUGIN(register_function)                                    \
  extern "C" PROGRAM_EXECUTOR_EXPORT const ::program_executor::sdk::AbiInfo*          \
  program_executor_abi() {                                                             \
    static constexpr ::program_executor::sdk::AbiInfo info =                           \
        ::program_executor::sdk::current_abi();                                        \
    return &info;                                                                      \
  }                                                                                    \
  extern "C" PROGRAM_EXECUTOR_EXPORT void program_executor_register(                  \
      ::program_executor::sdk::Registrar& registrar) {                                 \
    register_function(registrar);                                                      \
  }
