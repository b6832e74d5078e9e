#include "sqlite_file.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <string_view>
#include <system_error>

#include "cli_errors.hpp"
#include "program_executor/plugin/trusted_file.hpp"

namespace program_executor::daemon {
namespace {

std::filesystem::path database_file;
std::vector<gid_t> saved_groups;

void become_root_again() {
  if (::seteuid(0) != 0 || ::setegid(0) != 0) return;
  ::setgroups(saved_groups.size(), saved_groups.data());
}

}  // namespace

std::optional<std::filesystem::path> sqlite_file(const config::DatabaseSettings& database) {
  if (database.backend != config::DatabaseBackend::sqlite3) return std::nullopt;
  const std::string& text = database.connection;
  std::string file;
  if (text.find('=') == std::string::npos) {
    file = text;  // SOCI takes a string without key=value pairs as the file name
  } else {
    for (std::size_t at = text.find("db="); at != std::string::npos; at = text.find("db=", at + 1)) {
      if (at != 0 && text[at - 1] != ' ' && text[at - 1] != '\t') continue;
      std::size_t i = at + 3;
      if (i < text.size() && (text[i] == '\'' || text[i] == '"')) {
        const char quote = text[i];
        const auto close = text.find(quote, i + 1);
        file = text.substr(i + 1, close == std::string::npos ? std::string::npos : close - i - 1);
      } else {
        file = text.substr(i, text.find_first_of(" \t", i) - i);
      }
      break;
    }
  }
  if (file.empty() || file == ":memory:" || file.rfind("file:", 0) == 0) return std::nullopt;
  return std::filesystem::path(file);
}

std::string user_name(uid_t uid) {
  if (const passwd* user = ::getpwuid(uid)) return user->pw_name;
  return std::to_string(uid);
}

std::string group_name(gid_t gid) {
  if (const group* entry = ::getgrgid(gid)) return entry->gr_name;
  return std::to_string(gid);
}

std::string describe_file(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return file.string() + " (does not exist)";
  return file.string() + " (owner " + user_name(st.st_uid) + ":" + group_name(st.st_gid) +
         ", mode " + plugin::mode_text(st.st_mode) + ")";
}

void act_as_owner_of(const std::filesystem::path& file) {
  if (::geteuid() != 0) return;
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    const std::filesystem::path directory =
        file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    if (::stat(directory.c_str(), &st) != 0) return;  // opening will say what is missing
  }
  if (st.st_uid == 0) return;
  // Group first: without root's effective uid it could no longer be changed.
  // Only the effective ids: the real ones stay root, the process is short-lived.
  saved_groups.resize(static_cast<std::size_t>(std::max(0, ::getgroups(0, nullptr))));
  if (::getgroups(static_cast<int>(saved_groups.size()), saved_groups.data()) < 0) saved_groups.clear();
  const gid_t groups[] = {st.st_gid};
  if (::setgroups(1, groups) != 0 || ::setegid(st.st_gid) != 0 || ::seteuid(st.st_uid) != 0) {
    throw CommandError(error_code::database,
                       "cannot act as " + user_name(st.st_uid) + ", the owner of " +
                           describe_file(file) + ": " +
                           std::generic_category().message(errno));
  }
  // Root again at exit (the real and saved uid stayed root): the sanitizers'
  // leak check, registered before main, runs after this and must be able to
  // trace the process's own threads.
  std::atexit(become_root_again);
}

std::string explain_sqlite_error(const std::string& message, const std::filesystem::path& file) {
  const bool about_the_file = message.find("readonly database") != std::string::npos ||
                              message.find("unable to open database") != std::string::npos;
  if (!about_the_file) return message;
  return message + " (database file " + describe_file(file) + ", directory " +
         describe_file(file.has_parent_path() ? file.parent_path() : ".") +
         "; this process runs as " + user_name(::geteuid()) +
         "; the daemon's user must be able to write both)";
}

void note_database_file(const std::filesystem::path& file) { database_file = file; }
const std::filesystem::path& noted_database_file() { return database_file; }

}  // namespace program_executor::daemon
