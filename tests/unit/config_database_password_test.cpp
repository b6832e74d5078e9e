// database.password_file: the password goes into the connection string in the
// syntax of whoever reads it (libpq, SOCI's MySQL backend, an ODBC driver
// manager), replaces any password written there, and shows up in no error.
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"
#include "program_executor/config/database_password.hpp"
#include "support/scoped_env.hpp"
#include "support/test_environment.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;
using program_executor::test::TemporaryDirectory;

namespace {

using program_executor::test::ScopedEnv;

// Every character the syntaxes below treat specially.
const std::string nasty = R"(a b'c\d"e}f{g;h@i:j/k%l?m#n=o&p)";

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}


// libpq's (and SOCI mysql's) reading of one quoted or bare value starting at
// `i`: what the server will receive as the password.
std::string unquote_key_value(const std::string& text, std::size_t i) {
  std::string value;
  const bool quoted = text[i] == '\'';
  if (quoted) ++i;
  for (; i < text.size(); ++i) {
    if (quoted && text[i] == '\'') break;
    if (!quoted && text[i] == ' ') break;
    if (text[i] == '\\') ++i;
    value += text[i];
  }
  return value;
}

std::string percent_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

TEST_CASE("postgresql key=value: password='...' with libpq quoting, replacing any other",
          "[config][secrets][database]") {
  using cfg::with_database_password;
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "host=db dbname=jobs user=pe", "plain") ==
        "host=db dbname=jobs user=pe password='plain'");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "host=db password=old user=pe", "new") ==
        "host=db user=pe password='new'");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "host=db password = 'o l\\'d' user=pe", "new") ==
        "host=db user=pe password='new'");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "host=db  sslmode=verify-full  ", "it's\\") ==
        "host=db sslmode=verify-full password='it\\'s\\\\'");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "", "p") == "password='p'");
  const std::string out = with_database_password(cfg::DatabaseBackend::postgresql, "host=db user=pe", nasty);
  REQUIRE(out.rfind("host=db user=pe password=", 0) == 0);
  CHECK(unquote_key_value(out, out.find("password=") + 9) == nasty);
}

TEST_CASE("postgresql URL: the password percent-encoded into the userinfo",
          "[config][secrets][database]") {
  using cfg::with_database_password;
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "postgresql://pe@db:5432/jobs?sslmode=verify-full",
                               "p@ss:w/rd%?# '") ==
        "postgresql://pe:p%40ss%3Aw%2Frd%25%3F%23%20%27@db:5432/jobs?sslmode=verify-full");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "postgres://pe:old@db/jobs", "new") ==
        "postgres://pe:new@db/jobs");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "postgresql://db", "x") == "postgresql://:x@db");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "postgresql://pe@[::1]:5432/jobs", "x") ==
        "postgresql://pe:x@[::1]:5432/jobs");
  // A password in the query would win over the userinfo: dropped.
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql,
                               "postgresql://pe@db/jobs?password=old&sslmode=require", "x") ==
        "postgresql://pe:x@db/jobs?sslmode=require");
  CHECK(with_database_password(cfg::DatabaseBackend::postgresql, "postgresql://pe@db/jobs?password=old", "x") ==
        "postgresql://pe:x@db/jobs");
  const std::string out = with_database_password(cfg::DatabaseBackend::postgresql, "postgresql://pe@db/jobs", nasty);
  const auto colon = out.find(':', 13);
  CHECK(percent_decode(out.substr(colon + 1, out.find('@', colon) - colon - 1)) == nasty);
}

TEST_CASE("mysql: SOCI's password= parameter, or the userinfo of a mysql:// URL",
          "[config][secrets][database]") {
  using cfg::with_database_password;
  CHECK(with_database_password(cfg::DatabaseBackend::mysql, "host=db db=jobs user=pe", "plain") ==
        "host=db db=jobs user=pe password='plain'");
  // SOCI takes the first of two: the old ones must go, pass= included.
  CHECK(with_database_password(cfg::DatabaseBackend::mysql, "password=old host=db pass=older user=pe", "new") ==
        "host=db user=pe password='new'");
  CHECK(with_database_password(cfg::DatabaseBackend::mysql, "host=db user=pe sslca='/etc/my ca.pem'", "a'b\\c") ==
        "host=db user=pe sslca='/etc/my ca.pem' password='a\\'b\\\\c'");
  CHECK(with_database_password(cfg::DatabaseBackend::mysql, "mysql://pe@db:3306/jobs?charset=utf8mb4", "p@ss w") ==
        "mysql://pe:p%40ss%20w@db:3306/jobs?charset=utf8mb4");
  CHECK(with_database_password(cfg::DatabaseBackend::mysql, "MariaDB://pe:old@db/jobs?pass=x&password=y", "n") ==
        "MariaDB://pe:n@db/jobs");
  const std::string out = with_database_password(cfg::DatabaseBackend::mysql, "host=db", nasty);
  CHECK(unquote_key_value(out, out.find("password=") + 9) == nasty);
}

TEST_CASE("odbc: PWD={...} with } doubled, replacing PWD= and PASSWORD=",
          "[config][secrets][database]") {
  using cfg::with_database_password;
  CHECK(with_database_password(cfg::DatabaseBackend::odbc, "DSN=jobs;UID=pe", "plain") == "DSN=jobs;UID=pe;PWD={plain}");
  CHECK(with_database_password(cfg::DatabaseBackend::odbc, "DSN=jobs;UID=pe;", "p") == "DSN=jobs;UID=pe;PWD={p}");
  CHECK(with_database_password(
            cfg::DatabaseBackend::odbc, "DRIVER={PostgreSQL Unicode};SERVER=db;UID=pe;PWD={o;l}}d};Password=x;PORT=5432",
            "n}e;w{") == "DRIVER={PostgreSQL Unicode};SERVER=db;UID=pe;PORT=5432;PWD={n}}e;w{}");
  CHECK(with_database_password(cfg::DatabaseBackend::odbc, " pwd = old ;DSN=jobs", "n") == "DSN=jobs;PWD={n}");
  CHECK_THROWS_WITH(with_database_password(cfg::DatabaseBackend::odbc, "DSN=jobs;PWD={unterminated", "n"),
                    "database.connection is not a valid ODBC connection string: a value in "
                    "braces without its closing '}'");
}

TEST_CASE("a connection string the injection cannot take apart is refused without its text",
          "[config][secrets][database]") {
  using cfg::with_database_password;
  CHECK_THROWS_WITH(with_database_password(cfg::DatabaseBackend::postgresql, "host=db password='hunter2", "x"),
                    "database.connection is not a valid list of key=value parameters: a quoted "
                    "value without its closing quote");
  CHECK_THROWS_WITH(with_database_password(cfg::DatabaseBackend::mysql, "host=db hunter2", "x"),
                    "database.connection is not a valid list of key=value parameters: a "
                    "parameter without '=' after its name");
  CHECK_THROWS_AS(with_database_password(cfg::DatabaseBackend::sqlite3, "db=/x.db", "x"), std::invalid_argument);
}

TEST_CASE("database.password_file is read like amqp.password_file and put into the connection",
          "[config][secrets][database]") {
  TemporaryDirectory dir;
  write(dir.path() / "db-password", "s3cr3t\n");
  const std::string file = (dir.path() / "db-password").string();
  SECTION("from a path") {
    const cfg::Config config = cfg::load_string(
        "database:\n  backend: postgresql\n  connection: \"host=db user=pe password=old\"\n"
        "  password_file: " + file + "\n",
        "test.yaml");
    CHECK(config.database.connection == "host=db user=pe password='s3cr3t'");
    CHECK(config.database.password_file == file);
    // The password written in the file is still written there, replaced or not.
    CHECK(config.secrets_in_file == std::vector<std::string>{"database.connection"});
  }
  SECTION("from a systemd credential") {
    ScopedEnv credentials("CREDENTIALS_DIRECTORY", dir.path().c_str());
    const cfg::Config config = cfg::load_string(
        "database:\n  backend: mysql\n  connection: mysql://pe@db/jobs\n"
        "  password_file: ${CREDENTIALS_DIRECTORY}/db-password\n",
        "test.yaml");
    CHECK(config.database.connection == "mysql://pe:s3cr3t@db/jobs");
    CHECK(config.secrets_in_file.empty());
  }
}

TEST_CASE("database.password_file with sqlite3 is an error at its key", "[config][secrets][database]") {
  TemporaryDirectory dir;
  write(dir.path() / "db-password", "s3cr3t");
  const std::string file = (dir.path() / "db-password").string();
  // Explicit backend, and the default one.
  CHECK(error_of("database:\n  backend: sqlite3\n  password_file: " + file + "\n") ==
        "test.yaml:3:18: database.password_file: database.backend sqlite3 takes no password "
        "(database.password_file is for postgresql, mysql and odbc)");
  CHECK(error_of("workers: 1\ndatabase:\n  password_file: " + file + "\n") ==
        "test.yaml:3:18: database.password_file: database.backend sqlite3 takes no password "
        "(database.password_file is for postgresql, mysql and odbc)");
}

TEST_CASE("no error about database.password_file repeats the password or the connection",
          "[config][secrets][database]") {
  TemporaryDirectory dir;
  const std::string secret = "hunter2-db-secret";
  write(dir.path() / "db-password", secret + "\n");
  write(dir.path() / "two-lines", secret + "\n" + secret + "\n");
  const std::string file = (dir.path() / "db-password").string();
  for (const std::string& yaml : {
           "database:\n  password_file: " + file + "\n",
           "database:\n  backend: postgresql\n  connection: \"host=db password='" + secret +
               "\"\n  password_file: " + file + "\n",
           "database:\n  backend: odbc\n  connection: \"DSN=x;PWD={" + secret +
               "\"\n  password_file: " + file + "\n",
           "database:\n  backend: mysql\n  password_file: " + (dir.path() / "two-lines").string() +
               "\n",
       }) {
    INFO(yaml);
    const std::string error = error_of(yaml);
    CHECK_THAT(error, Catch::StartsWith("test.yaml:") && Catch::Contains("database.password_file: "));
    CHECK(error.find(secret) == std::string::npos);
  }
}
