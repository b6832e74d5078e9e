#include "service_signals.hpp"

#include <pthread.h>

#include <ctime>

#include <systemd/sd-daemon.h>

namespace program_executor::daemon {

ServiceSignals::ServiceSignals() {
  sigemptyset(&handled_);
  sigaddset(&handled_, SIGTERM);
  sigaddset(&handled_, SIGINT);
  sigaddset(&handled_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &handled_, nullptr);
}

std::optional<ServiceSignal> ServiceSignals::classify(int received) noexcept {
  if (received == SIGTERM || received == SIGINT) {
    stopped_by_ = received;
    return ServiceSignal::stop;
  }
  if (received == SIGHUP) return ServiceSignal::reload;
  return std::nullopt;  // timed out, or interrupted by a signal not ours
}

std::optional<ServiceSignal> ServiceSignals::wait(std::chrono::nanoseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto left = until - std::chrono::steady_clock::now();
    if (left.count() <= 0) return std::nullopt;
    timespec remaining{};
    remaining.tv_sec = static_cast<time_t>(left.count() / 1000000000);
    remaining.tv_nsec = static_cast<long>(left.count() % 1000000000);
    if (const auto signal = classify(sigtimedwait(&handled_, nullptr, &remaining))) return signal;
  }
}

ServiceSignal ServiceSignals::wait() {
  while (true) {
    if (const auto signal = classify(sigwaitinfo(&handled_, nullptr))) return *signal;
  }
}

executor::StartupPause waiting_for(ServiceSignals& signals, const char* server) {
  return [&signals, server](std::chrono::milliseconds delay) {
    sd_notifyf(0, "STATUS=waiting for %s, next attempt in %lld ms", server,
               static_cast<long long>(delay.count()));
    const auto until = std::chrono::steady_clock::now() + delay;
    while (true) {
      const auto signal = signals.wait(until - std::chrono::steady_clock::now());
      if (!signal) return true;
      if (*signal == ServiceSignal::stop) return false;
    }
  };
}

}  // namespace program_executor::daemon
