// Versioned schema migrations: SQL files per dialect under core/sql/<dialect>/,
// built into the program, applied in order and recorded in <table>_schema_version.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace program_executor::store {

class Dialect;

/// One step of the schema, as written in core/sql/<dialect>/NNN_<name>.sql.
struct Migration {
  int version = 0;
  std::string name;  ///< file name without NNN_ and .sql, e.g. "step_protocol"
  std::string sql;   ///< the file's text (see core/sql/README.md for its rules)
};

/// The migrations built into this program for a dialect ("sqlite3",
/// "postgresql", "mysql"), ordered by version (1, 2, ...).
const std::vector<Migration>& builtin_migrations(std::string_view dialect);

/// A migration's statements, ready to run against `table`: comment lines
/// dropped, split at ';' ending a line, and the placeholders {table},
/// {run_id_index}, {overdue_index}, {throughput_table}, {attempts_table} and the
/// other index placeholders replaced by quoted identifiers.
std::vector<std::string> migration_statements(const Migration& migration, const Dialect& dialect,
                                              const std::string& table);

/// The schema version table of `table`.
std::string schema_version_table(const std::string& table);

/// Where a table's schema stands.
struct SchemaStatus {
  bool table_exists = false;
  bool versioned = false;  ///< the schema version table exists
  int version = 0;         ///< highest recorded migration; 0 if none
  int latest = 0;          ///< highest migration this program knows
  bool current() const noexcept { return table_exists && versioned && version >= latest; }
};

/// What a migration run did.
struct MigrationReport {
  int from = 0;  ///< version before the run (0: no version table)
  int to = 0;    ///< version after it
  /// An existing table without a version table (program-executor-js's, or one
  /// created before versioning) was recorded as version 1 instead of created.
  bool adopted = false;
  std::vector<std::string> applied;  ///< "2 step_protocol", ... in order
  std::vector<std::string> skipped;  ///< statements not run: their column or index existed
};

}  // namespace program_executor::store
