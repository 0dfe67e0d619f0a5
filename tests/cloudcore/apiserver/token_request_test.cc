// The TokenRequest subresource (serviceaccounts/NAME/token) through the ApiHandler, with the
// bodies kubectl 1.32 sends, and the protobuf reader under it.
#include "cloudcore/apiserver/token_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cloudcore/apiserver/api_handler.h"
#include "common/api/kinds.h"
#include "common/api/proto_wire.h"
#include "common/pki/pki.h"
#include "tests/testing/store_fixture.h"

namespace ep::apiserver {
namespace {

using Json = nlohmann::json;

// --- protobuf bodies ---------------------------------------------------------------------------

std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string bytesField(uint32_t n, const std::string& payload) {
  return varint(uint64_t{n} << 3 | 2) + varint(payload.size()) + payload;
}
std::string varintField(uint32_t n, uint64_t v) {
  return varint(uint64_t{n} << 3) + varint(v);
}
std::string envelope(const std::string& object) {
  return std::string("k8s\0", 4) +
         bytesField(1, bytesField(1, "authentication.k8s.io/v1") + bytesField(2, "TokenRequest")) +
         bytesField(2, object) + bytesField(3, "") + bytesField(4, "");
}
std::string hex(const char* h) {
  std::string out;
  for (const char* p = h; p[0] && p[1]; p += 2) {
    while (*p == ' ') ++p;
    out.push_back(static_cast<char>(std::stoi(std::string(p, 2), nullptr, 16)));
  }
  return out;
}

// Captured from `kubectl create token default -v=8` (kubectl v1.32.4): no options...
const std::string kKubectlDefault = hex(
    "6b387300 0a28 0a18 61757468656e7469636174696f6e2e6b38732e696f2f7631 120c 546f6b656e52657175"
    "657374 121a 0a100a0012001a0022002a0032003800420012001a040a0012001a002200");
// ... and with --audience a1 --audience a2 --duration 600s --bound-object-kind Pod
// --bound-object-name p1 --bound-object-uid 123.
const std::string kKubectlOptions = hex(
    "6b387300 0a28 0a18 61757468656e7469636174696f6e2e6b38732e696f2f7631 120c 546f6b656e52657175"
    "657374 1239 0a100a0012001a0022002a003200380042 00 121f 0a026131 0a026132 1a12 0a03506f64 "
    "12027631 1a027031 2203313233 20d804 1a040a0012001a002200");

TEST(ProtoWireTest, ReadsFieldsOfEveryWireType) {
  std::string m = varintField(1, 300) + bytesField(2, "a") + bytesField(2, "bb") +
                  hex("1d01000000") /* 3: fixed32 1 */ +
                  hex("210200000000000000") /* 4: fixed64 2 */ + varintField(5, ~uint64_t{0});
  auto p = api::ProtoMessage::parse(m);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->varint(1), 300u);
  EXPECT_EQ(p->bytes(2), "bb");  // last one wins
  EXPECT_EQ(p->repeatedBytes(2), (std::vector<std::string_view>{"a", "bb"}));
  EXPECT_EQ(p->fields().at(3).value, 1u);
  EXPECT_EQ(p->fields().at(4).value, 2u);
  EXPECT_EQ(p->varint(5), ~uint64_t{0});
  EXPECT_FALSE(p->has(6));
  EXPECT_EQ(p->bytes(6), "");
  EXPECT_FALSE(p->varint(2).has_value());
  EXPECT_TRUE(api::ProtoMessage::parse("").has_value());
}

TEST(ProtoWireTest, RefusesMalformedInput) {
  for (const std::string& bad :
       {hex("0a05616263"), hex("08"), hex("08ffffffffffffffffffff01"), hex("0b"), hex("0c"),
        hex("0000"), hex("1d0100"), hex("21010203"), hex("0f"), hex("ffffffffffffffffff7f")}) {
    EXPECT_FALSE(api::ProtoMessage::parse(bad).has_value()) << ::testing::PrintToString(bad);
  }
  EXPECT_FALSE(api::unwrapKubernetesProtobuf("k8s").has_value());
  EXPECT_FALSE(api::unwrapKubernetesProtobuf("{\"kind\":\"TokenRequest\"}").has_value());
  EXPECT_FALSE(api::unwrapKubernetesProtobuf(std::string("k8s\0\x0a\x05", 6)).has_value());
  auto u = api::unwrapKubernetesProtobuf(kKubectlDefault);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->apiVersion, "authentication.k8s.io/v1");
  EXPECT_EQ(u->kind, "TokenRequest");
  EXPECT_TRUE(api::isKubernetesProtobuf("application/vnd.kubernetes.protobuf"));
  EXPECT_TRUE(api::isKubernetesProtobuf("application/vnd.kubernetes.protobuf; charset=x"));
  EXPECT_FALSE(api::isKubernetesProtobuf("application/vnd.kubernetes.protobufx"));
  EXPECT_FALSE(api::isKubernetesProtobuf("application/json"));
}

// --- the subresource ---------------------------------------------------------------------------

class TokenRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    auto key = pki::generateKey();
    ASSERT_TRUE(key.isOk());
    auto t = auth::ServiceAccountTokens::create(
        *key, env_.clock, auth::ServiceAccountTokens::registryCheck(*env_.registry, env_.clock));
    ASSERT_TRUE(t.isOk());
    tokens_ = std::move(t).value();
    handler_ = std::make_unique<ApiHandler>(*env_.registry, env_.clock);
    installTokenRequest(*handler_, *env_.registry, *tokens_);
    saUid_ = create("ServiceAccount", "builder");
  }
  void TearDown() override { env_.stop(); }

  std::string create(const char* kind, const std::string& name, Json extra = Json::object()) {
    Json obj = {{"apiVersion", "v1"}, {"kind", kind}, {"metadata", {{"name", name}}}};
    obj.merge_patch(extra);
    auto r = env_.registry->create(*api::findByApiVersionKind("v1", kind), "default", obj);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? (*r)["metadata"]["uid"].get<std::string>() : "";
  }
  std::string pod(const std::string& name, const std::string& serviceAccount = "") {
    Json spec = {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}};
    if (!serviceAccount.empty()) spec["serviceAccountName"] = serviceAccount;
    return create("Pod", name, {{"spec", spec}});
  }
  ServerResponse post(const std::string& body, const std::string& contentType,
                      const std::string& sa = "builder", const std::string& method = "POST") {
    ServerRequest r;
    r.method = method;
    r.path = r.target = "/api/v1/namespaces/default/serviceaccounts/" + sa + "/token";
    r.body = body;
    r.headers["content-type"] = contentType;
    return handler_->handle(r);
  }
  ServerResponse postJson(const Json& body, const std::string& sa = "builder") {
    return post(body.dump(), "application/json", sa);
  }
  static std::string warning(const ServerResponse& r) {
    for (const auto& [name, value] : r.headers) {
      if (name == "Warning") return value;
    }
    return "";
  }
  // The verified claims of a 201 answer's token.
  auth::ServiceAccountClaims claimsOf(const ServerResponse& r) {
    Json out = Json::parse(r.body, nullptr, false);
    auto c = tokens_->verify(out["status"].value("token", ""));
    EXPECT_TRUE(c.isOk() && c->has_value()) << c.status().toString();
    return c.isOk() && c->has_value() ? **c : auth::ServiceAccountClaims{};
  }

  testing::StoreFixture env_;
  std::unique_ptr<auth::ServiceAccountTokens> tokens_;
  std::unique_ptr<ApiHandler> handler_;
  std::string saUid_;
};

TEST_F(TokenRequestTest, JsonRequestGetsATokenAndTheDefaultedSpec) {
  auto r = postJson(
      {{"apiVersion", "authentication.k8s.io/v1"},
       {"kind", "TokenRequest"},
       {"spec",
        {{"audiences", {"vault", auth::kServiceAccountIssuer}}, {"expirationSeconds", 1200}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  Json out = Json::parse(r.body);
  EXPECT_EQ(out["kind"], "TokenRequest");
  EXPECT_EQ(out["apiVersion"], "authentication.k8s.io/v1");
  EXPECT_EQ(out["metadata"]["name"], "builder");
  EXPECT_EQ(out["spec"]["audiences"], Json::array({"vault", auth::kServiceAccountIssuer}));
  EXPECT_EQ(out["spec"]["expirationSeconds"], 1200);
  const int64_t now = env_.clock.nowMillis() / 1000;
  EXPECT_EQ(out["status"]["expirationTimestamp"], formatRfc3339((now + 1200) * 1000));
  auto c = claimsOf(r);
  EXPECT_EQ(c.name, "builder");
  EXPECT_EQ(c.uid, saUid_);
  EXPECT_EQ(c.expiresAt, now + 1200);
  EXPECT_EQ(c.audiences, (std::vector<std::string>{"vault", auth::kServiceAccountIssuer}));

  auto defaults = postJson(Json::object());
  ASSERT_EQ(defaults.status, 201) << defaults.body;
  Json d = Json::parse(defaults.body);
  EXPECT_EQ(d["spec"]["expirationSeconds"], 3600);
  EXPECT_EQ(d["spec"]["audiences"], Json::array({auth::kServiceAccountIssuer}));
  EXPECT_TRUE(d["spec"]["boundObjectRef"].is_null());
  EXPECT_TRUE(tokens_->authenticateToken(d["status"]["token"].get<std::string>())->has_value());
}

TEST_F(TokenRequestTest, KubectlProtobufBodies) {
  create("ServiceAccount", "default");
  auto r = post(kKubectlDefault, "application/vnd.kubernetes.protobuf", "default");
  ASSERT_EQ(r.status, 201) << r.body;
  Json out = Json::parse(r.body);
  EXPECT_EQ(out["spec"]["expirationSeconds"], 3600);
  EXPECT_EQ(claimsOf(r).name, "default");

  // Audiences, duration and a bound pod: the pod must exist, with the uid given (123).
  auto missing = post(kKubectlOptions, "application/vnd.kubernetes.protobuf", "default");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_NE(missing.body.find("pods \\\"p1\\\" not found"), std::string::npos) << missing.body;
  pod("p1");
  auto conflict = post(kKubectlOptions, "application/vnd.kubernetes.protobuf", "default");
  EXPECT_EQ(conflict.status, 409) << conflict.body;
  EXPECT_NE(conflict.body.find("does not match the UID in record"), std::string::npos);

  // The same request built here with the pod's real uid.
  std::string podUid = pod("p2");
  std::string spec = bytesField(1, "a1") + bytesField(1, "a2") +
                     bytesField(3, bytesField(1, "Pod") + bytesField(2, "v1") +
                                       bytesField(3, "p2") + bytesField(4, podUid)) +
                     varintField(4, 600);
  auto ok = post(envelope(bytesField(1, "") + bytesField(2, spec) + bytesField(3, "")),
                 "application/vnd.kubernetes.protobuf", "default");
  ASSERT_EQ(ok.status, 201) << ok.body;
  Json o = Json::parse(ok.body);
  EXPECT_EQ(o["spec"]["audiences"], Json::array({"a1", "a2"}));
  EXPECT_EQ(o["spec"]["expirationSeconds"], 600);
  EXPECT_EQ(o["spec"]["boundObjectRef"]["uid"], podUid);
  auto c = claimsOf(ok);
  ASSERT_TRUE(c.bound.has_value());
  EXPECT_EQ(c.bound->name, "p2");
  EXPECT_EQ(c.bound->uid, podUid);

  EXPECT_EQ(post(std::string("k8s\0\x0a\x05", 6), "application/vnd.kubernetes.protobuf").status,
            400);
  EXPECT_EQ(post("{}", "application/vnd.kubernetes.protobuf").status, 400);
}

TEST_F(TokenRequestTest, ExpirationLimits) {
  auto shortOne = postJson({{"spec", {{"expirationSeconds", 599}}}});
  EXPECT_EQ(shortOne.status, 422);
  Json s = Json::parse(shortOne.body);
  EXPECT_EQ(s["reason"], "Invalid");
  EXPECT_EQ(s["message"],
            "TokenRequest.authentication.k8s.io \"builder\" is invalid: spec.expirationSeconds: "
            "Invalid value: 599: may not specify a duration less than 10 minutes");
  EXPECT_EQ(s["details"]["causes"][0]["field"], "spec.expirationSeconds");
  EXPECT_EQ(postJson({{"spec", {{"expirationSeconds", -1}}}}).status, 422);
  EXPECT_EQ(postJson({{"spec", {{"expirationSeconds", int64_t{1} << 33}}}}).status, 422);
  EXPECT_EQ(postJson({{"spec", {{"expirationSeconds", 600}}}}).status, 201);

  auto longOne = postJson({{"spec", {{"expirationSeconds", 72 * 3600}}}});
  ASSERT_EQ(longOne.status, 201);
  EXPECT_EQ(Json::parse(longOne.body)["spec"]["expirationSeconds"], 48 * 3600);
  EXPECT_EQ(warning(longOne),
            "299 - \"requested expiration of 259200 seconds shortened to 172800 seconds\"");
  EXPECT_EQ(claimsOf(longOne).expiresAt - env_.clock.nowMillis() / 1000, 48 * 3600);
}

TEST_F(TokenRequestTest, Errors) {
  auto missing = postJson(Json::object(), "nope");
  EXPECT_EQ(missing.status, 404);
  Json m = Json::parse(missing.body);
  EXPECT_EQ(m["kind"], "Status");
  EXPECT_EQ(m["message"], "serviceaccounts \"nope\" not found");
  EXPECT_EQ(post("", "application/json", "builder", "GET").status, 405);
  EXPECT_EQ(post("not json", "application/json").status, 400);
  EXPECT_EQ(postJson({{"kind", "Pod"}}).status, 400);
  EXPECT_EQ(postJson({{"apiVersion", "v1"}}).status, 400);
  EXPECT_EQ(postJson({{"spec", {{"audiences", "one"}}}}).status, 400);
  EXPECT_EQ(postJson({{"spec", {{"expirationSeconds", "600"}}}}).status, 400);
  EXPECT_EQ(postJson({{"spec", {{"boundObjectRef", {{"kind", "Node"}, {"name", "n1"}}}}}}).status,
            400);
  EXPECT_EQ(postJson({{"spec", {{"boundObjectRef", {{"kind", "Pod"}}}}}}).status, 422);
}

TEST_F(TokenRequestTest, BoundObjects) {
  std::string secretUid = create("Secret", "s1");
  auto r = postJson({{"spec", {{"boundObjectRef", {{"kind", "Secret"}, {"name", "s1"}}}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  auto c = claimsOf(r);
  ASSERT_TRUE(c.bound.has_value());
  EXPECT_EQ(c.bound->kind, "Secret");
  EXPECT_EQ(c.bound->uid, secretUid);

  // A pod that runs as another ServiceAccount (or as `default`) cannot carry builder's token.
  pod("as-default");
  pod("as-builder", "builder");
  auto other =
      postJson({{"spec", {{"boundObjectRef", {{"kind", "Pod"}, {"name", "as-default"}}}}}});
  EXPECT_EQ(other.status, 400) << other.body;
  EXPECT_NE(other.body.find("different serviceaccount name"), std::string::npos);
  EXPECT_EQ(
      postJson({{"spec", {{"boundObjectRef", {{"kind", "Pod"}, {"name", "as-builder"}}}}}}).status,
      201);
}

}  // namespace
}  // namespace ep::apiserver
