#include "common/pki/join_token.h"

namespace ep::pki {
namespace {

bool tokenChars(std::string_view s) {
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

bool lowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace

std::string JoinToken::toString() const {
  std::string hex = caHash.rfind("sha256:", 0) == 0 ? caHash.substr(7) : caHash;
  return id + "." + secret + "." + hex;
}

Result<JoinToken> parseBootstrapToken(std::string_view text) {
  if (text.size() > 256) return invalidError("join token: too long");
  auto dot = text.find('.');
  if (dot == std::string_view::npos) {
    return invalidError("join token: expected ID.SECRET (6 and 16 characters of [a-z0-9])");
  }
  std::string_view id = text.substr(0, dot);
  std::string_view secret = text.substr(dot + 1);
  if (id.size() != 6 || !tokenChars(id)) {
    return invalidError("join token: the ID must be 6 characters of [a-z0-9]");
  }
  if (secret.size() != 16 || !tokenChars(secret)) {
    return invalidError("join token: the secret must be 16 characters of [a-z0-9]");
  }
  return JoinToken{std::string(id), std::string(secret), ""};
}

Result<JoinToken> parseJoinToken(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  if (text.size() > 256) return invalidError("join token: too long");
  auto last = text.rfind('.');
  if (last == std::string_view::npos || text.find('.') == last) {
    return invalidError(
        "join token: expected ID.SECRET.CAHASH as printed by `edgectl token create`");
  }
  auto t = parseBootstrapToken(text.substr(0, last));
  if (!t) return t.status();
  std::string_view hash = text.substr(last + 1);
  if (hash.rfind("sha256:", 0) == 0) hash.remove_prefix(7);
  if (hash.size() != 64 || !lowerHex(hash)) {
    return invalidError("join token: the CA hash must be 64 lower-case hexadecimal characters");
  }
  t->caHash = "sha256:" + std::string(hash);
  return t;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace ep::pki
