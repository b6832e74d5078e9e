#include "program_executor/config/environment_file.hpp"

#include <cctype>

namespace program_executor::config {
namespace {

bool valid_key(std::string_view key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key.front())) != 0) return false;
  for (const char c : key) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') return false;
  }
  return true;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

EnvironmentAssignments parse_environment_file(std::string_view text) {
  EnvironmentAssignments out;
  std::size_t i = 0;
  const auto at_end = [&] { return i >= text.size(); };
  while (!at_end()) {
    while (!at_end() && (is_blank(text[i]) || text[i] == '\n' || text[i] == '\r')) ++i;
    if (at_end()) break;
    if (text[i] == '#' || text[i] == ';') {
      while (!at_end() && text[i] != '\n') ++i;
      continue;
    }
    // The key: up to '=' or the end of the line.
    const std::size_t key_start = i;
    while (!at_end() && text[i] != '=' && text[i] != '\n') ++i;
    std::string_view key = text.substr(key_start, i - key_start);
    while (!key.empty() && is_blank(key.back())) key.remove_suffix(1);
    if (at_end() || text[i] != '=' || !valid_key(key)) {
      while (!at_end() && text[i] != '\n') ++i;  // not an assignment: ignored, as systemd does
      continue;
    }
    ++i;  // '='
    while (!at_end() && is_blank(text[i])) ++i;
    std::string value;
    std::size_t kept = 0;  // length of value up to its last quoted or escaped character
    while (!at_end() && text[i] != '\n') {
      const char c = text[i];
      if (c == '\'') {
        ++i;
        while (!at_end() && text[i] != '\'') value += text[i++];
        if (!at_end()) ++i;
        kept = value.size();
      } else if (c == '"') {
        ++i;
        while (!at_end() && text[i] != '"') {
          if (text[i] == '\\' && i + 1 < text.size()) {
            ++i;
            if (text[i] == '\n') {  // a line continuation inside quotes
              ++i;
              continue;
            }
          }
          value += text[i++];
        }
        if (!at_end()) ++i;
        kept = value.size();
      } else if (c == '\\' && i + 1 < text.size()) {
        ++i;
        if (text[i] != '\n') {
          value += text[i];
          kept = value.size();
        }
        ++i;
      } else {
        if (c != '\r') value += c;
        if (!is_blank(c) && c != '\r') kept = value.size();
        ++i;
      }
    }
    value.resize(kept);  // trailing unquoted whitespace goes
    out.emplace_back(std::string(key), std::move(value));
  }
  return out;
}

std::filesystem::path unit_environment_file(const std::filesystem::path& config) {
  const std::filesystem::path directory = config.parent_path();
  if (config.filename() == "config.yaml") return directory / "environment";
  return directory / (config.stem().string() + ".environment");
}

}  // namespace program_executor::config
