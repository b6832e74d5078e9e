#include "program_executor/log/logger.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace program_executor::log {
namespace {

std::atomic<Level> current_level{Level::info};
std::atomic<Format> current_format{Format::text};
std::atomic<Destination> current_destination{Destination::standard_error};

const char* level_name(Level level) {
  switch (level) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::off: return "off";
  }
  return "info";
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    case Level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

// Text values are quoted only when they would otherwise be ambiguous.
void append_text_value(std::string& out, std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += value;
  } else {
    out += nlohmann::json(std::string(value)).dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
  }
}

std::string timestamp_utc() {
  const auto now = std::chrono::system_clock::now();
  const auto seconds = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - seconds).count();
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", seconds, millis);
}

// Our own renderer builds the whole line; spdlog only writes it to stderr,
// one line at a time from any thread. Created on first use, so events logged
// before configure() (in tests, say) look the same.
std::shared_ptr<spdlog::logger> make_writer(spdlog::sink_ptr sink) {
  auto created = std::make_shared<spdlog::logger>("program-executor", std::move(sink));
  created->set_pattern("%v");
  created->set_level(spdlog::level::trace);
  created->flush_on(spdlog::level::trace);
  return created;
}

spdlog::logger& writer() {
  static const auto to_stdout = make_writer(std::make_shared<spdlog::sinks::stdout_sink_mt>());
  static const auto to_stderr = make_writer(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  return current_destination.load(std::memory_order_relaxed) == Destination::standard_output
             ? *to_stdout
             : *to_stderr;
}

}  // namespace

void configure(Level level, Format format, Destination destination) {
  current_level = level;
  current_format = format;
  current_destination = destination;
}

Level parse_level(std::string_view name) {
  for (Level l : {Level::trace, Level::debug, Level::info, Level::warn, Level::error, Level::off}) {
    if (name == level_name(l)) return l;
  }
  throw std::invalid_argument("unknown log level '" + std::string(name) +
                              "' (expected trace, debug, info, warn, error or off)");
}

Format parse_format(std::string_view name) {
  if (name == "text") return Format::text;
  if (name == "json") return Format::json;
  throw std::invalid_argument("unknown log format '" + std::string(name) +
                              "' (expected text or json)");
}

bool enabled(Level level) noexcept {
  return level != Level::off && level >= current_level.load(std::memory_order_relaxed);
}

std::string render(Format format, Level level, std::string_view event, std::string_view message,
                   std::initializer_list<Field> fields) {
  if (format == Format::json) {
    nlohmann::json line = nlohmann::json::object();
    line["ts"] = timestamp_utc();
    line["level"] = level_name(level);
    line["event"] = std::string(event);
    if (!message.empty()) line["message"] = std::string(message);
    for (const Field& f : fields) {
      std::visit([&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          line[std::string(f.key)] = std::string(v);
        } else {
          line[std::string(f.key)] = v;
        }
      }, f.value);
    }
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = timestamp_utc();
  out += ' ';
  out += level_name(level);
  out += ' ';
  out += event;
  for (const Field& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    std::visit([&](const auto& v) {
      using T = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<T, std::string_view>) {
        append_text_value(out, v);
      } else if constexpr (std::is_same_v<T, bool>) {
        out += v ? "true" : "false";
      } else {
        out += fmt::to_string(v);
      }
    }, f.value);
  }
  if (!message.empty()) {
    out += " message=";
    append_text_value(out, message);
  }
  return out;
}

void event(Level level, std::string_view event, std::string_view message,
           std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  const std::string line = render(current_format.load(std::memory_order_relaxed), level, event,
                                  message, fields);
  writer().log(to_spdlog(level), line);
}

}  // namespace program_executor::log
