// ProgramStore on a SOCI session pool.
#pragma once

#include <string>

#include "program_executor/store/program_store.hpp"

namespace program_executor::store {

class Database;

class SqlProgramStore : public ProgramStore {
 public:
  explicit SqlProgramStore(Database& database);

  void insert(const NewProgram& program) override;
  std::optional<ProgramRow> find(const std::string& run_id) override;
  bool advance(const std::string& run_id, int step) override;
  bool finish(const std::string& run_id, int step) override;
  bool record_retry(const std::string& run_id, int step, std::string_view message) override;
  bool fail(const std::string& run_id, int step, std::string_view message) override;
  bool cancel(const std::string& run_id, std::string_view message) override;
  nlohmann::json update_job_data(
      const std::string& run_id, const std::string& job_name,
      const std::function<nlohmann::json(const nlohmann::json&)>& modify) override;

 private:
  Database& database_;
  std::string table_;  ///< already quoted
  std::string now_;    ///< SQL expression for the current UTC time
};

}  // namespace program_executor::store
