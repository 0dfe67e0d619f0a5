// libFuzzer: ServiceAccount token verification (cloudcore/auth/service_account_tokens.h), the
// path every bearer token that is not a static token takes. A fixed key and clock, and an
// object check that knows one ServiceAccount (default/default, uid fuzz-uid), so no store is
// needed. The first byte picks how the rest is used:
//   0: the whole bearer token;
//   1: the claims JSON of a token with our ES256 header and a signature of other claims;
//   2: the header JSON of a token with valid claims and signature;
//   3: the claims JSON, signed here with the real key (what a signed token's claims can hold).
// Invariants: no crash, leak or sanitizer report; a refusal is kUnauthorized; an accepted token
// is always the one ServiceAccount, and in modes 1 and 2 only the harness's own token passes
// (the signature covers the exact text); the OpenSSL error queue is empty afterwards.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "cloudcore/auth/service_account_tokens.h"
#include "common/api/base64.h"

namespace {

// A throwaway P-256 key, for this fuzzer and its corpus only.
constexpr const char* kKeyPem = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOVAqSFMthi8E2yZc
IhqhH37YCS3H1aFtbktgxdPehsahRANCAARO3oSOrHC4flRVeRCAJ4ocfEAxpVKk
NCA6IRXnyTi89oqKIonpIN/MlG58NovCoTzaEEN2WD7n3OGqP89W6rIS
-----END PRIVATE KEY-----
)";
// 2023-11-14T22:13:20Z, the FakeClock default; the corpus token is valid then.
constexpr int64_t kNowMillis = 1'700'000'000'000;

void check(bool condition) {
  if (!condition) std::abort();
}

std::string b64url(std::string_view data) {
  std::string s = ep::api::base64Encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

// ES256 over `input` with kKeyPem: raw r||s, base64url.
std::string sign(const std::string& input) {
  static EVP_PKEY* key = [] {
    BIO* bio = BIO_new_mem_buf(kKeyPem, -1);
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    check(k != nullptr);
    return k;
  }();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char der[80];
  size_t derLen = sizeof der;
  check(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1);
  check(EVP_DigestSign(ctx, der, &derLen, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1);
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = der;
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(derLen));
  check(sig != nullptr);
  unsigned char raw[64];
  check(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32);
  check(BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32);
  ECDSA_SIG_free(sig);
  return b64url(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

struct Env {
  ep::FakeClock clock{kNowMillis};
  std::unique_ptr<ep::auth::ServiceAccountTokens> tokens;
  std::string header;  // base64url
  std::string claims;  // base64url
  std::string signature;
  Env() {
    auto t =
        ep::auth::ServiceAccountTokens::create(kKeyPem, clock,
                                               [](const std::string& kind, const std::string& ns,
                                                  const std::string& name, const std::string& uid) {
                                                 if (kind == "ServiceAccount" && ns == "default" &&
                                                     name == "default" && uid == "fuzz-uid") {
                                                   return ep::Status::ok();
                                                 }
                                                 return ep::notFoundError(kind + " not found");
                                               });
    check(t.isOk());
    tokens = std::move(t).value();
    auto issued = tokens->issue("default", "default", "fuzz-uid", {}, 3600);
    check(issued.isOk());
    const std::string& s = issued->token;
    header = s.substr(0, s.find('.'));
    claims = s.substr(header.size() + 1, s.rfind('.') - header.size() - 1);
    signature = s.substr(s.rfind('.') + 1);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env env;
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string token;
  const int mode = data[0] % 4;
  switch (mode) {
    case 0:
      token = text;
      break;
    case 1:
      token = env.header + "." + b64url(text) + "." + env.signature;
      break;
    case 2:
      token = b64url(text) + "." + env.claims + "." + env.signature;
      break;
    default: {
      std::string input = env.header + "." + b64url(text);
      token = input + "." + sign(input);
      break;
    }
  }
  auto r = env.tokens->authenticateToken(token);
  check(ERR_peek_error() == 0);
  if (!r.isOk()) {
    check(r.status().code() == ep::Code::kUnauthorized);
    return 0;
  }
  if (!r->has_value()) return 0;
  check((*r)->name == "system:serviceaccount:default:default" && (*r)->uid == "fuzz-uid");
  // With a signature of the harness's own token, only that token's signed part can pass.
  if (mode == 1) check(b64url(text) == env.claims);
  if (mode == 2) check(b64url(text) == env.header);
  return 0;
}
