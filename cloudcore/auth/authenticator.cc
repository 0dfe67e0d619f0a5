#include "cloudcore/auth/authenticator.h"

#include <fstream>
#include <sstream>

namespace ep::auth {

Result<std::vector<std::string>> splitCsvLine(std::string_view line) {
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false;
  bool wasQuoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      if (!cur.empty() || wasQuoted) return badRequestError("a quote inside an unquoted field");
      quoted = wasQuoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
      wasQuoted = false;
    } else if (wasQuoted) {
      return badRequestError("text after a closing quote");
    } else {
      cur.push_back(c);
    }
  }
  if (quoted) return badRequestError("an unterminated quote");
  fields.push_back(std::move(cur));
  return fields;
}

Result<std::unique_ptr<StaticTokens>> StaticTokens::parse(std::string_view text,
                                                          const std::string& source) {
  auto out = std::unique_ptr<StaticTokens>(new StaticTokens());
  size_t lineNo = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++lineNo;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto where = [&] { return source + ":" + std::to_string(lineNo) + ": "; };
    auto fields = splitCsvLine(line);
    if (!fields) return invalidError(where() + fields.status().message());
    if (fields->size() < 3 || fields->size() > 4) {
      return invalidError(where() + "expected token,user,uid[,\"group1,group2\"], got " +
                          std::to_string(fields->size()) + " fields");
    }
    const auto& f = *fields;
    if (f[0].empty()) return invalidError(where() + "the token is empty");
    if (f[1].empty()) return invalidError(where() + "the user name is empty");
    UserInfo u;
    u.name = f[1];
    u.uid = f[2];
    u.method = "token";
    if (f.size() == 4) {
      std::string_view groups = f[3];
      while (!groups.empty()) {
        size_t comma = groups.find(',');
        std::string g(groups.substr(0, comma));
        if (!g.empty()) u.groups.push_back(std::move(g));
        if (comma == std::string_view::npos) break;
        groups.remove_prefix(comma + 1);
      }
    }
    if (out->users_.count(f[0])) return invalidError(where() + "duplicate token");
    out->users_.emplace(f[0], std::move(u));
  }
  return out;
}

Result<std::unique_ptr<StaticTokens>> StaticTokens::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) return invalidError("--token-auth-file: cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path);
}

Result<std::optional<UserInfo>> StaticTokens::authenticateToken(std::string_view token) {
  auto it = users_.find(token);
  if (it == users_.end()) return std::optional<UserInfo>();
  return std::optional<UserInfo>(it->second);
}

Authenticator::Authenticator(std::vector<TokenAuthenticator*> tokens, RevocationCheck revoked)
    : tokens_(std::move(tokens)), revoked_(std::move(revoked)) {}

namespace {

UserInfo withAuthenticatedGroup(UserInfo u) {
  if (!u.inGroup(kGroupAuthenticated)) u.groups.push_back(kGroupAuthenticated);
  return u;
}

}  // namespace

Result<UserInfo> Authenticator::authenticate(const http::ServerRequest& req) const {
  const auto& cert = req.clientCertificate;
  if (cert.verified) {
    if (revoked_ && revoked_(cert.commonName, cert.serialHex)) {
      return Status(Code::kUnauthorized, "client certificate " + cert.serialHex + " of \"" +
                                             cert.commonName + "\" is revoked");
    }
    UserInfo u;
    u.name = cert.commonName;
    u.groups = cert.organizations;
    u.method = "x509";
    return withAuthenticatedGroup(std::move(u));
  }
  std::string authz = req.header("authorization");
  if (!authz.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (authz.size() <= kBearer.size() || authz.compare(0, kBearer.size(), kBearer) != 0) {
      return Status(Code::kUnauthorized, "unsupported Authorization scheme (want Bearer)");
    }
    std::string_view token = std::string_view(authz).substr(kBearer.size());
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    for (auto* t : tokens_) {
      auto r = t->authenticateToken(token);
      if (!r) return r.status();
      if (r->has_value()) return withAuthenticatedGroup(std::move(**r));
    }
    return Status(Code::kUnauthorized, "unknown bearer token");
  }
  UserInfo anon;
  anon.name = kUserAnonymous;
  anon.groups = {kGroupUnauthenticated};
  anon.method = "anonymous";
  return anon;
}

}  // namespace ep::auth
