#include "cli_errors.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "program_executor/amqp/amqp_error.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/plugin/plugin_loader.hpp"
#include "program_executor/store/program_store.hpp"
#include "sqlite_file.hpp"

namespace program_executor::daemon {
namespace {

bool json_mode = false;

}  // namespace

void set_json_errors(bool json) noexcept { json_mode = json; }
bool json_errors() noexcept { return json_mode; }

int fail(const char* code, const std::string& message) {
  if (json_mode) {
    // nlohmann refuses invalid UTF-8 by throwing; replace instead (a path
    // or a broker's text may be anything).
    std::cout << nlohmann::json{{"error", code}, {"message", message}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cerr << "program-executor: error: " << message << "\n";
  }
  return std::string_view(code) == error_code::usage ? exit_usage : exit_failure;
}

int fail(const std::string& message) { return fail(error_code::failed, message); }

const char* code_of(const std::exception& error) noexcept {
  if (const auto* own = dynamic_cast<const CommandError*>(&error)) return own->code();
  if (dynamic_cast<const config::ConfigError*>(&error) != nullptr) return error_code::config;
  if (dynamic_cast<const store::StoreError*>(&error) != nullptr) return error_code::database;
  if (dynamic_cast<const amqp::AmqpError*>(&error) != nullptr) return error_code::broker;
  if (dynamic_cast<const plugin::PluginLoadError*>(&error) != nullptr) return error_code::plugin;
  if (dynamic_cast<const std::invalid_argument*>(&error) != nullptr) {
    return error_code::invalid_argument;
  }
  return error_code::failed;
}

std::string message_of(const std::exception& error) {
  if (dynamic_cast<const store::StoreError*>(&error) != nullptr &&
      !noted_database_file().empty()) {
    return explain_sqlite_error(error.what(), noted_database_file());
  }
  return error.what();
}

int fail_usage(CLI::App& app, const CLI::ParseError& error) {
  // --help and --version are "errors" with exit code 0 to CLI11.
  if (error.get_exit_code() == 0) return app.exit(error);
  std::string message = error.what();
  if (!json_mode) message += " (run with --help for the usage)";
  return fail(error_code::usage, message);
}

}  // namespace program_executor::daemon
