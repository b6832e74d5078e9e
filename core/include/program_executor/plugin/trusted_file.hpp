// Opening plugin files only when nobody but their owner or root could have
// written them, and keeping them open so the checked file is the loaded one.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace program_executor::plugin {

/// A plugin file (or a directory above it) that must not be loaded; what()
/// says which path and why, e.g. "directory '/opt/x' is writable by every
/// user (mode 0777)".
class UntrustedFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A plugin file that cannot be opened at all (missing, permission denied,
/// a dangling symbolic link); what() is the reason.
class FileOpenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The permission bits of a file mode as four octal digits ("0640"), as
/// every message about a file's mode shows them.
std::string mode_text(mode_t mode);

/// Who may own plugin files and every directory above them.
struct TrustPolicy {
  std::vector<uid_t> trusted_owners;  ///< root and the process's effective user

  /// root (uid 0) and geteuid().
  static TrustPolicy for_this_process();
};

/// An open plugin file that passed every check. The descriptor stays open as
/// long as the object lives: the library is loaded through load_path(), which
/// names this very open file, so a file swapped in after the checks is never
/// the one loaded.
class TrustedFile {
 public:
  TrustedFile(const TrustedFile&) = delete;
  TrustedFile& operator=(const TrustedFile&) = delete;
  TrustedFile(TrustedFile&& other) noexcept;
  TrustedFile& operator=(TrustedFile&& other) noexcept;
  ~TrustedFile();

  int fd() const noexcept { return fd_; }
  /// The file after symbolic links are resolved (inside the plugin directory).
  const std::filesystem::path& resolved_path() const noexcept { return resolved_; }
  /// "/proc/self/fd/<fd>": the path to hand to dlopen.
  std::string load_path() const;
  /// Gives up the descriptor without closing it (returns it; the object is then empty).
  int release() noexcept;

 private:
  friend TrustedFile open_trusted_file(const std::filesystem::path&, const TrustPolicy&);
  TrustedFile(int fd, std::filesystem::path resolved) noexcept
      : fd_(fd), resolved_(std::move(resolved)) {}

  int fd_ = -1;
  std::filesystem::path resolved_;
};

/// Checks a plugin directory: it and every directory above it are owned by a
/// trusted owner and writable by nobody else (a directory above it may be
/// writable by others when it has the sticky bit, as /tmp). Throws
/// UntrustedFileError, or FileOpenError when it cannot be examined.
void check_trusted_directory(const std::filesystem::path& directory, const TrustPolicy& policy);

/// Opens `file` read-only after checking its directory as above and the file
/// itself: a regular file (a symbolic link is followed only to a file inside
/// the same directory tree), owned by a trusted owner and writable by nobody
/// else. The file's checks are made on the open descriptor. Throws
/// UntrustedFileError or FileOpenError.
TrustedFile open_trusted_file(const std::filesystem::path& file, const TrustPolicy& policy);

}  // namespace program_executor::plugin
