// Structured logging: stable event names with typed fields, as text or JSON lines.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace program_executor::log {

enum class Level { trace, debug, info, warn, error, off };
enum class Format { text, json };

/// One key/value of a log event. Values are copied only when the event is
/// actually written, so a disabled level costs one comparison.
struct Field {
  using Value = std::variant<std::string_view, std::int64_t, double, bool>;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, int v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, long v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, long long v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, unsigned long v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, unsigned long long v) : key(k), value(static_cast<std::int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  std::string_view key;
  Value value;
};

/// Where log lines go: the daemon writes to stdout (journald reads it under
/// systemd); the command-line tools to stderr, keeping stdout for results.
enum class Destination { standard_output, standard_error };

/// Sets the process-wide level, format and destination (stderr until called).
void configure(Level level, Format format, Destination destination = Destination::standard_error);

/// Parses "trace|debug|info|warn|error|off"; throws std::invalid_argument otherwise.
Level parse_level(std::string_view name);
/// Parses "text|json"; throws std::invalid_argument otherwise.
Format parse_format(std::string_view name);

/// True when events at `level` are written.
bool enabled(Level level) noexcept;

/// Writes one event: `event` is a stable dotted name (job.started), `message`
/// free text for humans (may be empty), `fields` the structured context.
void event(Level level, std::string_view event, std::string_view message,
           std::initializer_list<Field> fields = {});

/// Renders an event as one line without writing it (used by the writer; tested).
std::string render(Format format, Level level, std::string_view event, std::string_view message,
                   std::initializer_list<Field> fields);

}  // namespace program_executor::log
