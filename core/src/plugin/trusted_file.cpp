// Trust checks for plugin files. A plugin runs with the daemon's privileges,
// so whoever can write a plugin, or rename things in a directory above it,
// owns the daemon: only root and the daemon's own user may.
#include "program_executor/plugin/trusted_file.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <system_error>
#include <utility>

namespace program_executor::plugin {
namespace fs = std::filesystem;
namespace {

std::string error_text(int error) { return std::generic_category().message(error); }

// Closes a descriptor on every exit path.
class Descriptor {
 public:
  explicit Descriptor(int fd) noexcept : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string user_text(uid_t uid) {
  std::string text = "uid " + std::to_string(uid);
  passwd entry{};
  passwd* found = nullptr;
  std::array<char, 4096> buffer{};
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    text += std::string(" (") + found->pw_name + ")";
  }
  return text;
}

std::string group_text(gid_t gid) {
  group entry{};
  group* found = nullptr;
  std::array<char, 4096> buffer{};
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return std::string("group '") + found->gr_name + "'";
  }
  return "group " + std::to_string(gid);
}

std::string trusted_owners_text(const TrustPolicy& policy) {
  std::string text;
  for (const uid_t uid : policy.trusted_owners) {
    if (!text.empty()) text += " or ";
    text += uid == 0 ? std::string("root") : "the daemon's user, " + user_text(uid);
  }
  return text.empty() ? std::string("nobody (no trusted owner)") : text;
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// `what` names the path in messages: "the file", "directory '/x'".
void check_owner(const struct stat& st, const std::string& what, const TrustPolicy& policy) {
  const auto& owners = policy.trusted_owners;
  if (std::find(owners.begin(), owners.end(), st.st_uid) == owners.end()) {
    throw UntrustedFileError(what + " is owned by " + user_text(st.st_uid) + ", not by " +
                             trusted_owners_text(policy));
  }
}

// A directory with the sticky bit (as /tmp) lets others add entries but not
// rename or remove ours, so it may be writable when `sticky_ok`.
void check_not_writable(const struct stat& st, const std::string& what, bool sticky_ok,
                        const std::string& consequence) {
  if (sticky_ok && (st.st_mode & S_ISVTX) != 0) return;
  if ((st.st_mode & S_IWOTH) != 0) {
    throw UntrustedFileError(what + " is writable by every user (mode " + mode_text(st.st_mode) +
                             "), so " + consequence);
  }
  if ((st.st_mode & S_IWGRP) != 0) {
    throw UntrustedFileError(what + " is writable by " + group_text(st.st_gid) + " (mode " +
                             mode_text(st.st_mode) + "), so " + consequence);
  }
}

fs::path real_path(const fs::path& path, const std::string& what) {
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                       &std::free);
  if (!resolved) throw FileOpenError("cannot open " + what + ": " + error_text(errno));
  return fs::path(resolved.get());
}

// Whether `path` lies strictly below `directory` (both absolute, resolved).
bool is_below(const fs::path& path, const fs::path& directory) {
  auto dir_it = directory.begin();
  auto path_it = path.begin();
  for (; dir_it != directory.end(); ++dir_it, ++path_it) {
    if (dir_it->empty()) continue;  // a trailing separator
    if (path_it == path.end() || *path_it != *dir_it) return false;
  }
  return path_it != path.end();
}

// Checks one directory given by an absolute, resolved path.
void check_directory(const fs::path& directory, bool sticky_ok, const std::string& what,
                     const TrustPolicy& policy) {
  struct stat st {};
  if (::lstat(directory.c_str(), &st) != 0) {
    throw FileOpenError("cannot examine " + what + ": " + error_text(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    // realpath() resolved it a moment ago: it was replaced meanwhile.
    throw UntrustedFileError(what + " was replaced by a symbolic link while being checked");
  }
  if (!S_ISDIR(st.st_mode)) throw FileOpenError(what + " is not a directory");
  check_owner(st, what, policy);
  check_not_writable(st, what, sticky_ok, "others could replace the plugins below it");
}

// Checks every directory from "/" down to `directory` (absolute, resolved).
// `last_what` names `directory` itself in messages.
void check_chain(const fs::path& directory, const std::string& last_what,
                 const TrustPolicy& policy) {
  fs::path current;
  for (auto it = directory.begin(); it != directory.end(); ++it) {
    if (it->empty()) continue;
    current /= *it;
    if (std::next(it) == directory.end()) {
      // Others may not add files to the plugin directory itself, sticky or not.
      struct stat st {};
      if (::lstat(current.c_str(), &st) != 0) {
        throw FileOpenError("cannot examine " + last_what + ": " + error_text(errno));
      }
      if (!S_ISDIR(st.st_mode)) throw FileOpenError(last_what + " is not a directory");
      check_owner(st, last_what, policy);
      check_not_writable(st, last_what, false, "others could add or replace plugins in it");
    } else {
      check_directory(current, true, "directory '" + current.string() + "'", policy);
    }
  }
}

}  // namespace

TrustPolicy TrustPolicy::for_this_process() {
  TrustPolicy policy;
  policy.trusted_owners.push_back(0);
  if (::geteuid() != 0) policy.trusted_owners.push_back(::geteuid());
  return policy;
}

TrustedFile::TrustedFile(TrustedFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), resolved_(std::move(other.resolved_)) {}

TrustedFile& TrustedFile::operator=(TrustedFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    resolved_ = std::move(other.resolved_);
  }
  return *this;
}

TrustedFile::~TrustedFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string TrustedFile::load_path() const { return "/proc/self/fd/" + std::to_string(fd_); }

int TrustedFile::release() noexcept { return std::exchange(fd_, -1); }

void check_trusted_directory(const fs::path& directory, const TrustPolicy& policy) {
  const fs::path real = real_path(directory, "the plugin directory '" + directory.string() + "'");
  check_chain(real, "the plugin directory '" + real.string() + "'", policy);
}

TrustedFile open_trusted_file(const fs::path& file, const TrustPolicy& policy) {
  const fs::path name = file.filename();
  if (name.empty() || name == "." || name == "..") {
    throw FileOpenError("not a file name");
  }
  const fs::path directory = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const fs::path real_directory =
      real_path(directory, "the directory '" + directory.string() + "'");
  check_chain(real_directory, "the plugin directory '" + real_directory.string() + "'", policy);

  fs::path target = real_directory / name;
  struct stat link_st {};
  if (::lstat(target.c_str(), &link_st) != 0) throw FileOpenError(error_text(errno));
  if (S_ISLNK(link_st.st_mode)) {
    // Followed only into the plugin directory's own tree: a link elsewhere
    // would load a file whose directories nobody checked.
    std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(target.c_str(), nullptr),
                                                         &std::free);
    if (!resolved) {
      const int error = errno;
      std::array<char, PATH_MAX> link{};
      const ssize_t length = ::readlink(target.c_str(), link.data(), link.size() - 1);
      const std::string link_text =
          length > 0 ? std::string(link.data(), static_cast<std::size_t>(length)) : "?";
      throw FileOpenError("is a symbolic link to '" + link_text +
                          "', which cannot be opened: " + error_text(error));
    }
    const fs::path resolved_path(resolved.get());
    if (!is_below(resolved_path, real_directory)) {
      throw UntrustedFileError("is a symbolic link to '" + resolved_path.string() +
                               "', outside the plugin directory '" + real_directory.string() +
                               "'");
    }
    // The directories between the plugin directory and the target.
    fs::path current = real_directory;
    const fs::path relative = resolved_path.parent_path().lexically_relative(real_directory);
    for (const fs::path& part : relative) {
      if (part.empty() || part == ".") continue;
      current /= part;
      check_directory(current, false, "directory '" + current.string() + "'", policy);
    }
    target = resolved_path;
    if (::lstat(target.c_str(), &link_st) != 0) throw FileOpenError(error_text(errno));
  }
  // Refused before open(): opening a device or a FIFO can have effects of its own.
  if (!S_ISREG(link_st.st_mode)) {
    throw UntrustedFileError(std::string("is not a regular file but ") + kind_of(link_st.st_mode));
  }

  Descriptor fd(::open(target.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) throw FileOpenError(error_text(errno));
  // From here on every check is on the open file: what passes is what dlopen gets.
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw FileOpenError(error_text(errno));
  if (st.st_dev != link_st.st_dev || st.st_ino != link_st.st_ino || !S_ISREG(st.st_mode)) {
    throw UntrustedFileError("was replaced while being checked");
  }
  check_owner(st, "the file", policy);
  check_not_writable(st, "the file", false, "others could change the plugin");
  return TrustedFile(fd.release(), target);
}

std::string mode_text(mode_t mode) {
  std::array<char, 8> text{};
  std::snprintf(text.data(), text.size(), "%04o", static_cast<unsigned>(mode & 07777));
  return text.data();
}

}  // namespace program_executor::plugin
