// Who may use the HTTP API: the token files `serve` reads (comments, blank
// lines, trimming, CRLF, refusals that name file:line but never the token),
// the roles and log labels of the tokens, and the Authorization header.
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "program_executor/web/access_tokens.hpp"
#include "support/test_environment.hpp"

using namespace program_executor;
using web::AccessTokens;
using web::Role;
using web::TokenFileError;
namespace fs = std::filesystem;

namespace {

// Tokens of exactly the minimum length and longer.
const std::string viewer_a = "viewer-token-aaaa";             // 17
const std::string viewer_b = "viewer-token-bbbbbbbbbbbbbbbb";  // 29
const std::string operator_a = "operator-token-aaaaaaaa";
const std::string operator_b = "operator-token-bbbbbbbb";
const std::string operator_c = "operator-token-cccccccc";

// Written byte for byte (binary mode), so CRLF stays CRLF.
std::string write_file(const test::TemporaryDirectory& dir, const std::string& name,
                       const std::string& text) {
  const fs::path path = dir.path() / name;
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
  return path.string();
}

// The message of the TokenFileError that `load` throws (the test fails if none).
std::string load_error(const std::string& viewer_file, const std::string& operator_file) {
  try {
    (void)AccessTokens::load(viewer_file, operator_file);
  } catch (const TokenFileError& e) {
    return e.what();
  }
  FAIL("AccessTokens::load accepted the files");
  return {};
}

}  // namespace

TEST_CASE("a token file skips comments and blank lines and trims spaces around each token",
          "[web][tokens]") {
  test::TemporaryDirectory dir;
  const std::string file = write_file(dir, "operators",
                                      "# operators of the nightly pipeline\n"
                                      "\n"
                                      "   \t \n"
                                      "   " + operator_a + "  \t\n"
                                      "\t  # an indented comment\n"
                                      "#" + operator_c + "\n"  // commented out: no token
                                      + operator_b);            // last line, no newline
  const AccessTokens tokens = AccessTokens::load("", file);
  CHECK(tokens.count(Role::operator_) == 2);
  CHECK(tokens.count(Role::viewer) == 0);
  CHECK_FALSE(tokens.empty());

  const auto a = tokens.holder_of(operator_a);
  REQUIRE(a);
  CHECK(a->role == Role::operator_);
  CHECK(a->label == "operator#1");
  const auto b = tokens.holder_of(operator_b);
  REQUIRE(b);
  CHECK(b->label == "operator#2");
  CHECK_FALSE(tokens.holder_of(operator_c));
  CHECK_FALSE(tokens.holder_of("#" + operator_c));
  // holder_of compares exactly; trimming is the header parser's job (bearer_token).
  CHECK_FALSE(tokens.holder_of("   " + operator_a));
}

TEST_CASE("a token file with Windows line ends (CRLF) gives the same tokens", "[web][tokens]") {
  test::TemporaryDirectory dir;
  const std::string file =
      write_file(dir, "viewers", "# viewers\r\n\r\n" + viewer_a + "\r\n  " + viewer_b + " \r\n");
  const AccessTokens tokens = AccessTokens::load(file, "");
  CHECK(tokens.count(Role::viewer) == 2);
  REQUIRE(tokens.holder_of(viewer_a));
  CHECK(tokens.holder_of(viewer_a)->label == "viewer#1");
  REQUIRE(tokens.holder_of(viewer_b));
  CHECK(tokens.holder_of(viewer_b)->label == "viewer#2");
  CHECK_FALSE(tokens.holder_of(viewer_a + "\r"));
}

TEST_CASE("a token of 16 characters is accepted and one of 15 is refused", "[web][tokens]") {
  REQUIRE(web::min_token_length == 16);
  test::TemporaryDirectory dir;
  const std::string sixteen(16, 'k');
  const AccessTokens tokens = AccessTokens::load("", write_file(dir, "ok", sixteen + "\n"));
  CHECK(tokens.holder_of(sixteen));

  const std::string fifteen = "short-token-15c";
  REQUIRE(fifteen.size() == 15);
  CHECK_THROWS_AS(AccessTokens::load("", write_file(dir, "short", fifteen + "\n")),
                  TokenFileError);
}

TEST_CASE("a short token is refused naming the file and line but never the token itself",
          "[web][tokens]") {
  test::TemporaryDirectory dir;
  const std::string secret = "s3cr3t-short";
  const std::string file =
      write_file(dir, "operators", "# ok so far\n" + operator_a + "\n\n  " + secret + "  \n");
  const std::string message = load_error("", file);
  CHECK_THAT(message, Catch::StartsWith(file + ":4: "));
  CHECK_THAT(message, Catch::Contains("at least 16 characters"));
  CHECK_THAT(message, !Catch::Contains(secret));
  CHECK_THAT(message, !Catch::Contains(operator_a));

  // The viewer file is checked the same way.
  const std::string viewers = write_file(dir, "viewers", secret + "\n");
  const std::string viewer_message = load_error(viewers, "");
  CHECK_THAT(viewer_message, Catch::StartsWith(viewers + ":1: "));
  CHECK_THAT(viewer_message, !Catch::Contains(secret));
}

TEST_CASE("a line holding two tokens separated by a space is refused naming the file and line",
          "[web][tokens]") {
  test::TemporaryDirectory dir;
  const std::string lines[] = {operator_a + " " + operator_b, operator_a + "\t" + operator_b,
                               "two words, long enough"};
  for (const std::string& line : lines) {
    INFO(line);
    const std::string file = write_file(dir, "operators", operator_c + "\n" + line + "\n");
    const std::string message = load_error("", file);
    CHECK_THAT(message, Catch::StartsWith(file + ":2: "));
    CHECK_THAT(message, Catch::Contains("no spaces"));
    CHECK_THAT(message, !Catch::Contains(operator_a));
    CHECK_THAT(message, !Catch::Contains(operator_c));
  }
}

TEST_CASE("a token file that cannot be read is refused naming it", "[web][tokens]") {
  test::TemporaryDirectory dir;
  const std::string missing = (dir.path() / "no-such-file").string();
  CHECK_THAT(load_error(missing, ""),
             Catch::Contains("cannot read the token file") && Catch::Contains(missing));
  CHECK_THAT(load_error("", missing),
             Catch::Contains("cannot read the token file") && Catch::Contains(missing));

  // A directory opens on Linux but cannot be read.
  const std::string directory = dir.path().string();
  CHECK_THAT(load_error("", directory),
             Catch::Contains("cannot read the token file") && Catch::Contains(directory));

  // The operator file is read (and refused) even when the viewer file is fine.
  const std::string viewers = write_file(dir, "viewers", viewer_a + "\n");
  CHECK_THAT(load_error(viewers, missing), Catch::Contains(missing));
}

TEST_CASE("an empty path means no token of that role, and no files mean no tokens at all",
          "[web][tokens]") {
  const AccessTokens none = AccessTokens::load("", "");
  CHECK(none.empty());
  CHECK(none.count(Role::viewer) == 0);
  CHECK(none.count(Role::operator_) == 0);
  CHECK_FALSE(none.holder_of(operator_a));

  test::TemporaryDirectory dir;
  const AccessTokens comments_only =
      AccessTokens::load(write_file(dir, "viewers", "# nobody yet\n\n"), "");
  CHECK(comments_only.empty());
}

TEST_CASE("each role numbers its tokens from 1 and the label names the role and the position",
          "[web][tokens]") {
  CHECK(std::string(web::to_string(Role::viewer)) == "viewer");
  CHECK(std::string(web::to_string(Role::operator_)) == "operator");

  test::TemporaryDirectory dir;
  const AccessTokens tokens =
      AccessTokens::load(write_file(dir, "viewers", viewer_a + "\n" + viewer_b + "\n"),
                         write_file(dir, "operators",
                                    operator_a + "\n# retired\n" + operator_b + "\n" + operator_c));
  CHECK(tokens.count(Role::viewer) == 2);
  CHECK(tokens.count(Role::operator_) == 3);
  const std::pair<std::string, std::string> expected[] = {
      {viewer_a, "viewer#1"},     {viewer_b, "viewer#2"},     {operator_a, "operator#1"},
      {operator_b, "operator#2"}, {operator_c, "operator#3"},
  };
  for (const auto& [token, label] : expected) {
    INFO(label);
    const auto holder = tokens.holder_of(token);
    REQUIRE(holder);
    CHECK(holder->label == label);
    CHECK(holder->role == (label.rfind("operator", 0) == 0 ? Role::operator_ : Role::viewer));
  }

  AccessTokens added;
  added.add(Role::operator_, operator_a);
  added.add(Role::viewer, viewer_a);
  added.add(Role::operator_, operator_b);
  CHECK(added.holder_of(operator_b)->label == "operator#2");
  CHECK(added.holder_of(viewer_a)->label == "viewer#1");
}

TEST_CASE("an unknown, empty, truncated or extended token has no holder", "[web][tokens]") {
  AccessTokens tokens;
  tokens.add(Role::operator_, operator_a);
  tokens.add(Role::viewer, viewer_a);
  CHECK_FALSE(tokens.holder_of(""));
  CHECK_FALSE(tokens.holder_of("not-a-token-anyone-has"));
  CHECK_FALSE(tokens.holder_of(operator_a.substr(0, operator_a.size() - 1)));
  CHECK_FALSE(tokens.holder_of(operator_a + "x"));
  std::string other_case = operator_a;
  other_case[0] = 'O';
  CHECK_FALSE(tokens.holder_of(other_case));
  CHECK(tokens.holder_of(operator_a));
}

TEST_CASE("a token given twice, in both files or in one, is refused naming both places",
          "[web][tokens]") {
  // Otherwise the order the files are read in would pick its role silently.
  test::TemporaryDirectory dir;
  const std::string shared = "shared-token-in-both-files";
  const std::string viewers = write_file(dir, "viewers", shared + "\n");
  const std::string operators = write_file(dir, "operators", operator_a + "\n" + shared + "\n");
  try {
    AccessTokens::load(viewers, operators);
    FAIL("a token in both files was accepted");
  } catch (const web::TokenFileError& e) {
    const std::string message = e.what();
    CHECK(message == operators + ":2: the same token is at " + viewers +
                         ":1; give each token once, in one role's file");
    CHECK(message.find(shared) == std::string::npos);
  }
  const std::string twice = write_file(dir, "twice", operator_a + "\n\n" + operator_a + "\n");
  CHECK_THROWS_WITH(AccessTokens::load("", twice),
                    twice + ":3: the same token is at " + twice +
                        ":1; give each token once, in one role's file");
}

TEST_CASE("bearer_token takes the token of a Bearer header, the scheme in any case",
          "[web][tokens]") {
  CHECK(web::bearer_token("Bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(web::bearer_token("bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(web::bearer_token("BEARER abc") == std::optional<std::string_view>("abc"));
  CHECK(web::bearer_token("bEaReR abc") == std::optional<std::string_view>("abc"));
  CHECK(web::bearer_token("Bearer " + operator_a) == std::optional<std::string_view>(operator_a));
  // Extra spaces around the token are dropped.
  CHECK(web::bearer_token("Bearer    abc") == std::optional<std::string_view>("abc"));
  CHECK(web::bearer_token("Bearer abc   ") == std::optional<std::string_view>("abc"));
  CHECK(web::bearer_token("Bearer \tabc\t\r") == std::optional<std::string_view>("abc"));
  // A space inside is kept: no token holds one, so holder_of refuses it.
  CHECK(web::bearer_token("Bearer abc def") == std::optional<std::string_view>("abc def"));
}

TEST_CASE("bearer_token refuses other schemes, a missing token and a malformed scheme",
          "[web][tokens]") {
  for (const char* header :
       {"", "Bearer", "Bearer ", "Bearer    ", "Bearer \t\r", "bearer", "Basic dXNlcjpwYXNz",
        "Basic abcdefghijklmnopqrstuvwxyz", "Digest username=\"x\"", "Token abc", "Bearerabc",
        "Bearer-abc", "BearerX abc", "Bearer\tabc", " Bearer abc", "Bear abc", "abc"}) {
    INFO("'" << header << "'");
    CHECK_FALSE(web::bearer_token(header));
  }
}

TEST_CASE("bearer_token compares the scheme by letters, not by bits", "[web][tokens]") {
  // A NUL byte is not a space, though the two differ only in bit 0x20.
  CHECK_FALSE(web::bearer_token(std::string_view("Bearer\0token-value", 18)));
  CHECK_FALSE(web::bearer_token(std::string_view("Bearer\0", 7)));
}
