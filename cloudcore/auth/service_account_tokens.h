#pragma once

// Kubernetes ServiceAccount tokens (docs/security.md): JWTs that cloudcore signs for a
// ServiceAccount (the TokenRequest API, `kubectl create token`) and accepts as bearer tokens.
//
// A token is a compact JWS, ES256 (ECDSA P-256 with SHA-256, the signature as raw r||s), with
// the header {"alg":"ES256","kid":KEY_ID} and the claims Kubernetes writes:
//   iss  kServiceAccountIssuer
//   sub  "system:serviceaccount:NS:NAME"
//   aud  the requested audiences (default [kServiceAccountIssuer])
//   iat, nbf, exp  seconds since the epoch; jti a random UUID
//   "kubernetes.io": {"namespace": NS, "serviceaccount": {"name", "uid"},
//                     and for a bound token "pod" or "secret": {"name", "uid"}}
// The key id is the base64url SHA-256 of the public key's DER SubjectPublicKeyInfo, as
// Kubernetes computes it.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloudcore/auth/authenticator.h"
#include "cloudcore/auth/user_info.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::registry {
class Registry;
}

namespace ep::auth {

// The issuer of every token, and the audience the API accepts, as in a default Kubernetes
// cluster (--service-account-issuer, --api-audiences).
inline constexpr const char* kServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local";

// Largest token looked at: anything longer is refused without being decoded.
inline constexpr size_t kMaxServiceAccountTokenBytes = 16 * 1024;

// The signing key, PKCS#8 PEM: `pkiDir`/sa.key (0600) when it exists, else a new ECDSA P-256
// key written there atomically (the directory is created 0700 when missing). Errors name the
// file: an unreadable file, or one that holds no private key.
Result<std::string> loadOrCreateSigningKey(const std::string& pkiDir);

// An object a token is bound to: a Pod or Secret in the ServiceAccount's namespace. The token
// stops working when the object is deleted (or replaced by one with another uid).
struct BoundObject {
  std::string kind;  // "Pod" or "Secret"
  std::string name;
  std::string uid;
};

// What a verified token says.
struct ServiceAccountClaims {
  std::string ns;
  std::string name;  // the ServiceAccount
  std::string uid;   // the ServiceAccount's uid
  std::vector<std::string> audiences;
  int64_t issuedAt = 0;   // seconds since the epoch
  int64_t notBefore = 0;  // seconds since the epoch
  int64_t expiresAt = 0;  // seconds since the epoch
  std::string id;         // jti
  std::optional<BoundObject> bound;
};

struct IssuedToken {
  std::string token;
  int64_t expiresAt = 0;  // seconds since the epoch
};

// Issues and verifies ServiceAccount tokens with one key. Immutable after create(); every
// method is thread-safe (the API server calls authenticateToken() from its worker pool).
class ServiceAccountTokens final : public TokenAuthenticator {
 public:
  // Whether an object a token names still exists with the uid the token carries: kind is
  // "ServiceAccount", "Pod" or "Secret", in namespace `ns`. Ok when it does; any error refuses
  // the token (kNotFound: gone or replaced; others: cannot tell now). Called on the caller's
  // thread for every authentication: must be thread-safe.
  using ObjectCheck = std::function<Status(const std::string& kind, const std::string& ns,
                                           const std::string& name, const std::string& uid)>;

  // An ObjectCheck that reads the object from `registry` (one store read per object): kNotFound
  // when it is gone, has another uid, or its deletionTimestamp has passed on `clock` (a pod in
  // graceful termination keeps its tokens until then). Both must outlive the check.
  static ObjectCheck registryCheck(registry::Registry& registry, Clock& clock);

  // `signingKeyPem`: an EC P-256 private key (kInvalid otherwise). `apiAudiences`: a token is
  // accepted only when its aud names one of them, as Kubernetes' --api-audiences. `clock`
  // must outlive this object.
  static Result<std::unique_ptr<ServiceAccountTokens>> create(
      const std::string& signingKeyPem, Clock& clock, ObjectCheck check,
      std::vector<std::string> apiAudiences = {kServiceAccountIssuer});
  ~ServiceAccountTokens() override;
  ServiceAccountTokens(const ServiceAccountTokens&) = delete;
  ServiceAccountTokens& operator=(const ServiceAccountTokens&) = delete;

  // A token for ServiceAccount ns/name (uid saUid), valid from now for expirationSeconds
  // (> 0), for `audiences` (empty: [kServiceAccountIssuer]). kInvalid for an empty namespace,
  // name or uid, or a non-positive expiration; kInternal if signing fails.
  Result<IssuedToken> issue(const std::string& ns, const std::string& name,
                            const std::string& saUid, const std::vector<std::string>& audiences,
                            int64_t expirationSeconds,
                            const std::optional<BoundObject>& bound = std::nullopt) const;

  // The claims of a token signed by this key, whatever its audience. nullopt: not a token of
  // this family (not a JWT of three base64url parts with JSON header and claims, or another
  // issuer). kUnauthorized with the reason for a token of this issuer that is not valid: too
  // large, an algorithm other than ES256, another key id, a bad signature, malformed claims,
  // expired ("token has expired"), not yet valid (60 s leeway), or naming an object that is
  // gone ("service account default/x was deleted", "pod default/p was deleted"); an error of
  // the ObjectCheck other than kNotFound refuses the token too ("cannot check ...").
  Result<std::optional<ServiceAccountClaims>> verify(std::string_view token) const;

  // verify(), then the audience check ("token audiences [...] is invalid for the target
  // audiences [...]"). The user is system:serviceaccount:NS:NAME (uid the ServiceAccount's),
  // in groups system:serviceaccounts and system:serviceaccounts:NS, method "serviceaccount".
  Result<std::optional<UserInfo>> authenticateToken(std::string_view token) override;

  const std::string& keyId() const { return keyId_; }

 private:
  struct Keys;  // OpenSSL keys (service_account_tokens.cc)
  ServiceAccountTokens(std::unique_ptr<Keys> keys, std::string keyId, Clock& clock,
                       ObjectCheck check, std::vector<std::string> apiAudiences);

  const std::unique_ptr<Keys> keys_;
  const std::string keyId_;
  Clock& clock_;
  const ObjectCheck check_;
  const std::vector<std::string> apiAudiences_;
};

}  // namespace ep::auth
