// Secrets in the configuration: the broker password from a file or a systemd
// credential, the detection of passwords written into the file itself, and
// that no value of a secret ever shows up in an error.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "program_executor/config/config.hpp"
#include "support/config_error.hpp"
#include "support/scoped_env.hpp"
#include "support/test_environment.hpp"

namespace cfg = program_executor::config;
using program_executor::test::error_of;
using program_executor::test::TemporaryDirectory;

namespace {

using program_executor::test::ScopedEnv;

constexpr const char* secret = "s3cr3t-FROM-file";

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}


}  // namespace

TEST_CASE("amqp.password_file puts the file's password into the URL, percent-encoded",
          "[config][secrets]") {
  TemporaryDirectory dir;
  const auto file = dir.path() / "amqp-password";
  const auto [content, encoded] = GENERATE(table<std::string, std::string>({
      {"plain\n", "plain"},                       // one final newline is dropped
      {"with\r\n", "with"},                       // as is a final CRLF
      {"no-newline", "no-newline"},
      {"p@ss:w/rd%?# ", "p%40ss%3Aw%2Frd%25%3F%23%20"},  // URL syntax is encoded
  }));
  write(file, content);
  const auto [url, expected] = GENERATE_COPY(table<std::string, std::string>({
      {"amqp://worker@rabbit:5672/prod", "amqp://worker:" + encoded + "@rabbit:5672/prod"},
      {"amqps://worker:old@rabbit/", "amqps://worker:" + encoded + "@rabbit/"},  // replaced
      {"amqp://rabbit/", "amqp://guest:" + encoded + "@rabbit/"},  // rabbitmq-c's default user
  }));
  INFO(url);
  const cfg::Config config = cfg::load_string(
      "amqp:\n  url: " + url + "\n  password_file: " + file.string() + "\n", "test.yaml");
  CHECK(config.amqp.url == expected);
  CHECK(config.amqp.password_file == file.string());
  // A password written in the URL is still written in the file, replaced or not.
  const bool written = url.find(":old@") != std::string::npos;
  CHECK(config.secrets_in_file ==
        (written ? std::vector<std::string>{"amqp.url"} : std::vector<std::string>{}));
}

TEST_CASE("a systemd credential is a password file under $CREDENTIALS_DIRECTORY",
          "[config][secrets]") {
  TemporaryDirectory dir;
  write(dir.path() / "amqp-password", std::string(secret) + "\n");
  const std::string yaml =
      "amqp:\n  url: amqp://worker@rabbit/\n"
      "  password_file: ${CREDENTIALS_DIRECTORY}/amqp-password\n";
  {
    ScopedEnv credentials("CREDENTIALS_DIRECTORY", dir.path().c_str());
    CHECK(cfg::load_string(yaml, "test.yaml").amqp.url ==
          std::string("amqp://worker:") + secret + "@rabbit/");
  }
  ScopedEnv unset("CREDENTIALS_DIRECTORY", nullptr);
  CHECK(error_of(yaml) ==
        "test.yaml:3:18: amqp.password_file: environment variable CREDENTIALS_DIRECTORY is not "
        "set (systemd sets it for a service with LoadCredential=; outside systemd, set it to the "
        "directory holding the credential files)");
}

TEST_CASE("an unusable password file is an error at its key, never showing the content",
          "[config][secrets]") {
  TemporaryDirectory dir;
  const std::string path = (dir.path() / "password").string();
  const std::string prefix = "test.yaml:2:18: amqp.password_file: ";
  std::string yaml = "amqp:\n  password_file: " + path + "\n";

  SECTION("missing") {
    CHECK(error_of(yaml) == prefix + "cannot read '" + path + "': No such file or directory");
  }
  SECTION("empty, or only a line break") {
    write(path, GENERATE(std::string(""), std::string("\n")));
    CHECK(error_of(yaml) == prefix + "'" + path + "' is empty");
  }
  SECTION("two lines") {
    write(path, std::string(secret) + "\nsecond line\n");
    CHECK(error_of(yaml) == prefix + "'" + path +
                                "' holds more than one line or a NUL byte; it must hold the "
                                "password only");
  }
  SECTION("too large") {
    write(path, std::string(4097, 'x'));
    CHECK(error_of(yaml) == prefix + "'" + path +
                                "' is larger than 4096 bytes; it must hold the password only");
  }
  SECTION("a directory") {
    std::filesystem::create_directory(path);
    CHECK(error_of(yaml) == prefix + "'" + path + "' is not a regular file");
  }
  SECTION("a FIFO, which must not block the daemon") {
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    CHECK(error_of(yaml) == prefix + "'" + path + "' is not a regular file");
  }
  SECTION("unreadable") {
    if (::geteuid() == 0) {
      WARN("SKIPPED: root reads files whatever their mode");
      return;
    }
    write(path, secret);
    REQUIRE(::chmod(path.c_str(), 0) == 0);
    CHECK(error_of(yaml) == prefix + "cannot read '" + path + "': Permission denied");
  }
}

TEST_CASE("no error about a secret key repeats the secret", "[config][secrets]") {
  TemporaryDirectory dir;
  write(dir.path() / "password", secret);
  ScopedEnv password("PE_TEST_SECRET", secret);
  const std::string file_key = "  password_file: " + (dir.path() / "password").string() + "\n";
  for (const std::string& yaml : {
           // a bad URL with the secret in it, from the environment and written out
           std::string("amqp:\n  url: http://user:${PE_TEST_SECRET}@host/\n"),
           std::string("amqp:\n  url: http://user:") + secret + "@host/\n",
           // a good secret, a bad neighbour
           "amqp:\n  url: amqp://u@h/\n" + file_key + "  prefetch: 0\n",
           std::string("database:\n  connection: ${PE_TEST_SECRET}\n  table: 1bad\n"),
           // a secret key given twice
           std::string("amqp:\n  url: amqp://u:") + secret + "@h/\n  url: amqp://u:" + secret +
               "@h/\n",
       }) {
    INFO(yaml);
    const std::string error = error_of(yaml);
    CHECK(error != "(no error)");
    CHECK(error.find(secret) == std::string::npos);
  }
}

TEST_CASE("passwords written into the file itself are noticed", "[config][secrets]") {
  ScopedEnv password("PE_TEST_SECRET", secret);
  const auto [yaml, keys] = GENERATE(table<std::string, std::vector<std::string>>({
      {"", {}},  // the default URL is not in the file
      {"amqp:\n  url: amqp://worker:hunter2@rabbit/\n", {"amqp.url"}},
      {"amqp:\n  url: amqp://worker:${PE_TEST_SECRET}@rabbit/\n", {}},
      {"amqp:\n  url: amqp://worker@rabbit/\n", {}},
      {"amqp:\n  url: amqp://rabbit:5672/v\n", {}},  // host:port is no user:password
      {"database:\n  connection: db=/var/lib/pe.db\n", {}},
      {"database:\n  connection: \"host=db user=pe password=hunter2\"\n", {"database.connection"}},
      {"database:\n  connection: \"host=db PASSWORD = hunter2\"\n", {"database.connection"}},
      {"database:\n  connection: \"host=db user=pe password=${PE_TEST_SECRET}\"\n", {}},
      {"database:\n  connection: \"db=x pass=hunter2\"\n", {"database.connection"}},
      {"database:\n  connection: \"db=/srv/password=1.db\"\n", {}},  // not a password= key
      {"amqp:\n  url: amqp://w:p@r/\ndatabase:\n  connection: \"password=x\"\n",
       {"amqp.url", "database.connection"}},
  }));
  INFO(yaml);
  CHECK(cfg::load_string(yaml, "test.yaml").secrets_in_file == keys);
}
