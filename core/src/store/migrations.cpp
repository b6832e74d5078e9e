#include "program_executor/store/migrations.hpp"

#include <algorithm>
#include <map>

#include "embedded_migrations.hpp"
#include "program_executor/store/attempt_record.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/program_store.hpp"
#include "program_executor/store/throughput_store.hpp"

namespace program_executor::store {
namespace {

std::map<std::string, std::vector<Migration>, std::less<>> load_builtin() {
  std::map<std::string, std::vector<Migration>, std::less<>> by_dialect;
  for (const EmbeddedFile& file : detail::embedded_files()) {
    // <dialect>/NNN_<name>.sql, as core/CMakeLists.txt lists them.
    const std::size_t slash = file.name.find('/');
    const std::string_view dialect = file.name.substr(0, slash);
    const std::string_view stem = file.name.substr(slash + 1, file.name.size() - slash - 1 - 4);
    Migration migration;
    migration.version = std::stoi(std::string(stem.substr(0, 3)));
    migration.name = std::string(stem.substr(4));
    migration.sql = std::string(file.content);
    by_dialect[std::string(dialect)].push_back(std::move(migration));
  }
  for (auto& [dialect, migrations] : by_dialect) {
    std::sort(migrations.begin(), migrations.end(),
              [](const Migration& a, const Migration& b) { return a.version < b.version; });
  }
  return by_dialect;
}

void replace_all(std::string& text, std::string_view from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

std::string trimmed(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

}  // namespace

const std::vector<Migration>& builtin_migrations(std::string_view dialect) {
  static const auto all = load_builtin();
  static const std::vector<Migration> none;
  const auto it = all.find(dialect);
  return it == all.end() ? none : it->second;
}

std::string schema_version_table(const std::string& table) { return table + "_schema_version"; }

std::vector<std::string> migration_statements(const Migration& migration, const Dialect& dialect,
                                              const std::string& table) {
  std::vector<std::string> statements;
  std::string current;
  std::size_t start = 0;
  const std::string& sql = migration.sql;
  while (start < sql.size()) {
    std::size_t end = sql.find('\n', start);
    if (end == std::string::npos) end = sql.size();
    const std::string line = trimmed(sql.substr(start, end - start));
    start = end + 1;
    if (line.empty() || line.rfind("--", 0) == 0) continue;
    if (!current.empty()) current += '\n';
    if (line.back() == ';') {
      current += line.substr(0, line.size() - 1);
      statements.push_back(std::move(current));
      current.clear();
    } else {
      current += line;
    }
  }
  if (!trimmed(current).empty()) {
    throw StoreError("migration " + std::to_string(migration.version) + " (" + migration.name +
                     ") does not end its last statement with ';'");
  }
  for (std::string& statement : statements) {
    replace_all(statement, "{table}", dialect.quote(table));
    replace_all(statement, "{run_id_index}", dialect.quote(table + "_run_id_index"));
    replace_all(statement, "{overdue_index}", dialect.quote(table + "_overdue_index"));
    replace_all(statement, "{unfinished_index}", dialect.quote(table + "_unfinished_index"));
    replace_all(statement, "{jobs_index}", dialect.quote(table + "_jobs_index"));
    replace_all(statement, "{throughput_table}", dialect.quote(throughput_table(table)));
    replace_all(statement, "{attempts_table}", dialect.quote(attempts_table(table)));
    replace_all(statement, "{attempts_run_index}", dialect.quote(attempts_table(table) + "_run_index"));
  }
  return statements;
}

}  // namespace program_executor::store
