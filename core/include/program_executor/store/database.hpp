// The connection to the bookkeeping database: a SOCI session pool, the SQL
// dialect of its backend, and the table's schema.
#pragma once

#include <memory>
#include <string>

#include "program_executor/config/config.hpp"
#include "program_executor/store/program_store.hpp"

namespace soci {
class connection_pool;
class session;
}  // namespace soci

namespace program_executor::store {

/// What differs between the SQL databases we support.
enum class Backend { sqlite3 };

Backend parse_backend(const std::string& name);

class Database {
 public:
  /// Opens `pool_size` sessions. SOCI loads backends only from the directory
  /// this project was built against (never the working directory).
  Database(const config::DatabaseSettings& settings, std::size_t pool_size);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Creates the table and its run_id index when missing (as the original does).
  void ensure_schema();

  /// A ProgramStore over this database; shares the pool, thread-safe.
  std::unique_ptr<ProgramStore> program_store();

  Backend backend() const noexcept { return backend_; }
  const std::string& table() const noexcept { return table_; }
  soci::connection_pool& pool() noexcept { return *pool_; }

 private:
  Backend backend_;
  std::string table_;
  std::size_t pool_size_;
  std::unique_ptr<soci::connection_pool> pool_;
};

}  // namespace program_executor::store
