// Turns validated values into the Config struct, and reads the file.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

#include "program_executor/config/config.hpp"
#include "program_executor/config/database_connection.hpp"
#include "program_executor/config/database_password.hpp"
#include "program_executor/config/percent_encoding.hpp"
#include "program_executor/config/schema.hpp"

namespace program_executor::config {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void throw_unreadable(const std::filesystem::path& path, int error) {
  throw ConfigError(path.string() + ": cannot read: " + std::generic_category().message(error));
}

// POSIX read rather than an ifstream: a directory opens fine as a stream and
// only read() reports EISDIR, and errno is reliable here.
std::string read_file(const std::filesystem::path& path) {
  const FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) throw_unreadable(path, errno);
  std::string text;
  char buffer[8192];
  while (true) {
    const ssize_t count = ::read(file.get(), buffer, sizeof buffer);
    if (count < 0) {
      if (errno == EINTR) continue;
      throw_unreadable(path, errno);
    }
    if (count == 0) break;
    text.append(buffer, static_cast<std::size_t>(count));
  }
  return text;
}

using Values = std::map<std::string, std::string, std::less<>>;
using Given = std::map<std::string, GivenValue, std::less<>>;

// A password file holds one password, not a document.
constexpr std::size_t max_secret_bytes = 4096;

[[noreturn]] void fail_at(std::string_view source, const GivenValue& at, std::string_view key,
                          const std::string& problem) {
  throw ConfigError(std::string(source) + ":" + std::to_string(at.line) + ":" +
                    std::to_string(at.column) + ": " + std::string(key) + ": " + problem);
}

// The content of a secret file, less one final line break. Problems are
// thrown as text for the caller to place; the content is never part of them.
std::string read_secret_file(const std::string& path) {
  auto cannot = [&](int error) {
    return std::runtime_error("cannot read '" + path + "': " +
                              std::generic_category().message(error));
  };
  // O_NONBLOCK: a FIFO put there must not hang the daemon in open().
  const FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (file.get() < 0) throw cannot(errno);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) throw cannot(errno);
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("'" + path + "' is not a regular file");
  std::string text;
  char buffer[1024];
  while (text.size() <= max_secret_bytes) {
    const ssize_t count = ::read(file.get(), buffer, sizeof buffer);
    if (count < 0) {
      if (errno == EINTR) continue;
      throw cannot(errno);
    }
    if (count == 0) break;
    text.append(buffer, static_cast<std::size_t>(count));
  }
  if (text.size() > max_secret_bytes) {
    throw std::runtime_error("'" + path + "' is larger than " + std::to_string(max_secret_bytes) +
                             " bytes; it must hold the password only");
  }
  if (text.ends_with("\r\n")) {
    text.resize(text.size() - 2);
  } else if (text.ends_with('\n')) {
    text.pop_back();
  }
  if (text.empty()) throw std::runtime_error("'" + path + "' is empty");
  if (text.find_first_of(std::string_view("\n\r\0", 3)) != std::string::npos) {
    throw std::runtime_error("'" + path +
                             "' holds more than one line or a NUL byte; it must hold the "
                             "password only");
  }
  return text;
}


// `url` with its password set to `password`: the user is kept (guest, as
// rabbitmq-c's default, when the URL names none), any password replaced.
std::string with_password(const std::string& url, std::string_view password) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;  // validated as amqp(s)://: cannot happen
  const std::size_t start = scheme_end + 3;
  const std::size_t authority_end = std::min(url.find('/', start), url.size());
  const auto at = url.rfind('@', authority_end == 0 ? 0 : authority_end - 1);
  std::string user = "guest";
  std::size_t rest = start;
  if (at != std::string::npos && at >= start) {
    const std::string userinfo = url.substr(start, at - start);
    user = userinfo.substr(0, userinfo.find(':'));
    rest = at + 1;
  }
  return url.substr(0, start) + user + ":" + percent_encode(password) + "@" + url.substr(rest);
}

// Whether a secret value, as written, holds a password itself: "user:pw@" in
// a URL, or password=/pass=/pwd= in a connection string, once every ${NAME}
// reference is taken out.
bool holds_written_password(std::string_view raw) {
  std::string text;
  for (std::size_t i = 0; i < raw.size();) {
    if (raw.compare(i, 3, "$${") == 0) {
      text += "${";
      i += 3;
    } else if (raw.compare(i, 2, "${") == 0 && raw.find('}', i) != std::string_view::npos) {
      i = raw.find('}', i) + 1;
    } else {
      text += static_cast<char>(std::tolower(static_cast<unsigned char>(raw[i])));
      ++i;
    }
  }
  if (const auto scheme = text.find("://"); scheme != std::string::npos) {
    const std::size_t start = scheme + 3;
    const std::size_t end = std::min(text.find('/', start), text.size());
    const auto at = text.rfind('@', end == 0 ? 0 : end - 1);
    if (at != std::string::npos && at >= start) {
      const auto colon = text.find(':', start);
      if (colon != std::string::npos && colon + 1 < at) return true;
    }
  }
  for (const std::string_view word : {"password", "pass", "pwd"}) {
    for (auto found = text.find(word); found != std::string::npos;
         found = text.find(word, found + 1)) {
      const auto is_space = [&](std::size_t i) {
        return std::isspace(static_cast<unsigned char>(text[i])) != 0;
      };
      const bool starts_word = found == 0 || is_space(found - 1) || text[found - 1] == ';';
      std::size_t i = found + word.size();
      while (i < text.size() && text[i] == ' ') ++i;
      if (!starts_word || i >= text.size() || text[i] != '=') continue;
      ++i;
      while (i < text.size() && text[i] == ' ') ++i;
      const bool empty_quotes = text.compare(i, 2, "''") == 0;
      if (i < text.size() && text[i] != ';' && !is_space(i) && !empty_quotes) return true;
    }
  }
  return false;
}

// Whether `test` holds for an item of the list key `path` the file gives: the
// validator records them as "<path>[<index>]" (the resolved ones only).
template <typename Test>
bool any_item(const Given& given, std::string_view path, Test test) {
  const std::string prefix = std::string(path) + "[";
  for (auto it = given.lower_bound(prefix);
       it != given.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (test(it->second)) return true;
  }
  return false;
}

// The bound values of a key with one "*" segment (retry.jobs.*.backoff), as
// (name, value): the validator keys them "retry.jobs[<name>].backoff". Names
// cannot contain ']' (job names are [A-Za-z0-9_.:-]).
template <typename Visit>
void for_each_bound(const Values& values, std::string_view path, Visit visit) {
  const auto star = path.find(".*.");
  const std::string prefix = std::string(path.substr(0, star)) + "[";
  const std::string suffix = "]." + std::string(path.substr(star + 3));
  for (auto it = values.lower_bound(prefix);
       it != values.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const std::string_view bound = it->first;
    const auto close = bound.find(']', prefix.size());
    if (close == std::string_view::npos || bound.substr(close) != suffix) continue;
    visit(bound.substr(prefix.size(), close - prefix.size()), it->second);
  }
}

// Every value into the member its key names. Keys without a "*" come first:
// a job's retry policy starts as a copy of the complete defaults. Keys left
// out (an optional key without a default) keep the member's initial value.
void fill_members(Config& config, const Values& values) {
  for (const KeySpec& key : schema()) {
    if (key.path.find('*') != std::string_view::npos) continue;
    if (const auto it = values.find(key.path); it != values.end()) {
      key.member.fill(config, {}, it->second);
    }
  }
  for (const KeySpec& key : schema()) {
    if (key.path.find('*') == std::string_view::npos) continue;
    for_each_bound(values, key.path, [&](std::string_view name, const std::string& value) {
      key.member.fill(config, name, value);
    });
  }
}

// Why `address` cannot be the metrics endpoint's, or "" if it can (empty
// disables it). Only one literal IPv4 address with a port: the web server
// would also take a bare port (every interface), host names and lists, and
// Debian's civetweb is built without IPv6.
std::string listen_address_problem(const std::string& address) {
  if (address.empty()) return "";
  const std::string expected = "expected IPV4:PORT (e.g. 127.0.0.1:9464)";
  if (address.front() == '[') return "IPv6 is not supported (civetweb without IPv6): " + expected;
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return expected;
  const std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  unsigned number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || number > 65535) {
    return "bad port \"" + port + "\": " + expected;
  }
  in_addr parsed{};
  if (inet_pton(AF_INET, host.c_str(), &parsed) == 1) return "";
  return "\"" + host + "\" is not an IPv4 address: " + expected;
}

}  // namespace

Config load_string(std::string_view yaml, std::string_view source_name,
                   const LoadOptions& options) {
  std::vector<std::string> deferred;
  if (!options.broker) {
    deferred.insert(deferred.end(), {"amqp.url", "amqp.urls", "amqp.password_file"});
  }
  if (!options.database) {
    deferred.insert(deferred.end(), {"database.connection", "database.password_file"});
  }
  Given given;
  Config config;
  const Values values = load_values(yaml, source_name, schema(), given, deferred, config.unresolved);
  config.source = std::string(source_name);
  for (const KeySpec& key : schema()) {
    if (!key.secret) continue;
    const auto written = [](const GivenValue& value) { return holds_written_password(value.raw); };
    const auto it = given.find(key.path);
    if (key.list ? any_item(given, key.path, written) : it != given.end() && written(it->second)) {
      config.secrets_in_file.emplace_back(key.path);
    }
  }
  fill_members(config, values);
  // The rules between keys, on the filled Config, in the order of the schema.
  // A deferred amqp.url that did not resolve is given all the same.
  const bool url_given =
      given.count("amqp.url") != 0 || std::find(config.unresolved.begin(), config.unresolved.end(),
                                                "amqp.url") != config.unresolved.end();
  if (url_given && given.count("amqp.urls") != 0) {
    fail_at(source_name, given.at("amqp.urls"), "amqp.urls", "set amqp.url or amqp.urls, not both");
  }
  if (!config.amqp.password_file.empty() && !options.broker) {
    config.unresolved.emplace_back("amqp.password_file");  // not read: not needed
  } else if (!config.amqp.password_file.empty()) {
    try {
      const std::string password = read_secret_file(config.amqp.password_file);
      config.amqp.url = with_password(config.amqp.url, password);
      for (std::string& node : config.amqp.urls) node = with_password(node, password);
    } catch (const std::runtime_error& problem) {
      fail_at(source_name, given.at("amqp.password_file"), "amqp.password_file", problem.what());
    }
  }
  if (config.amqp.queue_type == QueueType::quorum && !config.amqp.durable) {
    fail_at(source_name, given.at("amqp.queue_type"), "amqp.queue_type",
            "quorum queues are always durable: amqp.durable must be true");
  }
  if (!config.database.password_file.empty() && !options.database) {
    config.unresolved.emplace_back("database.password_file");  // not read: not needed
  } else if (!config.database.password_file.empty()) {
    // Both problems are placed at the key: the backend may be the default one.
    try {
      config.database.connection =
          with_database_password(config.database.backend, config.database.connection,
                                 read_secret_file(config.database.password_file));
    } catch (const std::exception& problem) {
      fail_at(source_name, given.at("database.password_file"), "database.password_file",
              problem.what());
    }
  }
  if (const std::string problem =
          database_connection_problem(config.database.backend, config.database.connection);
      !problem.empty()) {
    // At the connection string if the file gives one, else at the backend.
    const char* key = given.count("database.connection") ? "database.connection"
                                                         : "database.backend";
    if (given.count(key)) fail_at(source_name, given.at(key), key, problem);
  }
  // A policy whose longest delay is shorter than its first: point at whichever
  // of the two keys the file gave (the defaults alone are consistent).
  const auto check_delays = [&](const std::string& prefix, const RetryPolicySettings& policy) {
    if (policy.max_delay_ms >= policy.delay_ms) return;
    for (const std::string& key : {prefix + "max_delay_ms", prefix + "delay_ms", std::string("retry.max_delay_ms"),
                                  std::string("retry.delay_ms")}) {
      if (given.count(key)) {
        fail_at(source_name, given.at(key), key, "max_delay_ms must not be less than delay_ms");
      }
    }
  };
  check_delays("retry.", config.retry.defaults);
  for (const auto& [job, policy] : config.retry.jobs) check_delays("retry.jobs[" + job + "].", policy);
  if (const std::string problem = listen_address_problem(config.metrics.listen); !problem.empty()) {
    fail_at(source_name, given.at("metrics.listen"), "metrics.listen", problem);
  }
  if (config.web.listen.empty()) {
    fail_at(source_name, given.at("web.listen"), "web.listen", "must not be empty");
  }
  if (const std::string problem = listen_address_problem(config.web.listen); !problem.empty()) {
    fail_at(source_name, given.at("web.listen"), "web.listen", problem);
  }
  if (config.web.tls_cert_file.empty() != config.web.tls_key_file.empty()) {
    const char* given_key = config.web.tls_cert_file.empty() ? "web.tls.key_file" : "web.tls.cert_file";
    fail_at(source_name, given.at(given_key), given_key,
            "web.tls.cert_file and web.tls.key_file go together: set both, or neither");
  }
  return config;
}

Config load_file(const std::filesystem::path& path, const LoadOptions& options) {
  return load_string(read_file(path), path.string(), options);
}

}  // namespace program_executor::config
