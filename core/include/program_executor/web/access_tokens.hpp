// Who may do what through the HTTP API: bearer tokens read from files, in
// two roles.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace program_executor::web {

/// `viewer` reads; `operator` also creates, cancels and resumes.
enum class Role { viewer, operator_ };

/// "viewer" or "operator".
const char* to_string(Role role) noexcept;

/// A token file that cannot be used (unreadable, a token too short).
class TokenFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Tokens shorter than this are refused when the files are read: a token is
/// the only thing between the network and the operator's powers.
inline constexpr std::size_t min_token_length = 16;

/// Whose a presented token is, if anyone's.
struct TokenHolder {
  Role role;
  /// "operator#2": the role and the token's position among that role's
  /// tokens, for the log (the token itself is never logged).
  std::string label;
};

class AccessTokens {
 public:
  /// Reads both files (an empty path: no token of that role). One token per
  /// line; blank lines and lines starting with '#' are skipped; surrounding
  /// spaces are trimmed. Throws TokenFileError naming the file and line.
  static AccessTokens load(const std::string& viewer_file, const std::string& operator_file);

  /// Adds one token found at `where` ("file:line"; for messages). Throws
  /// TokenFileError when the token is known already, in either role.
  void add(Role role, std::string_view token, const std::string& where = "");

  /// The holder of `token`, or nullopt. Compares against every known token
  /// by SHA-256 digest with CRYPTO_memcmp and no early exit, so the time it
  /// takes says nothing about how much of a token was right.
  std::optional<TokenHolder> holder_of(std::string_view token) const;

  std::size_t count(Role role) const noexcept;
  bool empty() const noexcept { return tokens_.empty(); }

 private:
  struct Entry {
    Role role;
    int position;  ///< 1-based among this role's tokens
    std::array<unsigned char, 32> digest;
    std::string where;  ///< "file:line", or empty
  };
  std::vector<Entry> tokens_;
};

/// The token of an `Authorization: Bearer <token>` header; nullopt for any
/// other header (another scheme, no token).
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace program_executor::web
