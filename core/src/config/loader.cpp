// Turns validated values into the Config struct, and reads the file.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>
#include <system_error>

#include "program_executor/config/config.hpp"
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

}  // namespace

Config load_string(std::string_view yaml, std::string_view source_name) {
  const Values values = load_values(yaml, source_name, schema());
  Config config;
  config.source = std::string(source_name);
  assign(values, "amqp.url", config.amqp.url);
  assign(values, "amqp.queue", config.amqp.queue);
  assign(values, "amqp.durable", config.amqp.durable);
  assign(values, "amqp.prefetch", config.amqp.prefetch);
  assign(values, "amqp.heartbeat_seconds", config.amqp.heartbeat_seconds);
  assign(values, "amqp.tls.ca_file", config.amqp.tls.ca_file);
  assign(values, "amqp.tls.cert_file", config.amqp.tls.cert_file);
  assign(values, "amqp.tls.key_file", config.amqp.tls.key_file);
  assign(values, "amqp.tls.verify_peer", config.amqp.tls.verify_peer);
  assign(values, "amqp.tls.verify_hostname", config.amqp.tls.verify_hostname);
  assign(values, "database.backend", config.database.backend);
  assign(values, "database.connection", config.database.connection);
  assign(values, "database.table", config.database.table);
  assign(values, "plugins.directory", config.plugins.directory);
  assign(values, "workers", config.workers);
  int grace_seconds = static_cast<int>(config.shutdown_grace.count());
  assign(values, "shutdown_grace_seconds", grace_seconds);
  config.shutdown_grace = std::chrono::seconds(grace_seconds);
  assign(values, "log.level", config.log.level);
  assign(values, "log.format", config.log.format);
  return config;
}

Config load_file(const std::filesystem::path& path) { return load_string(read_file(path), path.string()); }

}  // namespace program_executor::config
