// The one declarative description of every configuration key: the validator
// checks the file against it, the loader fills Config through it and the
// configuration reference is generated from it.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "program_executor/config/config.hpp"

namespace program_executor::config {

enum class ValueType {
  string,
  boolean,
  integer,     ///< within [min, max]
  choice,      ///< one of `choices`
  queue_name,  ///< RabbitMQ queue name: [A-Za-z0-9_.:-], 1..200 characters
  sql_identifier,  ///< [A-Za-z_][A-Za-z0-9_]*, at most 63 characters
  path,        ///< a file or directory path (not checked for existence here)
  amqp_url,    ///< a string starting with amqp:// or amqps://
};

/// The Config member a key fills, as Fluent Bit's config_map names the
/// structure offset of each key. Built by member<...> in core/src/config/member.hpp.
struct Member {
  /// Writes the key's validated value (its normalized text, see load_values)
  /// into the member; `name` is the name bound to the key's "*" segment, empty
  /// for a key without one.
  void (*fill)(Config& config, std::string_view name, const std::string& value) = nullptr;
  /// The member's value as YAML text; null for a key with no default of its
  /// own (a per-job key inherits the global one).
  std::string (*read)(const Config& config) = nullptr;
};

/// The most items a list key takes: a broker cluster has a handful of nodes,
/// and a bound keeps a hostile file from making the loader try thousands.
inline constexpr int max_list_items = 16;

struct KeySpec {
  /// Dotted key path, e.g. "amqp.url". A segment "*" matches any name the
  /// file gives (retry.jobs.*.max_attempts); such values are keyed by the
  /// bound path "retry.jobs[<name>].max_attempts".
  std::string_view path;
  ValueType type;
  /// A YAML sequence of 1 to max_list_items values, each a scalar of `type`
  /// (amqp.urls). Its value, for the loader and `member`, is the items joined
  /// by '\n', which the validator lets no item hold; the file's items are
  /// addressed as "<path>[<index>]" (0-based) in errors and GivenValue.
  bool list = false;
  /// Where load_string() puts the value; tables that are only validated
  /// (load_values) leave it empty.
  Member member = {};
  /// As YAML text; empty with required=false means "unset". schema() reads it
  /// from a default Config through `member`, unless the entry gives one.
  std::string default_value = {};
  bool required = false;
  std::string_view help;
  std::vector<std::string_view> choices = {};  ///< for ValueType::choice
  long long min = 0;               ///< for ValueType::integer
  long long max = 0;
  bool secret = false;             ///< never printed back (passwords in URLs)
  /// Markdown shown in the reference instead of default_value, for a default that
  /// depends on the build (the reference must read the same for every build).
  std::string_view documented_default = {};
};

/// Every key, in the order they are documented.
const std::vector<KeySpec>& schema();

/// The configuration reference as a Markdown table (docs/configuration.md embeds it).
std::string schema_markdown();

/// Parses `yaml` and validates it against `keys` (environment references expanded);
/// returns each key's value by dotted path: booleans as "true"/"false", integers in
/// decimal, a list key's items joined by '\n', keys without a value (absent, empty
/// default) left out. Throws ConfigError.
/// load_string() is this against schema(); it takes other tables for the tests.
std::map<std::string, std::string, std::less<>> load_values(std::string_view yaml,
                                                            std::string_view source_name,
                                                            const std::vector<KeySpec>& keys);

/// A key as the file gives it, for checks that come after validation (reading
/// a file the key names, a rule between two keys) and need to point at it.
/// A list key is recorded under its path at the sequence (`raw` its items'
/// raw texts joined by '\n'), even when an item is left unresolved (a rule
/// between keys must still see that the file gives it), and each resolved item
/// under "<path>[<index>]".
struct GivenValue {
  std::string raw;  ///< the scalar as written, before ${NAME} expansion
  int line = 1;     ///< 1-based position of the value
  int column = 1;
};

/// load_values(), also filling `given` with every key the file sets.
std::map<std::string, std::string, std::less<>> load_values(
    std::string_view yaml, std::string_view source_name, const std::vector<KeySpec>& keys,
    std::map<std::string, GivenValue, std::less<>>& given);

/// load_values() with `given`, where an unresolvable ${NAME} in a key listed
/// in `deferred` (in any item of a list key) is no error: the key is left unset
/// and listed once in `unresolved`.
std::map<std::string, std::string, std::less<>> load_values(
    std::string_view yaml, std::string_view source_name, const std::vector<KeySpec>& keys,
    std::map<std::string, GivenValue, std::less<>>& given, const std::vector<std::string>& deferred,
    std::vector<std::string>& unresolved);

}  // namespace program_executor::config
