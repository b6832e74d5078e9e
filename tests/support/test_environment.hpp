// Finding the services integration tests run against.
//
// Locally a missing service skips its tests loudly; under CI=true it fails
// them, because a skipped suite proves nothing.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace program_executor::test {

/// True when CI=true is set in the environment.
bool running_in_ci();

/// PE_TEST_AMQP_URL, or amqp://guest:guest@127.0.0.1:5672/ when unset, provided
/// a TCP connection to it succeeds. Otherwise: under CI a failed test
/// assertion, locally a warning, and nullopt (the caller returns early).
std::optional<std::string> amqp_url_or_skip();

/// A fresh directory under the system temp dir, removed on destruction.
class TemporaryDirectory {
 public:
  TemporaryDirectory();
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// A loopback TCP port on which nothing listens (bound, then released): a
/// broker or server that never answers.
int closed_port();

/// A name unique to this process and call, for queues and tables: "<prefix>_<pid>_<n>_<random>".
std::string unique_name(const std::string& prefix);

}  // namespace program_executor::test
