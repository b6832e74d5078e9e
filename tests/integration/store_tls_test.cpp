// TLS to the database servers, passed through the connection string: the
// servers of .ci/tls-databases (a CA made at test time, a server certificate
// for localhost and 127.0.0.1, user pe_tls allowed over TLS only). Proves that
// a verified connection works and really is encrypted, and which cases are
// refused, with the message the daemon would report. Skipped without the
// variables of .ci/tls-databases (failed with PE_TEST_TLS_DB_REQUIRED=1).
#include <cstdlib>
#include <optional>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <soci/soci.h>

#include "program_executor/store/database.hpp"
#include "program_executor/store/dialect.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using nlohmann::json;

namespace {

std::string env_text(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// The servers' variables, or nullopt (skipped, or failed when required).
struct TlsServers {
  std::string certs;
  std::string postgresql;
  std::string mysql;
};

std::optional<TlsServers> tls_servers() {
  TlsServers servers{env_text("PE_TEST_TLS_DB_DIR"), env_text("PE_TEST_TLS_POSTGRESQL_CONNECTION"),
                     env_text("PE_TEST_TLS_MYSQL_CONNECTION")};
  if (!servers.certs.empty() && !servers.postgresql.empty() && !servers.mysql.empty()) {
    return servers;
  }
  // Not test::running_in_ci(): the integration suite runs under CI without
  // these servers too; .ci/tls-databases sets PE_TEST_TLS_DB_REQUIRED.
  if (env_text("PE_TEST_TLS_DB_REQUIRED") == "1") {
    FAIL("PE_TEST_TLS_DB_DIR and PE_TEST_TLS_*_CONNECTION are not set: run under .ci/tls-databases");
  }
  WARN("SKIPPED: run under `bash .ci/tls-databases run ...` for the database TLS tests");
  return std::nullopt;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

config::DatabaseSettings settings(const std::string& backend, const std::string& connection) {
  config::DatabaseSettings out;
  out.backend = store::parse_backend(backend);
  out.connection = connection;
  out.table = test::unique_name("pe_tls");
  return out;
}

// Why opening the database failed ("" if it did not).
std::string open_error(const std::string& backend, const std::string& connection) {
  try {
    store::Database database(settings(backend, connection), 1);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The store's whole round trip on a table of its own, then the table dropped.
void use_store(store::Database& database) {
  database.migrate();
  database.ensure_schema();
  auto programs = database.program_store();
  programs->insert({"tls-1", {"a", "b"}, json{{"over", "tls"}}, json::object()});
  const auto row = programs->find("tls-1");
  REQUIRE(row);
  CHECK(row->program_data == json{{"over", "tls"}});
  soci::session session(database.pool());
  for (const std::string& table : {database.table(), store::schema_version_table(database.table())}) {
    session << "DROP TABLE IF EXISTS " + database.dialect().quote(table);
  }
}

}  // namespace

TEST_CASE("PostgreSQL: sslmode=verify-full connects by name and by address, encrypted",
          "[store][tls]") {
  const auto servers = tls_servers();
  if (!servers) return;
  const std::string verify = " sslmode=verify-full sslrootcert=" + servers->certs + "/ca.pem";
  for (const std::string& connection :
       {servers->postgresql + verify,
        replaced(servers->postgresql, "host=localhost", "host=127.0.0.1") + verify}) {
    INFO(connection);
    store::Database database(settings("postgresql", connection), 1);
    {
      soci::session session(database.pool());
      int ssl = 0;
      std::string version;
      std::string cipher;
      session << "SELECT CASE WHEN ssl THEN 1 ELSE 0 END, version, cipher FROM pg_stat_ssl "
                 "WHERE pid = pg_backend_pid()",
          soci::into(ssl), soci::into(version), soci::into(cipher);
      CHECK(ssl == 1);
      CHECK_THAT(version, Catch::StartsWith("TLSv1."));
      CHECK_FALSE(cipher.empty());
      WARN("PostgreSQL over " << version << ", " << cipher);
    }
    use_store(database);
  }
}

TEST_CASE("PostgreSQL: a wrong CA, a wrong host name and no TLS are refused", "[store][tls]") {
  const auto servers = tls_servers();
  if (!servers) return;
  const std::string& base = servers->postgresql;
  const std::string ca = " sslrootcert=" + servers->certs + "/ca.pem";

  const std::string wrong_ca = open_error(
      "postgresql", base + " sslmode=verify-full sslrootcert=" + servers->certs + "/wrong-ca.pem");
  CHECK_THAT(wrong_ca, Catch::Contains("cannot open database (postgresql)") &&
                           Catch::Contains("SSL error: certificate verify failed"));
  // libpq connects to hostaddr and checks the certificate against host.
  const std::string wrong_host = open_error(
      "postgresql", replaced(base, "host=localhost", "host=wrong.example.com hostaddr=127.0.0.1") +
                        " sslmode=verify-full" + ca);
  CHECK_THAT(wrong_host, Catch::Contains("server certificate for \"localhost\" (and 1 other name) "
                                         "does not match host name \"wrong.example.com\""));
  // verify-ca checks the chain only: the same wrong name passes.
  CHECK(open_error("postgresql",
                   replaced(base, "host=localhost", "host=wrong.example.com hostaddr=127.0.0.1") +
                       " sslmode=verify-ca" + ca) == "");
  const std::string plain = open_error("postgresql", base + " sslmode=disable");
  CHECK_THAT(plain, Catch::Contains("pg_hba.conf rejects connection for host \"127.0.0.1\", user "
                                    "\"pe_tls\", database \"pe_tls\", no encryption"));
  WARN("refused:\n  wrong CA: " << wrong_ca << "\n  wrong host: " << wrong_host
                                << "\n  no TLS: " << plain);
}

TEST_CASE("MariaDB: sslca connects with TLS, with and without a client certificate",
          "[store][tls]") {
  const auto servers = tls_servers();
  if (!servers) return;
  const std::string ca = " sslca=" + servers->certs + "/ca.pem";
  const std::string client =
      " sslcert=" + servers->certs + "/client.pem sslkey=" + servers->certs + "/client.key";
  for (const std::string& connection : {servers->mysql + ca, servers->mysql + ca + client}) {
    INFO(connection);
    store::Database database(settings("mysql", connection), 1);
    {
      soci::session session(database.pool());
      std::string name;
      std::string cipher;
      std::string version;
      session << "SHOW SESSION STATUS LIKE 'Ssl_cipher'", soci::into(name), soci::into(cipher);
      session << "SHOW SESSION STATUS LIKE 'Ssl_version'", soci::into(name), soci::into(version);
      CHECK_FALSE(cipher.empty());
      CHECK_THAT(version, Catch::StartsWith("TLSv1."));
      WARN("MariaDB over " << version << ", " << cipher);
    }
    use_store(database);
  }
}

TEST_CASE("MariaDB: a wrong CA and no TLS are refused, the host name is not checked",
          "[store][tls]") {
  const auto servers = tls_servers();
  if (!servers) return;
  const std::string wrong_ca =
      open_error("mysql", servers->mysql + " sslca=" + servers->certs + "/wrong-ca.pem");
  CHECK(wrong_ca ==
        "cannot open database (mysql): TLS/SSL error: self-signed certificate in certificate chain");
  // pe_tls is REQUIRE SSL; without sslca SOCI does not ask for TLS at all.
  const std::string plain = open_error("mysql", servers->mysql);
  CHECK_THAT(plain, Catch::StartsWith("cannot open database (mysql): Access denied for user 'pe_tls'@"));
  WARN("refused:\n  wrong CA: " << wrong_ca << "\n  no TLS: " << plain);
  // A limit, not a wish: SOCI 4.0.3 cannot set MYSQL_OPT_SSL_VERIFY_SERVER_CERT
  // (its ssl_mode is MySQL-only), and MariaDB Connector/C 3.3 does not check
  // the name by default. The server listens on 127.0.0.2 too, an address the
  // certificate does not name, and the chain alone is verified. Hence
  // docs/security.md: give the database server a CA of its own. This check
  // fails the day the name is checked; then update the docs.
  CHECK(open_error("mysql", replaced(servers->mysql, "host=127.0.0.1", "host=127.0.0.2") +
                                " sslca=" + servers->certs + "/ca.pem") == "");
}
