// The SQLite file behind database.connection, as the operator's commands
// treat it: opened read-only by commands that change nothing, written as its
// owner when root runs a command, and named with its owner and mode in errors
// (issue 19, item 2: a root-owned file stops the daemon's user from writing).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "program_executor/config/config.hpp"

namespace program_executor::daemon {

/// The file of a sqlite3 connection string ("db=FILE ..." or just "FILE"),
/// or nullopt for another backend or an in-memory database.
std::optional<std::filesystem::path> sqlite_file(const config::DatabaseSettings& database);

/// "FILE (owner USER:GROUP, mode 0640)", or "FILE (does not exist)".
std::string describe_file(const std::filesystem::path& file);

/// The user and group names of a uid and gid, or their numbers.
std::string user_name(uid_t uid);
std::string group_name(gid_t gid);

/// When running as root: takes the effective user and group of the owner of
/// `file`, or of its directory when the file does not exist yet, so that
/// SQLite creates no file (the database, its -wal and -shm) that the daemon's
/// user cannot write. Does nothing when not root or when that owner is root.
void act_as_owner_of(const std::filesystem::path& file);

/// `message` of a failed database operation, with the file, its owner and
/// mode and who this process runs as appended when SQLite says it cannot
/// write or open the file ("attempt to write a readonly database").
std::string explain_sqlite_error(const std::string& message, const std::filesystem::path& file);

/// The SQLite file this command (or the daemon) uses, for explain_sqlite_error
/// in the one place errors are printed; empty when none.
void note_database_file(const std::filesystem::path& file);
const std::filesystem::path& noted_database_file();

}  // namespace program_executor::daemon
