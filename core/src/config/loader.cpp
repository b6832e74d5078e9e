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

// Values were validated against schema(), so these conversions cannot fail;
// an absent entry (optional key left unset) keeps the struct's default.
void assign(const Values& values, std::string_view path, std::string& target) {
  if (const auto it = values.find(path); it != values.end()) target = it->second;
}

void assign(const Values& values, std::string_view path, bool& target) {
  if (const auto it = values.find(path); it != values.end()) target = it->second == "true";
}

void assign(const Values& values, std::string_view path, int& target) {
  if (const auto it = values.find(path); it != values.end()) {
    std::from_chars(it->second.data(), it->second.data() + it->second.size(), target);
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
  if (!options.broker) deferred.insert(deferred.end(), {"amqp.url", "amqp.password_file"});
  if (!options.database) {
    deferred.insert(deferred.end(), {"database.connection", "database.password_file"});
  }
  Given given;
  Config config;
  const Values values = load_values(yaml, source_name, schema(), given, deferred, config.unresolved);
  config.source = std::string(source_name);
  for (const KeySpec& key : schema()) {
    const auto it = given.find(key.path);
    if (key.secret && it != given.end() && holds_written_password(it->second.raw)) {
      config.secrets_in_file.emplace_back(key.path);
    }
  }
  assign(values, "amqp.url", config.amqp.url);
  assign(values, "amqp.password_file", config.amqp.password_file);
  if (!config.amqp.password_file.empty() && !options.broker) {
    config.unresolved.emplace_back("amqp.password_file");  // not read: not needed
  } else if (!config.amqp.password_file.empty()) {
    try {
      config.amqp.url = with_password(config.amqp.url, read_secret_file(config.amqp.password_file));
    } catch (const std::runtime_error& problem) {
      fail_at(source_name, given.at("amqp.password_file"), "amqp.password_file", problem.what());
    }
  }
  assign(values, "amqp.queue", config.amqp.queue);
  assign(values, "amqp.durable", config.amqp.durable);
  assign(values, "amqp.prefetch", config.amqp.prefetch);
  assign(values, "amqp.heartbeat_seconds", config.amqp.heartbeat_seconds);
  assign(values, "amqp.queue_type", config.amqp.queue_type);
  assign(values, "amqp.delivery_limit", config.amqp.delivery_limit);
  if (config.amqp.queue_type == "quorum" && !config.amqp.durable) {
    fail_at(source_name, given.at("amqp.queue_type"), "amqp.queue_type",
            "quorum queues are always durable: amqp.durable must be true");
  }
  assign(values, "amqp.tls.ca_file", config.amqp.tls.ca_file);
  assign(values, "amqp.tls.cert_file", config.amqp.tls.cert_file);
  assign(values, "amqp.tls.key_file", config.amqp.tls.key_file);
  assign(values, "amqp.tls.verify_peer", config.amqp.tls.verify_peer);
  assign(values, "amqp.tls.verify_hostname", config.amqp.tls.verify_hostname);
  assign(values, "database.backend", config.database.backend);
  assign(values, "database.connection", config.database.connection);
  assign(values, "database.password_file", config.database.password_file);
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
  assign(values, "database.table", config.database.table);
  assign(values, "database.migrate", config.database.migrate);
  assign(values, "database.reconnect_timeout_seconds", config.database.reconnect_timeout_seconds);
  assign(values, "plugins.directory", config.plugins.directory);
  assign(values, "workers", config.workers);
  int grace_seconds = static_cast<int>(config.shutdown_grace.count());
  assign(values, "shutdown_grace_seconds", grace_seconds);
  config.shutdown_grace = std::chrono::seconds(grace_seconds);
  const auto assign_seconds = [&](const char* key, std::chrono::seconds& target) {
    int seconds = static_cast<int>(target.count());
    assign(values, key, seconds);
    target = std::chrono::seconds(seconds);
  };
  assign_seconds("recovery.lease_seconds", config.recovery.lease);
  assign_seconds("recovery.stale_after_seconds", config.recovery.stale_after);
  assign_seconds("recovery.unclaimed_after_seconds", config.recovery.unclaimed_after);
  int max_age_hours = static_cast<int>(config.recovery.max_age.count());
  assign(values, "recovery.max_age_hours", max_age_hours);
  config.recovery.max_age = std::chrono::hours(max_age_hours);
  assign_seconds("recovery.sweep_interval_seconds", config.recovery.sweep_interval);
  assign(values, "recovery.max_crashes", config.recovery.max_crashes);
  const auto assign_policy = [&](const std::string& prefix, RetryPolicySettings& policy) {
    assign(values, prefix + "backoff", policy.backoff);
    assign(values, prefix + "delay_ms", policy.delay_ms);
    assign(values, prefix + "max_delay_ms", policy.max_delay_ms);
    assign(values, prefix + "jitter_percent", policy.jitter_percent);
    assign(values, prefix + "max_attempts", policy.max_attempts);
  };
  assign_policy("retry.", config.retry.defaults);
  // Overrides are keyed "retry.jobs[<job name>].<key>"; each starts from the defaults.
  const std::string jobs_prefix = "retry.jobs[";
  for (auto it = values.lower_bound(jobs_prefix);
       it != values.end() && it->first.compare(0, jobs_prefix.size(), jobs_prefix) == 0; ++it) {
    const auto close = it->first.find("].", jobs_prefix.size());
    const std::string job = it->first.substr(jobs_prefix.size(), close - jobs_prefix.size());
    if (!config.retry.jobs.count(job)) {
      RetryPolicySettings policy = config.retry.defaults;
      assign_policy(jobs_prefix + job + "].", policy);
      config.retry.jobs.emplace(job, policy);
    }
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
  for (const auto& [job, policy] : config.retry.jobs) check_delays(jobs_prefix + job + "].", policy);
  assign(values, "log.level", config.log.level);
  assign(values, "log.format", config.log.format);
  assign(values, "metrics.listen", config.metrics.listen);
  if (const std::string problem = listen_address_problem(config.metrics.listen); !problem.empty()) {
    fail_at(source_name, given.at("metrics.listen"), "metrics.listen", problem);
  }
  assign(values, "web.listen", config.web.listen);
  if (config.web.listen.empty()) {
    fail_at(source_name, given.at("web.listen"), "web.listen", "must not be empty");
  }
  if (const std::string problem = listen_address_problem(config.web.listen); !problem.empty()) {
    fail_at(source_name, given.at("web.listen"), "web.listen", problem);
  }
  assign(values, "web.operator_token_file", config.web.operator_token_file);
  assign(values, "web.viewer_token_file", config.web.viewer_token_file);
  assign(values, "web.allow_unknown_jobs", config.web.allow_unknown_jobs);
  assign(values, "web.max_body_bytes", config.web.max_body_bytes);
  assign(values, "web.threads", config.web.threads);
  assign(values, "web.tls.cert_file", config.web.tls_cert_file);
  assign(values, "web.tls.key_file", config.web.tls_key_file);
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
