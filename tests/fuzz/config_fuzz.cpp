// The configuration loader on arbitrary text: YAML syntax, nesting, aliases,
// duplicate keys, ${NAME} references and every key's validation. It must
// throw ConfigError (with the file:line:column: prefix) or return a Config
// within the schema's limits.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "program_executor/config/config.hpp"

namespace config = program_executor::config;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  config::Config loaded;
  try {
    loaded = config::load_string(yaml, "fuzz.yaml");
  } catch (const config::ConfigError& error) {
    const std::string_view what = error.what();
    require(what.substr(0, 10) == "fuzz.yaml:");
    return 0;
  }
  require(loaded.workers >= 1 && loaded.workers <= 256);
  require(loaded.amqp.prefetch >= 1 && loaded.amqp.prefetch <= 1000);
  require(loaded.amqp.heartbeat_seconds >= 0 && loaded.amqp.heartbeat_seconds <= 3600);
  require(loaded.shutdown_grace.count() >= 0 && loaded.shutdown_grace.count() <= 86400);
  require(loaded.amqp.url.rfind("amqp://", 0) == 0 || loaded.amqp.url.rfind("amqps://", 0) == 0);
  require(!loaded.amqp.queue.empty() && loaded.amqp.queue.size() <= 200);
  require(!loaded.database.table.empty() && loaded.database.table.size() <= 63);
  return 0;
}
