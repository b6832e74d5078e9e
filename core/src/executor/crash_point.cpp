#include "program_executor/executor/crash_point.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

namespace program_executor::executor {
namespace {

// One generator per thread: job threads of several workers pass crash points
// concurrently, and a shared engine would need a lock on the hot path.
double uniform_draw() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{
        device(), device(), static_cast<unsigned>(::getpid()),
        static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id()))};
    return std::mt19937_64(seed);
  }();
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

long long realtime_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One write(2): the line must reach the log whole even though the process
// dies right after, and must not interleave with the logger's lines.
void write_line(const std::string& line) {
  std::string text = line + "\n";
  const char* data = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, data, left);
    if (n <= 0) return;
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

CrashPointSettings parse_crash_point_settings(const char* name, const char* probability) {
  CrashPointSettings settings;
  if (name != nullptr) settings.name = name;
  if (probability == nullptr || *probability == '\0') return settings;
  const std::string text = probability;
  std::size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(value) || value < 0.0 || value > 1.0) {
    throw std::invalid_argument("PE_CRASH_PROBABILITY='" + text +
                                "' is not a number between 0 and 1");
  }
  settings.probability = value;
  return settings;
}

bool crash_point_fires(const CrashPointSettings& settings, std::string_view point, double draw) {
  if (settings.name.empty() || settings.name != point) return false;
  return draw < settings.probability;
}

const CrashPointSettings& process_crash_point_settings() {
  static const CrashPointSettings settings = [] {
    try {
      return parse_crash_point_settings(std::getenv("PE_CRASH_POINT"),
                                        std::getenv("PE_CRASH_PROBABILITY"));
    } catch (const std::invalid_argument& e) {
      write_line(nlohmann::json{{"event", "crash_point.invalid"},
                                {"message", std::string(e.what()) + "; crash points disarmed"}}
                     .dump());
      return CrashPointSettings{};
    }
  }();
  return settings;
}

std::optional<std::string> crash_point_decision(std::string_view point) {
  const CrashPointSettings& settings = process_crash_point_settings();
  // The draw only when the name matches, so unarmed points cost a comparison.
  if (settings.name.empty() || settings.name != point) return std::nullopt;
  if (!crash_point_fires(settings, point, uniform_draw())) return std::nullopt;
  return nlohmann::json{{"event", "crash_point.fired"},
                        {"point", std::string(point)},
                        {"pid", static_cast<long long>(::getpid())},
                        {"t_ns", realtime_ns()}}
      .dump();
}

void crash_point(std::string_view point) {
  const std::optional<std::string> line = crash_point_decision(point);
  if (!line) return;
  write_line(*line);
  ::raise(SIGKILL);
}

}  // namespace program_executor::executor
