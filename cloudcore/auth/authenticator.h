#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloudcore/auth/user_info.h"
#include "common/http/server_types.h"
#include "common/status.h"

namespace ep::auth {

// Recognizes one family of bearer tokens. Implementations must be thread-safe: the API server
// calls them from its worker pool.
class TokenAuthenticator {
 public:
  virtual ~TokenAuthenticator() = default;
  // nullopt: not a token of this family (the next authenticator is asked). An error
  // (kUnauthorized): a token of this family that is refused, with the reason (expired,
  // revoked, bad signature); it is logged, never shown to the client.
  virtual Result<std::optional<UserInfo>> authenticateToken(std::string_view token) = 0;
};

// Kubernetes' static token file (--token-auth-file): CSV lines `token,user,uid[,"g1,g2"]`.
// Immutable after load(); thread-safe.
class StaticTokens final : public TokenAuthenticator {
 public:
  // Errors name the file and line ("tokens.csv:3: expected token,user,uid[,groups]").
  static Result<std::unique_ptr<StaticTokens>> parse(std::string_view text,
                                                     const std::string& source);
  static Result<std::unique_ptr<StaticTokens>> load(const std::string& path);

  Result<std::optional<UserInfo>> authenticateToken(std::string_view token) override;
  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, UserInfo, std::less<>> users_;
};

// Decides who made a request. Thread-safe (the token authenticators must be too).
class Authenticator {
 public:
  // Called with the serial (lower-case hex) of a verified client certificate; true refuses it
  // (a revoked node certificate). May be empty.
  using RevocationCheck =
      std::function<bool(const std::string& commonName, const std::string& serialHex)>;

  // `tokens` are asked in order and must outlive this object.
  explicit Authenticator(std::vector<TokenAuthenticator*> tokens, RevocationCheck revoked = {});

  // The user of a request: its verified TLS client certificate (CN the user, O the groups),
  // else its bearer token (Authorization: Bearer), else system:anonymous in group
  // system:unauthenticated. Authenticated users also get group system:authenticated.
  // kUnauthorized when credentials were presented but are not valid (unknown, expired or
  // revoked token; revoked certificate); the message says why for the log.
  Result<UserInfo> authenticate(const http::ServerRequest& request) const;

 private:
  std::vector<TokenAuthenticator*> tokens_;
  RevocationCheck revoked_;
};

// Splits one CSV record (RFC 4180 quoting: "a,b" and "" for a quote). Exposed for tests.
Result<std::vector<std::string>> splitCsvLine(std::string_view line);

}  // namespace ep::auth
