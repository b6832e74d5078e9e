// How a schema key reaches the Config member it describes (private to the
// config module). member<&Config::amqp, &AmqpSettings::url> names the member
// by its path of pointers to members and gives the loader the function that
// writes the key's validated text into it, and the schema the one that reads
// the member's default back as text; the member's type picks the conversion.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "program_executor/config/config.hpp"
#include "program_executor/config/schema.hpp"

namespace program_executor::config {

/// How the file spells one value of an enum a key chooses.
template <typename Enum>
struct ChoiceName {
  std::string_view text;
  Enum value;
};

/// The spellings of each choice enum, specialized below: the schema lists them
/// as the key's choices and the loader parses them, so they are written once.
template <typename Enum>
struct Choices;

template <>
struct Choices<QueueType> {
  static constexpr ChoiceName<QueueType> names[] = {{"classic", QueueType::classic},
                                                    {"quorum", QueueType::quorum}};
};

template <>
struct Choices<DatabaseBackend> {
  static constexpr ChoiceName<DatabaseBackend> names[] = {
      {to_string(DatabaseBackend::sqlite3), DatabaseBackend::sqlite3},
      {to_string(DatabaseBackend::postgresql), DatabaseBackend::postgresql},
      {to_string(DatabaseBackend::mysql), DatabaseBackend::mysql},
      {to_string(DatabaseBackend::odbc), DatabaseBackend::odbc}};
};

template <>
struct Choices<Backoff> {
  static constexpr ChoiceName<Backoff> names[] = {{"fixed", Backoff::fixed},
                                                  {"exponential", Backoff::exponential}};
};

template <>
struct Choices<log::Level> {
  static constexpr ChoiceName<log::Level> names[] = {
      {"trace", log::Level::trace}, {"debug", log::Level::debug}, {"info", log::Level::info},
      {"warn", log::Level::warn},   {"error", log::Level::error}, {"off", log::Level::off}};
};

template <>
struct Choices<log::Format> {
  static constexpr ChoiceName<log::Format> names[] = {{"text", log::Format::text},
                                                      {"json", log::Format::json}};
};

/// The choices of a KeySpec whose member is an `Enum`.
template <typename Enum>
std::vector<std::string_view> choices_of() {
  std::vector<std::string_view> texts;
  for (const auto& choice : Choices<Enum>::names) texts.push_back(choice.text);
  return texts;
}

// The value was validated against its key (and normalized: booleans
// "true"/"false", integers in decimal within the key's bounds, a choice one of
// its names), so these conversions cannot fail.
inline void from_text(const std::string& text, std::string& target) { target = text; }

/// A list key's items, joined by '\n' (see KeySpec::list); "" is no item.
inline void from_text(const std::string& text, std::vector<std::string>& target) {
  target.clear();
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    target.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

inline void from_text(const std::string& text, bool& target) { target = text == "true"; }

inline void from_text(const std::string& text, int& target) {
  std::from_chars(text.data(), text.data() + text.size(), target);
}

/// A duration in the unit the key names (recovery.lease_seconds, recovery.max_age_hours).
template <typename Rep, typename Period>
void from_text(const std::string& text, std::chrono::duration<Rep, Period>& target) {
  Rep count = 0;
  std::from_chars(text.data(), text.data() + text.size(), count);
  target = std::chrono::duration<Rep, Period>(count);
}

template <typename Enum>
  requires std::is_enum_v<Enum>
void from_text(const std::string& text, Enum& target) {
  for (const auto& choice : Choices<Enum>::names) {
    if (choice.text == text) target = choice.value;
  }
}

inline std::string to_text(const std::string& value) { return value; }

inline std::string to_text(const std::vector<std::string>& items) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) text += '\n';
    text += items[i];
  }
  return text;
}

inline std::string to_text(bool value) { return value ? "true" : "false"; }

inline std::string to_text(int value) { return std::to_string(value); }

template <typename Rep, typename Period>
std::string to_text(std::chrono::duration<Rep, Period> value) {
  return std::to_string(value.count());
}

template <typename Enum>
  requires std::is_enum_v<Enum>
std::string to_text(Enum value) {
  for (const auto& choice : Choices<Enum>::names) {
    if (choice.value == value) return std::string(choice.text);
  }
  return {};  // every enumerator has a name (config_schema_test)
}

/// object.*First.*Rest...: the member at the end of a path of pointers to members.
template <auto First, auto... Rest, typename Object>
auto& member_at(Object& object) {
  if constexpr (sizeof...(Rest) == 0) {
    return object.*First;
  } else {
    return member_at<Rest...>(object.*First);
  }
}

/// The member of Config at `Path`, e.g. member<&Config::workers>.
template <auto... Path>
inline constexpr Member member = {
    [](Config& config, std::string_view, const std::string& value) {
      from_text(value, member_at<Path...>(config));
    },
    [](const Config& config) { return to_text(member_at<Path...>(config)); }};

/// The member `Field` of the retry policy of the job bound to retry.jobs.*.
/// A job's policy starts as a copy of the defaults (retry.*), which the
/// loader fills before any key with a "*"; it has no default of its own.
template <auto Field>
inline constexpr Member retry_job_member = {
    [](Config& config, std::string_view job, const std::string& value) {
      auto& policy =
          config.retry.jobs.try_emplace(std::string(job), config.retry.defaults).first->second;
      from_text(value, policy.*Field);
    },
    nullptr};

}  // namespace program_executor::config
