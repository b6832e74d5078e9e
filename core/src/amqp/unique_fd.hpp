// The one owner of a POSIX file descriptor in amqp/: closed on every path.
#pragma once

namespace program_executor::amqp {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  /// Takes `fd` (-1: owns nothing).
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  /// Closes the descriptor held, if any, and takes `fd`.
  void reset(int fd = -1) noexcept;
  /// Gives the descriptor up without closing it.
  int release() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace program_executor::amqp
