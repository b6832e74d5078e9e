// Validation of a YAML document against a schema table. Every problem becomes
// one ConfigError "<file>:<line>:<column>: <key.path>: <problem>", pointing at
// the offending node so an operator can jump straight to it.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "program_executor/config/amqp_url.hpp"
#include "program_executor/config/config.hpp"
#include "program_executor/config/job_name.hpp"
#include "program_executor/config/schema.hpp"

namespace program_executor::config {
namespace {

// Far beyond the 3 levels the schema uses, far below what would threaten the
// stack: hostile input gets a clear error instead.
constexpr int max_depth = 32;
// Aliases let a small file reference the same subtree exponentially often
// ("billion laughs"); bound the work of walking it.
constexpr int max_nodes = 10000;

constexpr std::string_view top_level = "(top level)";

using Values = std::map<std::string, std::string, std::less<>>;

// One level of the schema tree implied by the dotted paths.
struct SchemaNode {
  std::string name;
  std::string path;
  const KeySpec* spec = nullptr;  // set for leaves only
  std::vector<SchemaNode> children;
};

SchemaNode build_tree(const std::vector<KeySpec>& keys) {
  SchemaNode root;
  for (const KeySpec& key : keys) {
    SchemaNode* level = &root;
    std::string_view rest = key.path;
    while (true) {
      const auto dot = rest.find('.');
      const std::string_view name = rest.substr(0, dot);
      if (name.empty()) throw std::logic_error("config schema: bad key path " + std::string(key.path));
      if (level->spec != nullptr) {
        throw std::logic_error("config schema: " + level->path + " is both a value and a mapping");
      }
      auto it = std::find_if(level->children.begin(), level->children.end(),
                             [&](const SchemaNode& child) { return child.name == name; });
      if (it == level->children.end()) {
        SchemaNode child;
        child.name = std::string(name);
        child.path = level->path.empty() ? child.name : level->path + "." + child.name;
        level->children.push_back(std::move(child));
        it = std::prev(level->children.end());
      }
      level = &*it;
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
    if (level->spec != nullptr || !level->children.empty()) {
      throw std::logic_error("config schema: key " + std::string(key.path) + " declared twice");
    }
    level->spec = &key;
  }
  return root;
}

// A key path segment "*" stands for any name the operator chooses (a job
// name, in retry.jobs.*). A given name binds a copy of that subtree whose
// paths read "<parent>[<name>]...", so names may contain dots.
constexpr std::string_view wildcard = "*";

SchemaNode bind_wildcard(const SchemaNode& node, const std::string& path) {
  SchemaNode bound = node;
  bound.path = path;
  for (auto& child : bound.children) child = bind_wildcard(child, path + "." + child.name);
  return bound;
}

// Names bound to a wildcard are job names (retry.jobs.<job>).
bool valid_bound_name(std::string_view name) { return is_valid_job_name(name); }

struct Position {
  int line = 1;
  int column = 1;
};

Position position_of(const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based, -1 when unknown (e.g. an empty document).
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

// What the user wrote, made safe to print: no control characters, bounded length.
std::string printable(std::string_view text, std::size_t limit = 64) {
  std::string out;
  for (char c : text.substr(0, limit)) {
    const auto byte = static_cast<unsigned char>(c);
    out += (byte < 0x20 || byte == 0x7f) ? '?' : c;
  }
  if (text.size() > limit) out += "...";
  return out;
}

std::string child_path(std::string_view parent, std::string_view name) {
  std::string path(parent);
  if (!path.empty()) path += '.';
  path += printable(name);
  return path;
}

const char* kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "no value";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// A problem with a value, before the file position and key path are known.
class ValueProblem : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool valid_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// "${NAME}" becomes the value of environment variable NAME, "$${" a literal
// "${". Variable names are printed, values never (they are usually secrets).
std::string expand_environment(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
    } else if (text.compare(i, 2, "${") == 0) {
      const auto close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        throw ValueProblem("unterminated ${ (write $${ for a literal ${)");
      }
      const std::string name(text.substr(i + 2, close - i - 2));
      if (!valid_env_name(name)) {
        // The text between the braces may be part of a password: not printed.
        throw ValueProblem("invalid environment variable name in ${...} (letters, digits and _)");
      }
      const char* value = std::getenv(name.c_str());
      if (value == nullptr) {
        if (name == "CREDENTIALS_DIRECTORY") {
          throw ValueProblem(
              "environment variable CREDENTIALS_DIRECTORY is not set (systemd sets it for a "
              "service with LoadCredential=; outside systemd, set it to the directory holding "
              "the credential files)");
        }
        throw ValueProblem("environment variable " + name + " is not set");
      }
      out += value;
      i = close + 1;
    } else {
      out += text[i];
      ++i;
    }
  }
  return out;
}

std::optional<bool> parse_bool(std::string_view text) {
  // The spellings yaml-cpp itself accepts, minus the ambiguous y/n.
  for (std::string_view word : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"}) {
    if (text == word) return true;
  }
  for (std::string_view word : {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}) {
    if (text == word) return false;
  }
  return std::nullopt;
}

std::optional<long long> parse_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool is_queue_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

bool is_identifier(std::string_view text) {
  if (text.empty() || text.size() > 63 || (text[0] >= '0' && text[0] <= '9')) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string join_choices(const std::vector<std::string_view>& choices) {
  std::string out;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i != 0) out += ", ";
    out += choices[i];
  }
  return out;
}

std::string expected_text(const KeySpec& key) {
  switch (key.type) {
    case ValueType::boolean:
      return "a boolean";
    case ValueType::integer:
      return "an integer";
    case ValueType::choice:
      return "one of " + join_choices(key.choices);
    case ValueType::queue_name:
      return "a queue name";
    case ValueType::sql_identifier:
      return "an SQL identifier";
    case ValueType::path:
      return "a path";
    case ValueType::amqp_url:
      return "an AMQP URL";
    case ValueType::string:
      break;
  }
  return "a string";
}

// Checks an (expanded) scalar against its key; returns the normalized text
// or throws ValueProblem. The value is quoted back only for non-secret keys.
std::string check_value(const KeySpec& key, const std::string& text) {
  auto invalid = [&](const std::string& why) -> ValueProblem {
    if (key.secret) return ValueProblem("invalid value: " + why);
    return ValueProblem("invalid value '" + printable(text) + "': " + why);
  };
  if (text.find('\0') != std::string::npos) throw invalid("contains a NUL character");
  switch (key.type) {
    case ValueType::string:
      return text;
    case ValueType::boolean: {
      const auto value = parse_bool(text);
      if (!value) throw invalid("expected a boolean (true or false)");
      return *value ? "true" : "false";
    }
    case ValueType::integer: {
      const auto value = parse_integer(text);
      if (!value) throw invalid("expected an integer");
      if (*value < key.min || *value > key.max) {
        throw invalid("must be between " + std::to_string(key.min) + " and " + std::to_string(key.max));
      }
      return std::to_string(*value);
    }
    case ValueType::choice:
      if (std::find(key.choices.begin(), key.choices.end(), text) == key.choices.end()) {
        throw invalid("must be one of " + join_choices(key.choices));
      }
      return text;
    case ValueType::queue_name:
      if (text.empty() || text.size() > 200 || !std::all_of(text.begin(), text.end(), is_queue_char)) {
        throw invalid("a queue name is 1 to 200 of A-Z a-z 0-9 _ . : -");
      }
      // RabbitMQ refuses to declare these (403 ACCESS_REFUSED): say so now.
      if (text.rfind("amq.", 0) == 0) throw invalid("names starting with amq. are reserved by RabbitMQ");
      return text;
    case ValueType::sql_identifier:
      if (!is_identifier(text)) {
        throw invalid("an SQL identifier is [A-Za-z_][A-Za-z0-9_]*, at most 63 characters");
      }
      return text;
    case ValueType::path:
      // An empty path may only leave an optional key unset.
      if (text.empty() && !key.default_value.empty()) throw invalid("the path is empty");
      return text;
    case ValueType::amqp_url:
      if (const std::string problem = amqp_url_problem(text); !problem.empty()) {
        throw invalid(problem);
      }
      return text;
  }
  return text;
}

using Given = std::map<std::string, GivenValue, std::less<>>;

class Validator {
 public:
  Validator(std::string_view source, Values& values, Given* given = nullptr,
            const std::vector<std::string>* deferred = nullptr,
            std::vector<std::string>* unresolved = nullptr)
      : source_(source), values_(values), given_(given), deferred_(deferred),
        unresolved_(unresolved) {}

  [[noreturn]] void fail(const YAML::Mark& mark, std::string_view path, std::string_view problem) const {
    const Position at = position_of(mark);
    throw ConfigError(source_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " +
                      std::string(path.empty() ? top_level : path) + ": " + std::string(problem));
  }

  // Bounded walk of the whole document, before any schema check, so neither
  // deep nesting nor alias cycles (yaml-cpp resolves "&a [*a]" into a cycle)
  // can make the validator recurse without end.
  void check_shape(const YAML::Node& node, const std::string& path, int depth) {
    if (++nodes_seen_ > max_nodes) {
      fail(node.Mark(), path,
           "document too large (more than " + std::to_string(max_nodes) +
               " nodes, counting each use of an alias)");
    }
    if (!node.IsMap() && !node.IsSequence()) return;
    if (depth > max_depth) fail(node.Mark(), path, "nesting deeper than " + std::to_string(max_depth) + " levels");
    if (node.IsSequence()) {
      std::size_t index = 0;
      for (const auto& item : node) {
        check_shape(item, path + "[" + std::to_string(index++) + "]", depth + 1);
      }
      return;
    }
    for (const auto& entry : node) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "?";
      check_shape(entry.first, child_path(path, name), depth + 1);
      check_shape(entry.second, child_path(path, name), depth + 1);
    }
  }

  // `node` is the YAML at `level` (null when absent or empty); `anchor` is where
  // to point when something below is missing: the nearest node that exists.
  void walk(const SchemaNode& level, const YAML::Node& node, const YAML::Mark& anchor) {
    std::vector<std::pair<std::string, YAML::Mark>> seen;  // names given at this level
    if (node.IsDefined() && !node.IsNull()) {
      if (!node.IsMap()) fail(node.Mark(), level.path, std::string("expected a mapping, found ") + kind_of(node));
      for (const auto& entry : node) {
        const YAML::Node& key = entry.first;
        if (!key.IsScalar()) fail(key.Mark(), level.path, std::string("a key must be a string, found ") + kind_of(key));
        const std::string& name = key.Scalar();
        const SchemaNode* child = nullptr;
        std::optional<SchemaNode> bound;
        const auto exact = std::find_if(level.children.begin(), level.children.end(),
                                        [&](const SchemaNode& c) { return c.name == name; });
        if (exact != level.children.end() && exact->name != wildcard) {
          child = &*exact;
        } else {
          const auto any = std::find_if(level.children.begin(), level.children.end(),
                                        [](const SchemaNode& c) { return c.name == wildcard; });
          if (any == level.children.end()) {
            fail(key.Mark(), child_path(level.path, name), unknown_key_problem(level));
          }
          if (!valid_bound_name(name)) {
            fail(key.Mark(), level.path + "[" + printable(name) + "]",
                 "a name here is 1 to 255 of A-Z a-z 0-9 _ . : -");
          }
          bound = bind_wildcard(*any, level.path + "[" + name + "]");
          child = &*bound;
        }
        // yaml-cpp keeps both entries of a duplicated key; the config must not
        // silently pick one.
        const auto earlier = std::find_if(seen.begin(), seen.end(),
                                          [&](const auto& s) { return s.first == name; });
        if (earlier != seen.end()) {
          const Position first = position_of(earlier->second);
          fail(key.Mark(), child->path,
               "duplicate key (first at line " + std::to_string(first.line) + ", column " +
                   std::to_string(first.column) + ")");
        }
        seen.emplace_back(name, key.Mark());
        if (child->spec != nullptr) {
          leaf(*child->spec, child->path, entry.second, key.Mark());
        } else {
          if (!entry.second.IsNull() && !entry.second.IsMap()) {
            fail(entry.second.Mark(), child->path,
                 std::string("expected a mapping, found ") + kind_of(entry.second));
          }
          walk(*child, entry.second, key.Mark());
        }
      }
    }
    const YAML::Mark& here = (node.IsDefined() && node.IsMap()) ? node.Mark() : anchor;
    for (const SchemaNode& child : level.children) {
      if (child.name == wildcard) continue;  // only names the file gives exist
      const bool given = std::any_of(seen.begin(), seen.end(), [&](const auto& s) { return s.first == child.name; });
      if (given) continue;
      if (child.spec == nullptr) {
        walk(child, YAML::Node(), here);
      } else if (child.spec->required) {
        fail(here, child.path, "required key is missing");
      } else if (!child.spec->default_value.empty()) {
        values_[child.path] = std::string(child.spec->default_value);
      }
    }
  }

 private:
  static std::string unknown_key_problem(const SchemaNode& level) {
    std::string problem = "unknown key; allowed keys here: ";
    for (std::size_t i = 0; i < level.children.size(); ++i) {
      if (i != 0) problem += ", ";
      problem += level.children[i].name == wildcard ? "<name>" : level.children[i].name;
    }
    return problem;
  }

  // `path` is the key's path as given (a bound wildcard names its job).
  void leaf(const KeySpec& key, const std::string& path, const YAML::Node& node,
            const YAML::Mark& key_mark) {
    if (node.IsNull()) {
      // A null's own mark is where the next token starts: point at the key.
      fail(key_mark, path, "no value (remove the key to use its default)");
    }
    if (key.list) {
      list(key, path, node);
      return;
    }
    if (!node.IsScalar()) {
      fail(node.Mark(), path, std::string("expected ") + expected_text(key) + ", found " + kind_of(node));
    }
    if (auto value = scalar(key, path, path, node)) values_[path] = std::move(*value);
  }

  // The items of a list key, each checked as a scalar of the key's type under
  // "<path>[<index>]". One unresolved item (a deferred key) leaves the whole
  // key unset: a list short of a node would pass for a complete one.
  void list(const KeySpec& key, const std::string& path, const YAML::Node& node) {
    const std::string count = "1 to " + std::to_string(max_list_items) + " values";
    if (!node.IsSequence()) {
      fail(node.Mark(), path,
           "expected a sequence of " + count + ", each " + expected_text(key) + ", found " +
               kind_of(node));
    }
    if (node.size() == 0) {
      fail(node.Mark(), path,
           "expected " + count + ", found an empty sequence (remove the key to leave it unset)");
    }
    if (node.size() > static_cast<std::size_t>(max_list_items)) {
      fail(node.Mark(), path, "expected " + count + ", found " + std::to_string(node.size()));
    }
    std::vector<std::pair<std::string, YAML::Mark>> items;  // resolved, normalized
    std::string raw;
    bool unresolved = false;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const YAML::Node item = node[i];
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      // A null's own mark is where the next token starts, maybe past the list.
      if (item.IsNull()) fail(node.Mark(), item_path, "no value (remove the item)");
      if (!item.IsScalar()) {
        fail(item.Mark(), item_path,
             std::string("expected ") + expected_text(key) + ", found " + kind_of(item));
      }
      raw += (i == 0 ? "" : "\n") + item.Scalar();
      auto value = scalar(key, item_path, path, item);
      if (!value) {
        unresolved = true;
        continue;
      }
      // The items are joined by '\n' into the key's value: none may hold one.
      if (value->find('\n') != std::string::npos) {
        fail(item.Mark(), item_path, "invalid value: contains a line break");
      }
      const auto earlier = std::find_if(items.begin(), items.end(),
                                        [&](const auto& other) { return other.first == *value; });
      if (earlier != items.end()) {
        // The value may be secret: the first is named by its place only.
        const Position first = position_of(earlier->second);
        fail(item.Mark(), item_path,
             "duplicate value (first as " + path + "[" + std::to_string(earlier - items.begin()) +
                 "], line " + std::to_string(first.line) + ", column " +
                 std::to_string(first.column) + ")");
      }
      items.emplace_back(std::move(*value), item.Mark());
    }
    if (given_ != nullptr) {
      const Position at = position_of(node.Mark());
      (*given_)[path] = GivenValue{raw, at.line, at.column};
    }
    if (unresolved) return;
    std::string joined;
    for (std::size_t i = 0; i < items.size(); ++i) {
      joined += (i == 0 ? "" : "\n") + items[i].first;
    }
    values_[path] = std::move(joined);
  }

  // A scalar checked against `key` and recorded in `given` under `path`; its
  // normalized text, or nothing when `deferral` (the key's own path, for an
  // item of a list key) is deferred and the scalar names an unset variable.
  std::optional<std::string> scalar(const KeySpec& key, const std::string& path,
                                    const std::string& deferral, const YAML::Node& node) {
    std::string expanded;
    try {
      expanded = expand_environment(node.Scalar());
    } catch (const ValueProblem& problem) {
      // A key of a part the command does not use: left unset, noted.
      if (deferred_ != nullptr && unresolved_ != nullptr &&
          std::find(deferred_->begin(), deferred_->end(), deferral) != deferred_->end()) {
        if (std::find(unresolved_->begin(), unresolved_->end(), deferral) == unresolved_->end()) {
          unresolved_->push_back(deferral);
        }
        return std::nullopt;
      }
      fail(node.Mark(), path, problem.what());
    }
    std::string value;
    try {
      value = check_value(key, expanded);
    } catch (const ValueProblem& problem) {
      fail(node.Mark(), path, problem.what());
    }
    if (given_ != nullptr) {
      const Position at = position_of(node.Mark());
      (*given_)[path] = GivenValue{node.Scalar(), at.line, at.column};
    }
    return value;
  }

  std::string source_;
  Values& values_;
  Given* given_;
  const std::vector<std::string>* deferred_;
  std::vector<std::string>* unresolved_;
  int nodes_seen_ = 0;
};

Values load(std::string_view yaml, std::string_view source_name, const std::vector<KeySpec>& keys,
            Given* given, const std::vector<std::string>* deferred = nullptr,
            std::vector<std::string>* unresolved = nullptr);

}  // namespace

Values load_values(std::string_view yaml, std::string_view source_name, const std::vector<KeySpec>& keys) {
  return load(yaml, source_name, keys, nullptr);
}

Values load_values(std::string_view yaml, std::string_view source_name, const std::vector<KeySpec>& keys,
                   Given& given) {
  given.clear();
  return load(yaml, source_name, keys, &given);
}

Values load_values(std::string_view yaml, std::string_view source_name, const std::vector<KeySpec>& keys,
                   Given& given, const std::vector<std::string>& deferred,
                   std::vector<std::string>& unresolved) {
  given.clear();
  unresolved.clear();
  return load(yaml, source_name, keys, &given, &deferred, &unresolved);
}

namespace {

// Notes where each document starts, and where its first node is (where an
// error about the document points), and nothing else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    marks.push_back(mark);
    first_nodes.push_back(mark);
    at_start_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

  std::vector<YAML::Mark> marks;
  std::vector<YAML::Mark> first_nodes;

 private:
  void node(const YAML::Mark& mark) {
    if (at_start_) first_nodes.back() = mark;
    at_start_ = false;
  }
  bool at_start_ = false;
};

Values load(std::string_view yaml, std::string_view source_name, const std::vector<KeySpec>& keys,
            Given* given, const std::vector<std::string>* deferred,
            std::vector<std::string>* unresolved) {
  const SchemaNode tree = build_tree(keys);
  std::vector<YAML::Node> documents;
  const std::string source(source_name);
  try {
    // Not YAML::LoadAll: on some input (a ',' at the start of a document)
    // yaml-cpp 0.7 yields empty documents forever without moving on, and
    // LoadAll keeps every one until memory runs out (found by fuzzing).
    // Only two documents are read here, to tell "one" from "more".
    const std::string text(yaml);
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentStarts starts;
    while (starts.marks.size() < 2 && parser.HandleNextDocument(starts)) {
    }
    if (starts.marks.size() == 2 && starts.marks[1].pos == starts.marks[0].pos) {
      const Position at = position_of(starts.marks[0]);
      throw ConfigError(source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                        ": invalid YAML: the parser cannot get past this point (a ',' outside "
                        "[ ] or { }?)");
    }
    if (starts.marks.size() == 2) {
      const Position at = position_of(starts.first_nodes[1]);
      throw ConfigError(source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                        ": (top level): more than one YAML document (--- separates documents)");
    }
    if (!starts.marks.empty()) documents.push_back(YAML::Load(text));
  } catch (const YAML::DeepRecursion& error) {
    // yaml-cpp says only "bad file" here.
    const Position at = position_of(error.mark);
    throw ConfigError(source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                      ": nesting deeper than " + std::to_string(max_depth) + " levels");
  } catch (const YAML::Exception& error) {
    const Position at = position_of(error.mark);
    throw ConfigError(source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " +
                      error.msg);
  }

  Values values;
  Validator validator(source, values, given, deferred, unresolved);
  // An empty file has no document at all: everything takes its default.
  const YAML::Node document = documents.empty() ? YAML::Node() : documents.front();
  const YAML::Mark start = YAML::Mark();  // line 0, column 0: the top of the file
  if (document.IsDefined()) validator.check_shape(document, "", 1);
  validator.walk(tree, document, start);
  return values;
}

}  // namespace

}  // namespace program_executor::config
