#include "support/test_environment.hpp"

#include <cstdio>
#include <cstdlib>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <regex>

#include <catch2/catch.hpp>

namespace program_executor::test {
namespace {

// Whether a TCP connect to host:port succeeds within the OS default timeout.
bool tcp_reachable(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return false;
  bool ok = false;
  for (addrinfo* a = found; a != nullptr && !ok; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    ok = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    ::close(fd);
  }
  freeaddrinfo(found);
  return ok;
}

}  // namespace

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::optional<std::string> amqp_url_or_skip() {
  const char* env = std::getenv("PE_TEST_AMQP_URL");
  std::string url = env != nullptr ? env : "amqp://guest:guest@127.0.0.1:5672/";
  static const std::regex host_port(R"(^amqps?://(?:[^@/]*@)?([^:/]+)(?::(\d+))?)");
  std::smatch m;
  std::string host = "127.0.0.1";
  std::string port = url.rfind("amqps", 0) == 0 ? "5671" : "5672";
  if (std::regex_search(url, m, host_port)) {
    host = m[1];
    if (m[2].matched) port = m[2];
  }
  if (tcp_reachable(host, port)) return url;
  const std::string why = "RabbitMQ is not reachable at " + host + ":" + port +
                          " (set PE_TEST_AMQP_URL); integration test not run";
  if (running_in_ci()) FAIL(why);
  WARN("SKIPPED: " << why);
  return std::nullopt;
}

TemporaryDirectory::TemporaryDirectory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "pe-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TemporaryDirectory::~TemporaryDirectory() {
  // PE_TEST_KEEP_DIRS=1 keeps configs and daemon logs for a post-mortem.
  if (const char* keep = std::getenv("PE_TEST_KEEP_DIRS"); keep != nullptr && *keep == '1') {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const auto salt = std::random_device{}();
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(salt % 100000);
}

}  // namespace program_executor::test
