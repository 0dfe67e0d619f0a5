#include "cloudcore/auth/service_account_tokens.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/api/base64.h"
#include "common/api/kinds.h"
#include "common/pki/pki.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/temp_dir.h"

namespace ep::auth {
namespace {

using Json = nlohmann::json;

std::string fromB64Url(std::string s) {
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s.push_back('=');
  auto d = api::base64Decode(s);
  return d ? *d : std::string("<invalid>");
}

std::string toB64Url(std::string_view data) {
  std::string s = api::base64Encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

std::vector<std::string> parts(const std::string& token) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t dot; (dot = token.find('.', pos)) != std::string::npos; pos = dot + 1) {
    out.push_back(token.substr(pos, dot - pos));
  }
  out.push_back(token.substr(pos));
  return out;
}

Json claimsOf(const std::string& token) {
  return Json::parse(fromB64Url(parts(token).at(1)), nullptr, false);
}

// A fixed key and a check that knows one ServiceAccount (default/builder, uid sa-uid-1) and
// one pod (default/web, uid pod-uid-1); no store involved.
class ServiceAccountTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = pki::generateKey();
    ASSERT_TRUE(key.isOk());
    key_ = *key;
    tokens_ = make(clock_);
  }

  std::unique_ptr<ServiceAccountTokens> make(Clock& clock, const std::string& key = "") {
    auto t = ServiceAccountTokens::create(
        key.empty() ? key_ : key, clock,
        [this](const std::string& kind, const std::string& ns, const std::string& name,
               const std::string& uid) -> Status {
          ++checks_;
          for (const auto& [k, n, u] : live_) {
            if (k == kind && ns == "default" && n == name && u == uid) return Status::ok();
          }
          return notFoundError(kind + " " + ns + "/" + name + " not found");
        });
    EXPECT_TRUE(t.isOk()) << t.status().toString();
    return t.isOk() ? std::move(t).value() : nullptr;
  }

  std::string issue(int64_t seconds = 3600, std::vector<std::string> aud = {},
                    std::optional<BoundObject> bound = std::nullopt) {
    auto t = tokens_->issue("default", "builder", "sa-uid-1", aud, seconds, bound);
    EXPECT_TRUE(t.isOk()) << t.status().toString();
    return t.isOk() ? t->token : "";
  }

  // Expects a refusal whose reason contains `what`.
  void expectRefused(const std::string& token, const std::string& what) {
    auto r = tokens_->authenticateToken(token);
    ASSERT_FALSE(r.isOk()) << "accepted: " << token;
    EXPECT_EQ(r.status().code(), Code::kUnauthorized);
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
  }
  void expectNotOurs(const std::string& token) {
    auto r = tokens_->authenticateToken(token);
    ASSERT_TRUE(r.isOk()) << "\"" << token << "\": " << r.status().toString();
    EXPECT_FALSE(r->has_value()) << token;
  }

  FakeClock clock_;
  std::string key_;
  std::vector<std::tuple<std::string, std::string, std::string>> live_ = {
      {"ServiceAccount", "builder", "sa-uid-1"}, {"Pod", "web", "pod-uid-1"}};
  int checks_ = 0;
  std::unique_ptr<ServiceAccountTokens> tokens_;
};

TEST_F(ServiceAccountTokensTest, IssuedTokenAuthenticatesAsTheServiceAccount) {
  auto u = tokens_->authenticateToken(issue());
  ASSERT_TRUE(u.isOk()) << u.status().toString();
  ASSERT_TRUE(u->has_value());
  EXPECT_EQ((*u)->name, "system:serviceaccount:default:builder");
  EXPECT_EQ((*u)->uid, "sa-uid-1");
  EXPECT_EQ((*u)->groups,
            (std::vector<std::string>{"system:serviceaccounts", "system:serviceaccounts:default"}));
  EXPECT_EQ((*u)->method, "serviceaccount");
  EXPECT_EQ(checks_, 1);
}

TEST_F(ServiceAccountTokensTest, ClaimsAreKubernetes) {
  auto issued = tokens_->issue("default", "builder", "sa-uid-1", {}, 3600);
  ASSERT_TRUE(issued.isOk());
  const int64_t now = clock_.nowMillis() / 1000;
  EXPECT_EQ(issued->expiresAt, now + 3600);
  auto p = parts(issued->token);
  ASSERT_EQ(p.size(), 3u);
  for (const auto& part : p) EXPECT_EQ(part.find('='), std::string::npos) << "padding";
  Json header = Json::parse(fromB64Url(p[0]));
  EXPECT_EQ(header, (Json{{"alg", "ES256"}, {"kid", tokens_->keyId()}}));
  EXPECT_EQ(tokens_->keyId().size(), 43u);  // base64url of 32 bytes
  Json c = claimsOf(issued->token);
  EXPECT_EQ(c["iss"], "https://kubernetes.default.svc.cluster.local");
  EXPECT_EQ(c["sub"], "system:serviceaccount:default:builder");
  EXPECT_EQ(c["aud"], Json::array({"https://kubernetes.default.svc.cluster.local"}));
  EXPECT_EQ(c["iat"], now);
  EXPECT_EQ(c["nbf"], now);
  EXPECT_EQ(c["exp"], now + 3600);
  EXPECT_EQ(c["jti"].get<std::string>().size(), 36u);
  EXPECT_EQ(c["kubernetes.io"],
            (Json{{"namespace", "default"},
                  {"serviceaccount", {{"name", "builder"}, {"uid", "sa-uid-1"}}}}));
  EXPECT_NE(claimsOf(issue())["jti"], c["jti"]);

  auto claims = tokens_->verify(issued->token);
  ASSERT_TRUE(claims.isOk() && claims->has_value()) << claims.status().toString();
  EXPECT_EQ((*claims)->ns, "default");
  EXPECT_EQ((*claims)->name, "builder");
  EXPECT_EQ((*claims)->uid, "sa-uid-1");
  EXPECT_EQ((*claims)->expiresAt, now + 3600);
  EXPECT_EQ((*claims)->audiences, (std::vector<std::string>{kServiceAccountIssuer}));
  EXPECT_FALSE((*claims)->bound.has_value());
}

TEST_F(ServiceAccountTokensTest, SignatureIsRawRAndS) {
  // JWS ES256 (RFC 7518 3.4): 64 bytes, not DER (which would be 70-72 and start with 0x30).
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(fromB64Url(parts(issue()).at(2)).size(), 64u);
  }
  // The same key gives the same key id, and its tokens verify with a second instance.
  auto again = make(clock_);
  EXPECT_EQ(again->keyId(), tokens_->keyId());
  EXPECT_TRUE(again->authenticateToken(issue())->has_value());
}

TEST_F(ServiceAccountTokensTest, ExpiredTokenIsRefused) {
  std::string t = issue(600);
  clock_.advance(std::chrono::seconds(599));
  EXPECT_TRUE(tokens_->authenticateToken(t)->has_value());
  clock_.advance(std::chrono::seconds(1));
  expectRefused(t, "token has expired");
  clock_.advance(std::chrono::hours(24 * 365));
  expectRefused(t, "token has expired");
}

TEST_F(ServiceAccountTokensTest, NotBeforeHasOneMinuteOfLeeway) {
  FakeClock ahead(clock_.nowMillis() + 59'000);
  auto fromAhead = make(ahead);
  auto t = fromAhead->issue("default", "builder", "sa-uid-1", {}, 3600);
  ASSERT_TRUE(t.isOk());
  EXPECT_TRUE(tokens_->authenticateToken(t->token)->has_value());
  ahead.advance(std::chrono::seconds(2));
  auto t2 = fromAhead->issue("default", "builder", "sa-uid-1", {}, 3600);
  expectRefused(t2->token, "not valid yet");
}

TEST_F(ServiceAccountTokensTest, TokenOfAnotherKeyIsRefused) {
  auto otherKey = pki::generateKey();
  ASSERT_TRUE(otherKey.isOk());
  auto other = make(clock_, *otherKey);
  auto t = other->issue("default", "builder", "sa-uid-1", {}, 3600);
  ASSERT_TRUE(t.isOk());
  expectRefused(t->token, "unknown key");
  // Without a kid the signature itself is what fails.
  auto p = parts(t->token);
  std::string noKid = toB64Url(R"({"alg":"ES256"})") + "." + p[1] + "." + p[2];
  expectRefused(noKid, "invalid signature");
  EXPECT_EQ(checks_, 0);
}

TEST_F(ServiceAccountTokensTest, TamperedTokensAreRefused) {
  auto p = parts(issue());
  Json c = claimsOf(issue());
  c["kubernetes.io"]["serviceaccount"]["name"] = "admin";
  c["sub"] = "system:serviceaccount:default:admin";
  expectRefused(p[0] + "." + toB64Url(c.dump()) + "." + p[2], "invalid signature");
  // Another token's signature on this header and payload.
  auto q = parts(issue(7200));
  expectRefused(p[0] + "." + p[1] + "." + q[2], "invalid signature");
  // A flipped bit in the signature; a DER signature; a short one.
  std::string sig = fromB64Url(p[2]);
  sig[10] = static_cast<char>(sig[10] ^ 1);
  expectRefused(p[0] + "." + p[1] + "." + toB64Url(sig), "invalid signature");
  expectRefused(p[0] + "." + p[1] + "." + toB64Url("\x30\x46" + sig + std::string(6, '\0')),
                "invalid signature");
  expectRefused(p[0] + "." + p[1] + "." + toB64Url(sig.substr(0, 32)), "invalid signature");
  // r or s out of range (all ones, zero).
  expectRefused(p[0] + "." + p[1] + "." + toB64Url(std::string(64, '\xff')), "invalid signature");
  expectRefused(p[0] + "." + p[1] + "." + toB64Url(std::string(64, '\0')), "invalid signature");
  EXPECT_EQ(checks_, 0);
}

TEST_F(ServiceAccountTokensTest, OtherAlgorithmsAreRefused) {
  auto p = parts(issue());
  for (const char* alg : {"none", "HS256", "RS256", "ES384", "es256"}) {
    std::string header = toB64Url(Json{{"alg", alg}, {"kid", tokens_->keyId()}}.dump());
    expectRefused(header + "." + p[1] + "." + p[2], "unsupported signing algorithm");
    expectRefused(header + "." + p[1] + "." + toB64Url("x"), "unsupported signing algorithm");
  }
  // alg none with an empty signature is not even a JWT of three parts: not ours.
  expectNotOurs(toB64Url(R"({"alg":"none"})") + "." + p[1] + ".");
  std::string crit = toB64Url(R"({"alg":"ES256","crit":["exp"]})");
  expectRefused(crit + "." + p[1] + "." + p[2], "critical");
}

TEST_F(ServiceAccountTokensTest, GarbageIsNotOurs) {
  std::string body = toB64Url(R"({"iss":"https://accounts.example.com","sub":"x"})");
  std::string header = toB64Url(R"({"alg":"ES256"})");
  for (std::string t :
       {std::string(), std::string("abc"), std::string("a.b"), std::string("a.b.c"),
        std::string("..."), std::string("a..c"), std::string(".b.c"), std::string("a.b."),
        std::string("a.b.c.d"), std::string("static-token-0123456789"),
        std::string("abcdef.0123456789abcdef"), std::string("e30.e30.e30"),  // {} {} {}
        std::string("eyJ!.eyJ.x"), std::string("a\0b.c.d", 7), header + "." + body + ".c2ln",
        toB64Url("[1,2]") + "." + body + ".c2ln", header + "." + toB64Url("not json") + ".c2ln",
        toB64Url(R"({"alg":1})") + "." + body + ".c2ln", header + "=." + body + ".c2ln"}) {
    expectNotOurs(t);
  }
  // Deep nesting, invalid UTF-8, numbers out of range: parsed without crashing.
  expectNotOurs(header + "." + toB64Url(std::string(5000, '[') + std::string(5000, ']')) + ".c2ln");
  expectNotOurs(header + "." + toB64Url("{\"iss\":\"\xff\xfe\"}") + ".c2ln");
  expectNotOurs(header + "." + toB64Url(R"({"iss":1e999999})") + ".c2ln");
  EXPECT_EQ(checks_, 0);
}

TEST_F(ServiceAccountTokensTest, OversizedTokenIsRefusedUndecoded) {
  std::string big = toB64Url(R"({"alg":"ES256"})") + "." + std::string(17 * 1024, 'A') + ".c2ln";
  expectRefused(big, "larger than 16 KiB");
  expectNotOurs(std::string(20 * 1024, '.'));  // not three parts
}

TEST_F(ServiceAccountTokensTest, DeletedServiceAccountIsRefused) {
  std::string t = issue();
  EXPECT_TRUE(tokens_->authenticateToken(t)->has_value());
  live_.clear();
  expectRefused(t, "service account default/builder was deleted");
  // Re-created under the same name: a new uid, a new identity.
  live_ = {{"ServiceAccount", "builder", "sa-uid-2"}};
  expectRefused(t, "was deleted");
}

TEST_F(ServiceAccountTokensTest, CheckErrorsRefuse) {
  auto t = ServiceAccountTokens::create(key_, clock_,
                                        [](auto&&...) { return unavailableError("store down"); });
  ASSERT_TRUE(t.isOk());
  auto r = (*t)->authenticateToken(issue());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("cannot check service account default/builder: store down"),
            std::string::npos)
      << r.status().message();
}

TEST_F(ServiceAccountTokensTest, TokenForAnotherAudienceIsNotAnApiCredential) {
  std::string t = issue(3600, {"vault"});
  expectRefused(t, "token audiences [\"vault\"] is invalid for the target audiences");
  auto claims = tokens_->verify(t);  // still a valid token, for vault
  ASSERT_TRUE(claims.isOk() && claims->has_value());
  EXPECT_EQ((*claims)->audiences, (std::vector<std::string>{"vault"}));
  EXPECT_TRUE(
      tokens_->authenticateToken(issue(3600, {"vault", kServiceAccountIssuer}))->has_value());
}

TEST_F(ServiceAccountTokensTest, BoundTokenDiesWithItsPod) {
  std::string t = issue(3600, {}, BoundObject{"Pod", "web", "pod-uid-1"});
  EXPECT_EQ(claimsOf(t)["kubernetes.io"]["pod"], (Json{{"name", "web"}, {"uid", "pod-uid-1"}}));
  auto claims = tokens_->verify(t);
  ASSERT_TRUE(claims.isOk() && claims->has_value()) << claims.status().toString();
  ASSERT_TRUE((*claims)->bound.has_value());
  EXPECT_EQ((*claims)->bound->kind, "Pod");
  EXPECT_TRUE(tokens_->authenticateToken(t)->has_value());
  live_.pop_back();
  expectRefused(t, "pod default/web was deleted");
  EXPECT_FALSE(
      tokens_->issue("default", "builder", "sa-uid-1", {}, 600, BoundObject{"Node", "n", "u"})
          .isOk());
}

TEST_F(ServiceAccountTokensTest, IssueChecksItsArguments) {
  EXPECT_FALSE(tokens_->issue("", "builder", "u", {}, 600).isOk());
  EXPECT_FALSE(tokens_->issue("default", "", "u", {}, 600).isOk());
  EXPECT_FALSE(tokens_->issue("default", "builder", "", {}, 600).isOk());
  EXPECT_FALSE(tokens_->issue("default", "builder", "u", {}, 0).isOk());
}

// A token made by another implementation (Python's cryptography, with tests/fuzz/jwt_fuzz.cc's
// throwaway key, at 2023-11-14T22:13:20Z): the same key id, raw r||s read the same way.
TEST(ServiceAccountTokensInteropTest, VerifiesATokenSignedElsewhere) {
  const std::string key = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOVAqSFMthi8E2yZc
IhqhH37YCS3H1aFtbktgxdPehsahRANCAARO3oSOrHC4flRVeRCAJ4ocfEAxpVKk
NCA6IRXnyTi89oqKIonpIN/MlG58NovCoTzaEEN2WD7n3OGqP89W6rIS
-----END PRIVATE KEY-----
)";
  const std::string token =
      "eyJhbGciOiJFUzI1NiIsImtpZCI6IktLdGVSOC01T0ROT1dxS2h6c2JmZWItZ0RaQVRYOHFLRDJ3bFVObFVtdTQifQ."
      "eyJhdWQiOlsiaHR0cHM6Ly9rdWJlcm5ldGVzLmRlZmF1bHQuc3ZjLmNsdXN0ZXIubG9jYWwiXSwiZXhwIjoxNzAwMDAz"
      "NjAwLCJpYXQiOjE3MDAwMDAwMDAsImlzcyI6Imh0dHBzOi8va3ViZXJuZXRlcy5kZWZhdWx0LnN2Yy5jbHVzdGVyLmxv"
      "Y2FsIiwianRpIjoiMGI1ZjZmOGUtM2MxYS00ZDJiLTllN2YtMWEyYjNjNGQ1ZTZmIiwia3ViZXJuZXRlcy5pbyI6eyJu"
      "YW1lc3BhY2UiOiJkZWZhdWx0Iiwic2VydmljZWFjY291bnQiOnsibmFtZSI6ImRlZmF1bHQiLCJ1aWQiOiJmdXp6LXVp"
      "ZCJ9fSwibmJmIjoxNzAwMDAwMDAwLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpkZWZhdWx0In0."
      "Wly4ddwfQWtL923WCp5qAeI0QQaP5aPecVwy-1MfYMizRFbXOW_vbRDOIpDl6zAV66j6mrcfdXLJKXtd3qfrQA";
  FakeClock clock(1'700'000'000'000);
  auto t = ServiceAccountTokens::create(key, clock, [](auto&&...) { return Status::ok(); });
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)->keyId(), "KKteR8-5ODNOWqKhzsbfeb-gDZATX8qKD2wlUNlUmu4");
  auto u = (*t)->authenticateToken(token);
  ASSERT_TRUE(u.isOk()) << u.status().toString();
  ASSERT_TRUE(u->has_value());
  EXPECT_EQ((*u)->name, "system:serviceaccount:default:default");
  EXPECT_EQ((*u)->uid, "fuzz-uid");
}

TEST(ServiceAccountSigningKeyTest, CreatedOnceWithMode0600) {
  testing::TempDir dir;
  const std::string pkiDir = dir.path() + "/pki";
  auto first = loadOrCreateSigningKey(pkiDir);
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  struct stat st {};
  ASSERT_EQ(::stat((pkiDir + "/sa.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = loadOrCreateSigningKey(pkiDir);
  ASSERT_TRUE(second.isOk());
  EXPECT_EQ(*first, *second);

  std::ofstream(pkiDir + "/sa.key") << "not a key";
  auto bad = loadOrCreateSigningKey(pkiDir);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find(pkiDir + "/sa.key"), std::string::npos)
      << bad.status().message();
}

TEST(ServiceAccountSigningKeyTest, OnlyP256KeysAreAccepted) {
  FakeClock clock;
  auto ok = [](auto&&...) { return Status::ok(); };
  EXPECT_FALSE(ServiceAccountTokens::create("garbage", clock, ok).isOk());
  auto ca = pki::createCa("x", std::chrono::hours(1));
  ASSERT_TRUE(ca.isOk());
  EXPECT_FALSE(ServiceAccountTokens::create(ca->certPem, clock, ok).isOk());
  EXPECT_TRUE(ServiceAccountTokens::create(ca->keyPem, clock, ok).isOk());
  EXPECT_FALSE(ServiceAccountTokens::create(ca->keyPem, clock, nullptr).isOk());
}

// The registry-backed check: real ServiceAccounts and pods in a store.
class ServiceAccountTokensRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    auto key = pki::generateKey();
    ASSERT_TRUE(key.isOk());
    auto t = ServiceAccountTokens::create(
        *key, env_.clock, ServiceAccountTokens::registryCheck(*env_.registry, env_.clock));
    ASSERT_TRUE(t.isOk());
    tokens_ = std::move(t).value();
  }
  void TearDown() override { env_.stop(); }

  const api::KindInfo& kind(const char* k) { return *api::findByApiVersionKind("v1", k); }
  std::string create(const char* k, const std::string& name, Json extra = Json::object()) {
    Json obj = {{"apiVersion", "v1"}, {"kind", k}, {"metadata", {{"name", name}}}};
    obj.merge_patch(extra);
    auto r = env_.registry->create(kind(k), "default", obj);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? (*r)["metadata"]["uid"].get<std::string>() : "";
  }
  Result<std::optional<UserInfo>> auth(const std::string& token) {
    return tokens_->authenticateToken(token);
  }

  testing::StoreFixture env_;
  std::unique_ptr<ServiceAccountTokens> tokens_;
};

TEST_F(ServiceAccountTokensRegistryTest, FollowsTheServiceAccountInTheStore) {
  std::string uid = create("ServiceAccount", "ci");
  auto t = tokens_->issue("default", "ci", uid, {}, 3600);
  ASSERT_TRUE(t.isOk());
  EXPECT_TRUE(auth(t->token)->has_value());
  ASSERT_TRUE(env_.registry->remove(kind("ServiceAccount"), "default", "ci").isOk());
  auto gone = auth(t->token);
  ASSERT_FALSE(gone.isOk());
  EXPECT_NE(gone.status().message().find("service account default/ci was deleted"),
            std::string::npos)
      << gone.status().message();
  create("ServiceAccount", "ci");  // same name, new uid
  auto replaced = auth(t->token);
  ASSERT_FALSE(replaced.isOk());
  EXPECT_NE(replaced.status().message().find("was replaced"), std::string::npos)
      << replaced.status().message();
}

TEST_F(ServiceAccountTokensRegistryTest, AServiceAccountBeingDeletedIsRefused) {
  std::string uid = create("ServiceAccount", "held", {{"metadata", {{"finalizers", {"x/y"}}}}});
  auto t = tokens_->issue("default", "held", uid, {}, 3600);
  ASSERT_TRUE(t.isOk());
  EXPECT_TRUE(auth(t->token)->has_value());
  ASSERT_TRUE(env_.registry->remove(kind("ServiceAccount"), "default", "held").isOk());
  auto r = auth(t->token);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("being deleted"), std::string::npos) << r.status().message();
}

TEST_F(ServiceAccountTokensRegistryTest, BoundToAPod) {
  std::string uid = create("ServiceAccount", "default");
  std::string podUid =
      create("Pod", "web", {{"spec", {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}});
  auto t = tokens_->issue("default", "default", uid, {}, 3600, BoundObject{"Pod", "web", podUid});
  ASSERT_TRUE(t.isOk());
  EXPECT_TRUE(auth(t->token)->has_value());
  ASSERT_TRUE(env_.registry->remove(kind("Pod"), "default", "web").isOk());
  auto r = auth(t->token);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("pod default/web was deleted"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace ep::auth
