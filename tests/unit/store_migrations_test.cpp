// The built-in migrations match core/sql, split and substitute as documented,
// and connection strings and dialects come out right (no database needed).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>

#include <catch2/catch.hpp>

#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "program_executor/store/migrations.hpp"

using namespace program_executor;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const char* const dialects[] = {"sqlite3", "postgresql", "mysql"};

std::string fmt_version(int version) {
  char text[16];
  std::snprintf(text, sizeof text, "%03d", version);
  return text;
}

}  // namespace

TEST_CASE("the built-in migrations are exactly the files of core/sql", "[store][migrations]") {
  const fs::path root = fs::path(PE_SOURCE_DIR) / "core" / "sql";
  std::size_t files = 0;
  for (const char* dialect : dialects) {
    std::map<int, fs::path> on_disk;
    for (const auto& entry : fs::directory_iterator(root / dialect)) {
      if (entry.path().extension() != ".sql") continue;
      on_disk[std::stoi(entry.path().filename().string().substr(0, 3))] = entry.path();
    }
    const auto& built_in = store::builtin_migrations(dialect);
    INFO(dialect);
    // A file missing here is missing from the list in core/CMakeLists.txt.
    REQUIRE(built_in.size() == on_disk.size());
    for (const auto& migration : built_in) {
      REQUIRE(on_disk.count(migration.version) == 1);
      const fs::path& file = on_disk[migration.version];
      INFO(file.string());
      CHECK(file.filename().string() ==
            fmt_version(migration.version) + "_" + migration.name + ".sql");
      if (migration.sql != read_text(file)) {
        FAIL("the built-in migration differs from its file (a stale build?)");
      }
      ++files;
    }
  }
  CHECK(files >= 6);
}

TEST_CASE("every dialect has the same versions, 1..N without gaps", "[store][migrations]") {
  std::vector<std::string> reference;
  for (const auto& m : store::builtin_migrations("sqlite3")) {
    reference.push_back(std::to_string(m.version) + " " + m.name);
  }
  for (std::size_t i = 0; i < reference.size(); ++i) {
    CHECK(reference[i].rfind(std::to_string(i + 1) + " ", 0) == 0);
  }
  for (const char* dialect : dialects) {
    std::vector<std::string> names;
    for (const auto& m : store::builtin_migrations(dialect)) {
      names.push_back(std::to_string(m.version) + " " + m.name);
    }
    CHECK(names == reference);
  }
  CHECK(store::builtin_migrations("oracle").empty());
}

TEST_CASE("migration statements: comments dropped, split at semicolons, identifiers quoted per dialect",
          "[store][migrations]") {
  const store::Migration migration{
      7, "example",
      "-- a comment; with a semicolon\n"
      "ALTER TABLE {table} ADD COLUMN a int NULL;\n"
      "\n"
      "CREATE INDEX {overdue_index}\n"
      "  ON {table} (a);\n"
      "CREATE UNIQUE INDEX {run_id_index} ON {table} (run_id);\n"};
  const auto pg = store::migration_statements(migration, *store::make_dialect("postgresql"), "jobs");
  CHECK(pg == std::vector<std::string>{"ALTER TABLE \"jobs\" ADD COLUMN a int NULL",
                                       "CREATE INDEX \"jobs_overdue_index\"\nON \"jobs\" (a)",
                                       "CREATE UNIQUE INDEX \"jobs_run_id_index\" ON \"jobs\" (run_id)"});
  const auto my = store::migration_statements(migration, *store::make_dialect("mysql"), "jobs");
  CHECK(my[0] == "ALTER TABLE `jobs` ADD COLUMN a int NULL");
  const store::Migration unterminated{8, "broken", "ALTER TABLE {table} ADD COLUMN b int\n"};
  CHECK_THROWS_WITH(store::migration_statements(unterminated, *store::make_dialect("sqlite3"), "t"),
                    Catch::Contains("does not end its last statement"));
}

TEST_CASE("the built-in migrations only add: no DROP, no DELETE, no data rewrite",
          "[store][migrations]") {
  // An UPDATE may only fill a column its own migration adds, where it is NULL.
  const std::regex added(R"(ADD COLUMN (\w+) )");
  const std::regex fill(R"(^UPDATE \S+ SET (\w+) = [^,]* WHERE \1 IS NULL( AND .*)?$)");
  for (const char* dialect : dialects) {
    for (const auto& migration : store::builtin_migrations(dialect)) {
      std::set<std::string> new_columns;
      for (const auto& statement :
           store::migration_statements(migration, *store::make_dialect(dialect), "programs")) {
        INFO(dialect << " " << migration.version << ": " << statement);
        std::smatch match;
        if (std::regex_search(statement, match, added)) new_columns.insert(match[1]);
        const bool fills_new_column = std::regex_match(statement, match, fill) &&
                                      new_columns.count(match[1]) > 0;
        const bool additive = statement.rfind("CREATE ", 0) == 0 ||
                              statement.find(" ADD COLUMN ") != std::string::npos ||
                              fills_new_column;
        CHECK(additive);
        CHECK(statement.find("DROP") == std::string::npos);
        CHECK(statement.find("RETURNING") == std::string::npos);  // MySQL 8 has none
      }
    }
  }
}

TEST_CASE("connection strings: defaults added, URLs translated, mismatches refused",
          "[store][connection]") {
  using store::Backend;
  using store::soci_connection_string;
  CHECK(soci_connection_string(Backend::sqlite3, "db=/tmp/x.db") == "db=/tmp/x.db timeout=30");
  CHECK(soci_connection_string(Backend::sqlite3, "db=/tmp/x.db timeout=5") == "db=/tmp/x.db timeout=5");
  CHECK(soci_connection_string(Backend::postgresql, "host=h dbname=d") ==
        "host=h dbname=d connect_timeout=10");
  CHECK(soci_connection_string(Backend::postgresql, "postgresql://u:p@h:5432/d?sslmode=require") ==
        "postgresql://u:p@h:5432/d?sslmode=require");
  CHECK(soci_connection_string(Backend::mysql, "mysql://app:s%40cret%20x@db.example:3307/jobs?unix_socket=/run/m.sock") ==
        "host=db.example port=3307 db=jobs user=app password='s@cret x' unix_socket=/run/m.sock "
        "connect_timeout=10 charset=utf8mb4");
  CHECK(soci_connection_string(Backend::mysql, "host=h db=d connect_timeout=3 charset=latin1") ==
        "host=h db=d connect_timeout=3 charset=latin1");
  CHECK(soci_connection_string(Backend::odbc, "DSN=x;UID=u") == "DSN=x;UID=u");
  CHECK_THROWS_WITH(soci_connection_string(Backend::mysql, "postgresql://h/d"),
                    Catch::Contains("database.backend is mysql"));
  CHECK_THROWS_WITH(soci_connection_string(Backend::sqlite3, "mysql://h/d"),
                    Catch::Contains("database.backend is sqlite3"));
  CHECK(soci_connection_string(Backend::mysql, "mysql://u:it's@h/d") ==
        "host=h db=d user=u password='it\\'s' connect_timeout=10 charset=utf8mb4");
  CHECK(soci_connection_string(Backend::mysql, "mysql://u:back%5Cslash@h/d") ==
        "host=h db=d user=u password='back\\\\slash' connect_timeout=10 charset=utf8mb4");
}

TEST_CASE("backends by name", "[store]") {
  CHECK(store::parse_backend("postgresql") == store::Backend::postgresql);
  CHECK(config::to_string(store::parse_backend("odbc")) == "odbc");
  CHECK_THROWS_WITH(store::parse_backend("oracle"),
                    Catch::Contains("supported: sqlite3, postgresql, mysql, odbc"));
  CHECK_THROWS_AS(store::make_dialect("oracle"), store::StoreError);
}

TEST_CASE("each dialect quotes identifiers, reads timestamps in UTC and casts JSON as needed",
          "[store][dialect]") {
  const auto pg = store::make_dialect("postgresql");
  const auto my = store::make_dialect("mysql");
  const auto lite = store::make_dialect("sqlite3");
  CHECK(pg->quote("Order") == "\"Order\"");
  CHECK(my->quote("Order") == "`Order`");
  CHECK(lite->quote("Order") == "\"Order\"");
  CHECK_THAT(pg->timestamp_text("c"), Catch::Contains("AT TIME ZONE 'UTC'"));
  CHECK_THAT(my->now(), Catch::Contains("UTC_TIMESTAMP"));
  CHECK(pg->json_value("x") == "CAST(:x AS jsonb)");
  CHECK(my->json_value("x") == ":x");
  CHECK(pg->json_text("c").find("::") == std::string::npos);  // ODBC would take ":text" for a parameter
  CHECK(my->from_dual() == " FROM DUAL");
  CHECK(lite->lock_rows().empty());
  CHECK(pg->lock_rows() == " FOR UPDATE");
  CHECK(pg->transactional_ddl());
  CHECK_FALSE(my->transactional_ddl());
}
