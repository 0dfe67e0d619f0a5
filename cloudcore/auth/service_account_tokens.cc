#include "cloudcore/auth/service_account_tokens.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cloudcore/registry/registry.h"
#include "common/api/base64.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"
#include "common/pki/openssl_ptr.h"
#include "common/pki/pki.h"

namespace ep::auth {
namespace {

using Json = nlohmann::json;

// --- OpenSSL ownership and errors ----------------------------------------------------------

using pki::Ptr;
using BioPtr = Ptr<BIO, BIO_free_all>;
using EcdsaSigPtr = Ptr<ECDSA_SIG, ECDSA_SIG_free>;
using MdCtxPtr = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using PkeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;
using pki::BytesPtr;
using pki::ErrorQueueGuard;

constexpr size_t kCoordinateBytes = 32;  // P-256
constexpr int64_t kNotBeforeLeewaySeconds = 60;

// PEM password callback: an encrypted key is refused instead of prompting on the terminal.
int noPassphrase(char*, int, int, void*) {
  return -1;
}

Status unauthorized(std::string reason) {
  return {Code::kUnauthorized, std::move(reason)};
}

// --- base64url (RFC 4648 section 5, no padding, as JWS uses) ---------------------------------

std::string base64Url(std::string_view data) {
  std::string s = api::base64Encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

bool isBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::optional<std::string> fromBase64Url(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string s;
  s.reserve(text.size() + 3);
  for (char c : text) {
    if (!isBase64UrlChar(c)) return std::nullopt;
    s.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  while (s.size() % 4 != 0) s.push_back('=');
  return api::base64Decode(s);
}

// A JSON object from base64url text; nullopt for anything else.
std::optional<Json> jsonObjectOf(std::string_view part) {
  auto text = fromBase64Url(part);
  if (!text) return std::nullopt;
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string stringField(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An integer NumericDate; nullopt when absent or not an integer.
std::optional<int64_t> dateField(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !(it->is_number_integer() || it->is_number_unsigned())) {
    return std::nullopt;
  }
  return it->get<int64_t>();
}

std::string uuid(const std::string& random16) {
  unsigned char b[16];
  for (size_t i = 0; i < 16; ++i) b[i] = static_cast<unsigned char>(random16[i]);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 1
  char buf[37];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return buf;
}

std::string joined(const std::vector<std::string>& items) {
  return Json(items).dump();
}

int64_t floorSeconds(int64_t millis) {
  return millis >= 0 ? millis / 1000 : -((-millis + 999) / 1000);
}

std::string lowerKind(const std::string& kind) {
  std::string s = kind;
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

// --- Keys ----------------------------------------------------------------------------------

struct ServiceAccountTokens::Keys {
  PkeyPtr key;  // the private key; also verifies
};

namespace {

// An ECDSA P-256 private key from PEM; errors say what is wrong with it.
Result<PkeyPtr> readSigningKey(const std::string& pem) {
  ErrorQueueGuard guard;
  if (pem.size() > 64 * 1024) return invalidError("larger than 64 KiB");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return internalError("out of memory");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
  if (!key) return invalidError("not a PEM private key");
  char group[64] = {};
  size_t groupLen = 0;
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_group_name(key.get(), group, sizeof group, &groupLen) != 1 ||
      std::string_view(group, groupLen) != "prime256v1") {
    return invalidError("not an ECDSA P-256 key");
  }
  return key;
}

}  // namespace

Result<std::string> loadOrCreateSigningKey(const std::string& pkiDir) {
  const std::string path = pkiDir + "/sa.key";
  auto existing = pki::readFile(path);
  if (existing.isOk()) {
    if (auto key = readSigningKey(*existing); !key.isOk()) {
      return invalidError(path + ": " + key.status().message());
    }
    return std::move(existing).value();
  }
  if (existing.status().code() != Code::kNotFound) return existing.status();
  auto key = pki::generateKey();
  if (!key) return key.status();
  if (auto s = pki::writeFileAtomic(path, *key, 0600); !s.isOk()) return s;
  return key;
}

ServiceAccountTokens::ObjectCheck ServiceAccountTokens::registryCheck(registry::Registry& registry,
                                                                      Clock& clock) {
  return [&registry, &clock](const std::string& kind, const std::string& ns,
                             const std::string& name, const std::string& uid) -> Status {
    const api::KindInfo* info = api::findByApiVersionKind("v1", kind);
    if (info == nullptr) return invalidError("tokens cannot name a " + kind);
    auto obj = registry.get(*info, ns, name);
    if (!obj.isOk()) return obj.status();
    if (api::stringAt(*obj, "metadata.uid") != uid) {
      return notFoundError(info->plural + " \"" + name + "\" was replaced (uid " +
                           api::stringAt(*obj, "metadata.uid") + ", token for " + uid + ")");
    }
    // A graceful deletion (a pod stopping) keeps the token valid until its deadline.
    std::string deleted = api::stringAt(*obj, "metadata.deletionTimestamp");
    if (!deleted.empty()) {
      int64_t at = parseRfc3339(deleted);
      if (at < 0 || at <= clock.nowMillis()) {
        return notFoundError(info->plural + " \"" + name + "\" is being deleted");
      }
    }
    return Status::ok();
  };
}

Result<std::unique_ptr<ServiceAccountTokens>> ServiceAccountTokens::create(
    const std::string& signingKeyPem, Clock& clock, ObjectCheck check,
    std::vector<std::string> apiAudiences) {
  ErrorQueueGuard guard;
  if (!check) return invalidError("service account tokens: an object check is required");
  if (apiAudiences.empty()) return invalidError("service account tokens: no API audience");
  auto read = readSigningKey(signingKeyPem);
  if (!read) return Status(read.status().code(), "signing key: " + read.status().message());
  PkeyPtr key = std::move(read).value();
  // The key id: base64url(sha256(DER SubjectPublicKeyInfo)), as Kubernetes' keyIDFromPublicKey.
  unsigned char* der = nullptr;
  int derLen = i2d_PUBKEY(key.get(), &der);
  BytesPtr owned(der);
  if (derLen <= 0) return internalError("signing key: cannot encode the public key");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  if (EVP_Digest(der, static_cast<size_t>(derLen), md, &mdLen, EVP_sha256(), nullptr) != 1) {
    return internalError("signing key: sha256 failed");
  }
  std::string keyId = base64Url(std::string_view(reinterpret_cast<const char*>(md), mdLen));
  auto keys = std::make_unique<Keys>();
  keys->key = std::move(key);
  return std::unique_ptr<ServiceAccountTokens>(new ServiceAccountTokens(
      std::move(keys), std::move(keyId), clock, std::move(check), std::move(apiAudiences)));
}

ServiceAccountTokens::ServiceAccountTokens(std::unique_ptr<Keys> keys, std::string keyId,
                                           Clock& clock, ObjectCheck check,
                                           std::vector<std::string> apiAudiences)
    : keys_(std::move(keys)),
      keyId_(std::move(keyId)),
      clock_(clock),
      check_(std::move(check)),
      apiAudiences_(std::move(apiAudiences)) {}

ServiceAccountTokens::~ServiceAccountTokens() = default;

// --- Issuing -------------------------------------------------------------------------------

Result<IssuedToken> ServiceAccountTokens::issue(const std::string& ns, const std::string& name,
                                                const std::string& saUid,
                                                const std::vector<std::string>& audiences,
                                                int64_t expirationSeconds,
                                                const std::optional<BoundObject>& bound) const {
  if (ns.empty() || name.empty() || saUid.empty()) {
    return invalidError("a token needs the service account's namespace, name and uid");
  }
  if (expirationSeconds <= 0) return invalidError("expirationSeconds must be positive");
  if (bound && bound->kind != "Pod" && bound->kind != "Secret") {
    return invalidError("a token cannot be bound to a " + bound->kind);
  }
  auto random = pki::randomBytes(16);
  if (!random) return random.status();
  const int64_t now = floorSeconds(clock_.nowMillis());
  IssuedToken out;
  out.expiresAt = now + expirationSeconds;
  Json k8s = {{"namespace", ns}, {"serviceaccount", {{"name", name}, {"uid", saUid}}}};
  if (bound) k8s[lowerKind(bound->kind)] = {{"name", bound->name}, {"uid", bound->uid}};
  Json claims = {
      {"iss", kServiceAccountIssuer},
      {"sub", std::string(kServiceAccountUserPrefix) + ns + ":" + name},
      {"aud", audiences.empty() ? std::vector<std::string>{kServiceAccountIssuer} : audiences},
      {"iat", now},
      {"nbf", now},
      {"exp", out.expiresAt},
      {"jti", uuid(*random)},
      {"kubernetes.io", std::move(k8s)}};
  Json header = {{"alg", "ES256"}, {"kid", keyId_}};
  const std::string signingInput = base64Url(header.dump()) + "." + base64Url(claims.dump());

  ErrorQueueGuard guard;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t derLen = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, keys_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &derLen,
                     reinterpret_cast<const unsigned char*>(signingInput.data()),
                     signingInput.size()) != 1) {
    return internalError("signing a service account token failed");
  }
  std::string der(derLen, '\0');
  auto* derBytes = reinterpret_cast<unsigned char*>(der.data());
  if (EVP_DigestSign(ctx.get(), derBytes, &derLen,
                     reinterpret_cast<const unsigned char*>(signingInput.data()),
                     signingInput.size()) != 1) {
    return internalError("signing a service account token failed");
  }
  // JWS wants the raw r||s, each left-padded to the coordinate size, not OpenSSL's DER.
  const unsigned char* p = derBytes;
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(derLen)));
  if (!sig) return internalError("signing a service account token: unreadable signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  unsigned char raw[2 * kCoordinateBytes];
  if (BN_bn2binpad(r, raw, kCoordinateBytes) != static_cast<int>(kCoordinateBytes) ||
      BN_bn2binpad(s, raw + kCoordinateBytes, kCoordinateBytes) !=
          static_cast<int>(kCoordinateBytes)) {
    return internalError("signing a service account token: signature out of range");
  }
  out.token = signingInput + "." +
              base64Url(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  return out;
}

// --- Verifying -----------------------------------------------------------------------------

Result<std::optional<ServiceAccountClaims>> ServiceAccountTokens::verify(
    std::string_view token) const {
  using None = std::optional<ServiceAccountClaims>;
  // Shape: three base64url parts. Anything else belongs to another authenticator.
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return None();
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return None();
  }
  if (dot1 == 0 || dot2 == dot1 + 1 || dot2 + 1 == token.size()) return None();
  for (char c : token) {
    if (c != '.' && !isBase64UrlChar(c)) return None();
  }
  if (token.size() > kMaxServiceAccountTokenBytes) {
    return unauthorized("token larger than 16 KiB");
  }
  auto header = jsonObjectOf(token.substr(0, dot1));
  if (!header || !header->contains("alg") || !(*header)["alg"].is_string()) return None();
  auto claims = jsonObjectOf(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims || stringField(*claims, "iss") != kServiceAccountIssuer) return None();

  // Ours from here on: every failure is a refusal.
  const std::string alg = stringField(*header, "alg");
  if (alg != "ES256") return unauthorized("unsupported signing algorithm \"" + alg + "\"");
  if (header->contains("crit")) return unauthorized("unsupported critical header parameters");
  if (header->contains("kid") && stringField(*header, "kid") != keyId_) {
    return unauthorized("token signed by an unknown key");
  }
  auto signature = fromBase64Url(token.substr(dot2 + 1));
  if (!signature || signature->size() != 2 * kCoordinateBytes) {
    return unauthorized("invalid signature");
  }
  {
    ErrorQueueGuard guard;
    const auto* raw = reinterpret_cast<const unsigned char*>(signature->data());
    EcdsaSigPtr sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(raw, kCoordinateBytes, nullptr);
    BIGNUM* s = BN_bin2bn(raw + kCoordinateBytes, kCoordinateBytes, nullptr);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
      BN_free(r);
      BN_free(s);
      return internalError("verifying a service account token: out of memory");
    }
    unsigned char* der = nullptr;
    int derLen = i2d_ECDSA_SIG(sig.get(), &der);
    BytesPtr owned(der);
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (derLen <= 0 || !ctx ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, keys_->key.get()) != 1) {
      return internalError("verifying a service account token failed");
    }
    const std::string_view signed_ = token.substr(0, dot2);
    if (EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(derLen),
                         reinterpret_cast<const unsigned char*>(signed_.data()),
                         signed_.size()) != 1) {
      return unauthorized("invalid signature");
    }
  }

  // Signed by us: the claims are ours, but checked as carefully as any input.
  ServiceAccountClaims c;
  const Json* k8s = nullptr;
  if (auto it = claims->find("kubernetes.io"); it != claims->end() && it->is_object()) {
    k8s = &*it;
  }
  const Json* sa = nullptr;
  if (k8s != nullptr) {
    if (auto it = k8s->find("serviceaccount"); it != k8s->end() && it->is_object()) sa = &*it;
  }
  if (sa == nullptr) return unauthorized("malformed claims: no kubernetes.io.serviceaccount");
  c.ns = stringField(*k8s, "namespace");
  c.name = stringField(*sa, "name");
  c.uid = stringField(*sa, "uid");
  if (c.ns.empty() || c.name.empty() || c.uid.empty() ||
      stringField(*claims, "sub") != kServiceAccountUserPrefix + c.ns + ":" + c.name) {
    return unauthorized("malformed claims: sub does not match kubernetes.io");
  }
  auto exp = dateField(*claims, "exp");
  if (!exp) return unauthorized("malformed claims: exp");
  c.expiresAt = *exp;
  c.issuedAt = dateField(*claims, "iat").value_or(0);
  c.notBefore = dateField(*claims, "nbf").value_or(0);
  c.id = stringField(*claims, "jti");
  if (auto aud = claims->find("aud"); aud != claims->end()) {
    if (aud->is_string()) {
      c.audiences.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      for (const auto& a : *aud) {
        if (!a.is_string()) return unauthorized("malformed claims: aud");
        c.audiences.push_back(a.get<std::string>());
      }
    } else {
      return unauthorized("malformed claims: aud");
    }
  }
  for (const char* kind : {"pod", "secret"}) {
    auto it = k8s->find(kind);
    if (it == k8s->end()) continue;
    if (!it->is_object() || c.bound) return unauthorized("malformed claims: bound object");
    BoundObject b{kind[0] == 'p' ? "Pod" : "Secret", stringField(*it, "name"),
                  stringField(*it, "uid")};
    if (b.name.empty() || b.uid.empty()) return unauthorized("malformed claims: bound object");
    c.bound = std::move(b);
  }

  const int64_t now = floorSeconds(clock_.nowMillis());
  if (now >= c.expiresAt) return unauthorized("token has expired");
  if (c.notBefore > now + kNotBeforeLeewaySeconds) return unauthorized("token is not valid yet");

  if (Status s = check_("ServiceAccount", c.ns, c.name, c.uid); !s.isOk()) {
    if (s.code() == Code::kNotFound) {
      return unauthorized("service account " + c.ns + "/" + c.name + " was deleted (" +
                          s.message() + ")");
    }
    return unauthorized("cannot check service account " + c.ns + "/" + c.name + ": " + s.message());
  }
  if (c.bound) {
    const BoundObject& b = *c.bound;
    if (Status s = check_(b.kind, c.ns, b.name, b.uid); !s.isOk()) {
      const std::string what = lowerKind(b.kind) + " " + c.ns + "/" + b.name;
      if (s.code() == Code::kNotFound) {
        return unauthorized(what + " was deleted (" + s.message() + ")");
      }
      return unauthorized("cannot check " + what + ": " + s.message());
    }
  }
  return None(std::move(c));
}

Result<std::optional<UserInfo>> ServiceAccountTokens::authenticateToken(std::string_view token) {
  auto claims = verify(token);
  if (!claims) return claims.status();
  if (!claims->has_value()) return std::optional<UserInfo>();
  const ServiceAccountClaims& c = **claims;
  bool audienceOk = false;
  for (const auto& a : c.audiences) {
    for (const auto& want : apiAudiences_) audienceOk = audienceOk || a == want;
  }
  if (!audienceOk) {
    return unauthorized("token audiences " + joined(c.audiences) +
                        " is invalid for the target audiences " + joined(apiAudiences_));
  }
  UserInfo u;
  u.name = kServiceAccountUserPrefix + c.ns + ":" + c.name;
  u.uid = c.uid;
  u.groups = {kGroupServiceAccounts, std::string(kGroupServiceAccounts) + ":" + c.ns};
  u.method = "serviceaccount";
  return std::optional<UserInfo>(std::move(u));
}

}  // namespace ep::auth
