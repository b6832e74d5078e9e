// The password of database.password_file, written into the connection string
// in the syntax of the library that will read it: libpq, SOCI's MySQL
// backend, or an ODBC driver manager. Every problem is reported without the
// password or the connection string, which may hold other secrets.
#include "program_executor/config/database_password.hpp"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <vector>

#include "program_executor/config/percent_encoding.hpp"

namespace program_executor::config {
namespace {

// Where one `key=value` (or ODBC `key=value;`) entry lies in the string.
struct Entry {
  std::string key;
  std::size_t begin = 0;
  std::size_t end = 0;
};

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool one_of(std::string_view key, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), key) != names.end();
}

// Splits libpq's conninfo syntax, which SOCI's MySQL backend shares: entries
// separated by white space, `key = value`, the value either up to the next
// white space or in single quotes, a backslash escaping the next character.
std::vector<Entry> key_value_entries(std::string_view text) {
  const auto malformed = [](const char* what) {
    return std::invalid_argument(std::string("database.connection is not a valid list of "
                                             "key=value parameters: ") + what);
  };
  std::vector<Entry> entries;
  std::size_t i = 0;
  while (true) {
    while (i < text.size() && is_space(text[i])) ++i;
    if (i == text.size()) break;
    Entry entry;
    entry.begin = i;
    while (i < text.size() && text[i] != '=' && !is_space(text[i])) ++i;
    entry.key = std::string(text.substr(entry.begin, i - entry.begin));
    while (i < text.size() && is_space(text[i])) ++i;
    if (entry.key.empty() || i == text.size() || text[i] != '=') {
      throw malformed("a parameter without '=' after its name");
    }
    ++i;
    while (i < text.size() && is_space(text[i])) ++i;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      while (i < text.size() && text[i] != '\'') i += text[i] == '\\' ? 2 : 1;
      if (i >= text.size()) throw malformed("a quoted value without its closing quote");
      ++i;
    } else {
      while (i < text.size() && !is_space(text[i])) i += text[i] == '\\' ? 2 : 1;
      i = std::min(i, text.size());
    }
    entry.end = i;
    entries.push_back(std::move(entry));
  }
  return entries;
}

// `text` without the entries named `drop`, and `password='...'` at the end.
std::string with_key_value_password(std::string_view text, std::string_view password,
                                    std::initializer_list<std::string_view> drop) {
  std::string out;
  for (const Entry& entry : key_value_entries(text)) {
    if (one_of(entry.key, drop)) continue;
    if (!out.empty()) out += ' ';
    out += text.substr(entry.begin, entry.end - entry.begin);
  }
  if (!out.empty()) out += ' ';
  out += "password='";
  for (const char c : password) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}


// `url` with the password in its userinfo (the user kept, or none) and
// without query parameters named `drop`, which would compete with it.
std::string with_url_password(std::string_view url, std::string_view password,
                              std::initializer_list<std::string_view> drop) {
  const std::size_t start = url.find("://") + 3;
  const std::size_t authority_end = std::min(url.find_first_of("/?#", start), url.size());
  const std::string_view authority = url.substr(start, authority_end - start);
  std::string_view user;
  std::string_view host = authority;
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    user = authority.substr(0, std::min(authority.find(':'), at));
    host = authority.substr(at + 1);
  }
  std::string out = std::string(url.substr(0, start)) + std::string(user) + ":" +
                    percent_encode(password) + "@" + std::string(host);
  std::string_view rest = url.substr(authority_end);
  const auto question = rest.find('?');
  if (question == std::string_view::npos) return out + std::string(rest);
  out += rest.substr(0, question);
  const auto fragment = std::min(rest.find('#', question), rest.size());
  std::string query;
  std::string_view pairs = rest.substr(question + 1, fragment - question - 1);
  while (!pairs.empty()) {
    const auto amp = std::min(pairs.find('&'), pairs.size());
    const std::string_view pair = pairs.substr(0, amp);
    pairs.remove_prefix(std::min(amp + 1, pairs.size()));
    if (one_of(pair.substr(0, pair.find('=')), drop)) continue;
    query += (query.empty() ? "" : "&") + std::string(pair);
  }
  if (!query.empty()) out += "?" + query;
  return out + std::string(rest.substr(fragment));
}

// An ODBC connection string's attributes: `key=value` separated by `;`, a
// value in braces may hold `;` and a doubled `}`.
std::vector<Entry> odbc_entries(std::string_view text) {
  std::vector<Entry> entries;
  std::size_t i = 0;
  while (i < text.size()) {
    Entry entry;
    entry.begin = i;
    const std::size_t equals = text.find_first_of("=;", i);
    if (equals == std::string_view::npos || text[equals] == ';') {
      // A stray separator or a word without '=': kept as it is.
      entry.end = equals == std::string_view::npos ? text.size() : equals;
    } else {
      std::string_view key = text.substr(i, equals - i);
      while (!key.empty() && is_space(key.front())) key.remove_prefix(1);
      while (!key.empty() && is_space(key.back())) key.remove_suffix(1);
      entry.key = lower(key);
      i = equals + 1;
      while (i < text.size() && is_space(text[i])) ++i;
      if (i < text.size() && text[i] == '{') {
        ++i;
        while (i < text.size()) {
          if (text[i] == '}') {
            if (i + 1 < text.size() && text[i + 1] == '}') {
              i += 2;
              continue;
            }
            break;
          }
          ++i;
        }
        if (i >= text.size()) {
          throw std::invalid_argument(
              "database.connection is not a valid ODBC connection string: a value in braces "
              "without its closing '}'");
        }
      }
      entry.end = std::min(text.find(';', i), text.size());
    }
    i = entry.end + 1;
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string with_odbc_password(std::string_view text, std::string_view password) {
  std::string out;
  for (const Entry& entry : odbc_entries(text)) {
    if (one_of(entry.key, {"pwd", "password"}) || entry.begin == entry.end) continue;
    out += text.substr(entry.begin, entry.end - entry.begin);
    out += ';';
  }
  out += "PWD={";
  for (const char c : password) {
    out += c;
    if (c == '}') out += '}';
  }
  out += '}';
  return out;
}

bool has_scheme(std::string_view connection, std::initializer_list<std::string_view> schemes) {
  const auto end = connection.find("://");
  return end != std::string_view::npos && one_of(lower(connection.substr(0, end)), schemes);
}

}  // namespace

std::string with_database_password(DatabaseBackend backend, std::string_view connection,
                                   std::string_view password) {
  switch (backend) {
    case DatabaseBackend::postgresql:
      if (has_scheme(connection, {"postgresql", "postgres"})) {
        return with_url_password(connection, password, {"password"});
      }
      return with_key_value_password(connection, password, {"password"});
    case DatabaseBackend::mysql:
      if (has_scheme(connection, {"mysql", "mariadb"})) {
        return with_url_password(connection, password, {"password", "pass"});
      }
      return with_key_value_password(connection, password, {"password", "pass"});
    case DatabaseBackend::odbc:
      return with_odbc_password(connection, password);
    case DatabaseBackend::sqlite3:
      break;
  }
  throw std::invalid_argument(
      "database.backend sqlite3 takes no password (database.password_file is for postgresql, "
      "mysql and odbc)");
}

}  // namespace program_executor::config
