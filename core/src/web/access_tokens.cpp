#include "program_executor/web/access_tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>
#include <fstream>

namespace program_executor::web {
namespace {

std::array<unsigned char, 32> digest_of(std::string_view text) {
  std::array<unsigned char, 32> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

void read_file(AccessTokens& tokens, Role role, const std::string& path) {
  if (path.empty()) return;
  std::ifstream in(path);
  if (!in) throw TokenFileError("cannot read the token file '" + path + "'");
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string_view token = trimmed(line);
    if (token.empty() || token.front() == '#') continue;
    if (token.size() < min_token_length) {
      // The message names the line, never the token.
      throw TokenFileError(path + ":" + std::to_string(number) + ": a token must have at least " +
                           std::to_string(min_token_length) + " characters");
    }
    if (token.find_first_of(" \t") != std::string_view::npos) {
      throw TokenFileError(path + ":" + std::to_string(number) +
                           ": a token holds no spaces (one token per line)");
    }
    tokens.add(role, token, path + ":" + std::to_string(number));
  }
  if (in.bad()) throw TokenFileError("cannot read the token file '" + path + "'");
}

}  // namespace

const char* to_string(Role role) noexcept {
  return role == Role::operator_ ? "operator" : "viewer";
}

AccessTokens AccessTokens::load(const std::string& viewer_file, const std::string& operator_file) {
  AccessTokens tokens;
  read_file(tokens, Role::viewer, viewer_file);
  read_file(tokens, Role::operator_, operator_file);
  return tokens;
}

void AccessTokens::add(Role role, std::string_view token, const std::string& where) {
  const auto digest = digest_of(token);
  for (const Entry& entry : tokens_) {
    // A token in both files would be one role or the other by the order the
    // files are read: refused, naming both places (never the token).
    if (entry.digest == digest) {
      throw TokenFileError((where.empty() ? std::string("a token") : where) +
                           ": the same token is at " +
                           (entry.where.empty() ? std::string("an earlier place") : entry.where) +
                           "; give each token once, in one role's file");
    }
  }
  tokens_.push_back({role, static_cast<int>(count(role)) + 1, digest, where});
}

std::optional<TokenHolder> AccessTokens::holder_of(std::string_view token) const {
  const auto presented = digest_of(token);
  const Entry* match = nullptr;
  for (const Entry& entry : tokens_) {
    // Every entry is compared, whatever matched before.
    const bool equal = CRYPTO_memcmp(entry.digest.data(), presented.data(), presented.size()) == 0;
    if (equal && match == nullptr) match = &entry;
  }
  if (match == nullptr) return std::nullopt;
  return TokenHolder{match->role, std::string(to_string(match->role)) + "#" +
                                      std::to_string(match->position)};
}

std::size_t AccessTokens::count(Role role) const noexcept {
  std::size_t n = 0;
  for (const Entry& entry : tokens_) n += entry.role == role ? 1 : 0;
  return n;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size()) return std::nullopt;
  // The scheme is case-insensitive (RFC 9110).
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const char a = authorization[i];
    const char b = scheme[i];
    if (std::tolower(static_cast<unsigned char>(a)) != std::tolower(static_cast<unsigned char>(b))) {
      return std::nullopt;
    }
  }
  const std::string_view token = trimmed(authorization.substr(scheme.size()));
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace program_executor::web
