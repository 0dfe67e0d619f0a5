#include <gtest/gtest.h>

#include "common/api/base64.h"
#include "common/api/models.h"
#include "common/api/registry_auth.h"

namespace ep::api {
namespace {

using Json = nlohmann::json;

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

TEST(ModelsTest, DigestsAndBlobUrls) {
  EXPECT_TRUE(isSha256Digest(kD1));
  for (const char* bad : {"sha256:", "sha256:ABCDEF", "sha512:00", "", "sha256:/../x"}) {
    EXPECT_FALSE(isSha256Digest(bad)) << bad;
  }
  EXPECT_FALSE(isSha256Digest("sha256:" + std::string(63, '1') + "g"));
  EXPECT_EQ(blobUrl(kD1, "m.onnx"), "blob://sha256/" + std::string(64, '1') + "/m.onnx");
  auto ref = parseBlobUrl(blobUrl(kD1, "m.onnx"));
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->digest, kD1);
  EXPECT_EQ(ref->file, "m.onnx");
  for (std::string bad :
       std::vector<std::string>{"s3://bucket/m.onnx", "blob://sha256/abc/m.onnx",
                                "blob://sha256/" + std::string(64, '1'),
                                "blob://sha256/" + std::string(64, '1') + "/../x",
                                "blob://sha256/" + std::string(64, '1') + "/model.json",
                                "blob://sha256/" + std::string(64, '1') + "/.hidden"}) {
    EXPECT_FALSE(parseBlobUrl(bad)) << bad;
  }
}

TEST(ModelsTest, VersionsHistoryAndResolution) {
  Json m = {{"metadata", {{"name", "digits"}, {"namespace", "ns"}}}};
  setModelVersion(m, {"v1", blobUrl(kD1, "a.onnx"), "onnx", kD1, "a.onnx", 10, "t1"});
  setModelVersion(m, {"v2", blobUrl(kD2, "b.onnx"), "onnx", kD2, "b.onnx", 20, "t2"});
  EXPECT_EQ(m["spec"]["url"], blobUrl(kD2, "b.onnx"));
  EXPECT_EQ(m["metadata"]["annotations"][kModelVersionAnnotation], "v2");
  auto cur = currentModelVersion(m);
  EXPECT_EQ(cur.version, "v2");
  EXPECT_EQ(cur.digest, kD2);
  EXPECT_EQ(cur.size, 20u);
  auto history = modelHistory(m);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].version, "v1");
  EXPECT_EQ(history[0].file, "a.onnx");
  EXPECT_EQ(modelDigests(m), (std::set<std::string>{kD1, kD2}));
  auto v1 = resolveModelVersion(m, "v1");
  ASSERT_TRUE(v1.isOk());
  EXPECT_EQ(v1->digest, kD1);
  auto missing = resolveModelVersion(m, "v3");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("model ns/digits has no version \"v3\""),
            std::string::npos);
  // Rollback: current changes, history does not.
  setModelVersion(m, history[0], false);
  EXPECT_EQ(currentModelVersion(m).version, "v1");
  EXPECT_EQ(modelHistory(m).size(), 2u);
  EXPECT_EQ(modelHistory(m).back().version, "v2");
  // The history is bounded.
  for (int i = 0; i < 30; ++i) {
    setModelVersion(
        m, {"x" + std::to_string(i), blobUrl(kD1, "a.onnx"), "onnx", kD1, "a.onnx", 1, ""});
  }
  EXPECT_EQ(modelHistory(m).size(), kMaxModelHistory);
}

TEST(ModelsTest, SednaModelsAndHostileAnnotationsAreHandled) {
  Json sedna = {{"metadata", {{"name", "m"}, {"namespace", "ns"}}},
                {"spec", {{"url", "s3://kubeedge/model.pb"}, {"format", "pb"}}}};
  auto cur = currentModelVersion(sedna);
  EXPECT_EQ(cur.version, "");
  EXPECT_EQ(cur.digest, "");
  auto r = resolveModelVersion(sedna, "");
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find("spec.url"), std::string::npos);
  EXPECT_TRUE(modelDigests(sedna).empty());
  for (std::string junk : std::vector<std::string>{
           "not json", "{}", "[1, \"x\", {\"noversion\": 1}]", std::string(100000, '[')}) {
    Json m = sedna;
    m["metadata"]["annotations"][kModelHistoryAnnotation] = junk;
    EXPECT_TRUE(modelHistory(m).empty()) << junk.substr(0, 20);
  }
}

TEST(ModelsTest, StagedRolloutKeepsTheOtherNodesOnThePreviousVersion) {
  Json m = {{"metadata", {{"name", "digits"}, {"namespace", "ns"}}}};
  setModelVersion(m, {"v1", blobUrl(kD1, "a.onnx"), "onnx", kD1, "a.onnx", 10, ""});
  setModelVersion(m, {"v2", blobUrl(kD2, "b.onnx"), "onnx", kD2, "b.onnx", 20, ""});
  setModelRollout(m, ModelRollout{"v2", "v1", {"edge-a"}});
  EXPECT_EQ(resolveModelVersionForNode(m, "", "edge-a")->version, "v2");
  EXPECT_EQ(resolveModelVersionForNode(m, "", "edge-b")->version, "v1");
  EXPECT_EQ(resolveModelVersionForNode(m, "v2", "edge-b")->version, "v2");  // a pin wins
  // A rollout of a version that is no longer current (rolled back) no longer applies.
  setModelVersion(m, modelHistory(m).front(), false);
  EXPECT_EQ(resolveModelVersionForNode(m, "", "edge-a")->version, "v1");
  setModelRollout(m, std::nullopt);
  EXPECT_FALSE(modelRollout(m).has_value());
  m["metadata"]["annotations"][kModelRolloutAnnotation] = "{broken";
  EXPECT_FALSE(modelRollout(m).has_value());
}

TEST(ModelsTest, ModelVolumesOfAPod) {
  Json pod = {{"spec",
               {{"volumes",
                 Json::array({{{"name", "cfg"}, {"configMap", {{"name", "c"}}}},
                              {{"name", "m"},
                               {"csi",
                                {{"driver", "models.edgeplane.io"},
                                 {"volumeAttributes", {{"model", "digits"}, {"version", "v1"}}}}}},
                              {{"name", "other"}, {"csi", {{"driver", "x.example.com"}}}},
                              "garbage"})}}}};
  auto vols = modelVolumes(pod);
  ASSERT_EQ(vols.size(), 1u);
  EXPECT_EQ(vols[0].volume, "m");
  EXPECT_EQ(vols[0].model, "digits");
  EXPECT_EQ(vols[0].version, "v1");
  EXPECT_EQ(vols[0].field, "spec.volumes[1]");
}

// Regression (models_fuzz): metadata or annotations of another type made setModelVersion and
// setModelRollout throw.
TEST(ModelsTest, SettingVersionsOnAMalformedModelDoesNotThrow) {
  const std::string digest = "sha256:" + std::string(64, 'a');
  const ModelVersion v{"v1", blobUrl(digest, "m.onnx"), "onnx", digest, "m.onnx", 0, ""};
  for (const char* text : {R"({"metadata": 5})", R"({"metadata": {"annotations": []}})",
                           R"({"metadata": "x", "spec": 1})"}) {
    Json model = Json::parse(text);
    ASSERT_NO_THROW(setModelVersion(model, v)) << text;
    EXPECT_EQ(currentModelVersion(model).version, "v1") << text;
    ASSERT_NO_THROW(setModelRollout(model, std::nullopt)) << text;
  }
}

TEST(ModelsTest, OciUrls) {
  auto r = parseOciUrl("oci://127.0.0.1:5443/models/digits:v2");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->registry, "127.0.0.1:5443");
  EXPECT_EQ(r->repository, "models/digits");
  EXPECT_EQ(r->tag, "v2");
  EXPECT_EQ(r->reference(), "v2");
  const std::string d = "sha256:" + std::string(64, 'e');
  r = parseOciUrl("oci://harbor.example.com/team/edge-ai/digits@" + d);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->repository, "team/edge-ai/digits");
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->reference(), d);
  r = parseOciUrl("oci://[::1]:5000/a:b@" + d);  // both: the digest wins
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->registry, "[::1]:5000");
  EXPECT_EQ(r->reference(), d);
  for (const std::string& bad : std::vector<std::string>{
           "http://r/a:b", "oci://r", "oci://r/a", "oci://r/A:b", "oci://r/a:", "oci://r/a:-x",
           "oci://r/a@sha256:12", "oci://r:99999999/a:b", "oci:///a:b", "oci://r/a//b:c",
           "oci://r/a-:b", "oci://r/" + std::string(300, 'a') + ":b",
           "oci://r/a:" + std::string(129, 't')}) {
    EXPECT_FALSE(parseOciUrl(bad).isOk()) << bad;
  }
  // A Model naming an artifact resolves to it (named by its reference without the version
  // annotation); a malformed oci:// url is refused naming spec.url and what is wrong.
  Json m = {{"metadata", {{"name", "m"}, {"namespace", "ns"}}},
            {"spec", {{"url", "oci://r.example/models/m:v3"}, {"format", "onnx"}}}};
  auto v = resolveModelVersion(m, "");
  ASSERT_TRUE(v.isOk()) << v.status().message();
  EXPECT_TRUE(v->oci);
  EXPECT_EQ(v->version, "v3");
  EXPECT_EQ(v->digest, "");
  EXPECT_EQ(modelOciUrls(m), std::set<std::string>{"oci://r.example/models/m:v3"});
  EXPECT_TRUE(modelDigests(m).empty());
  m["spec"]["url"] = "oci://r.example/Models:v3";
  v = resolveModelVersion(m, "");
  ASSERT_FALSE(v.isOk());
  EXPECT_NE(v.status().message().find("spec.url: \"oci://r.example/Models:v3\": bad repository"),
            std::string::npos)
      << v.status().message();
  m["spec"]["credentialName"] = "pull";
  EXPECT_EQ(modelCredentialName(m), "pull");
}

TEST(RegistryAuthTest, CredentialsFromSecrets) {
  auto dockerSecret = [](const std::string& config) {
    return Json{{"type", "kubernetes.io/dockerconfigjson"},
                {"data", {{".dockerconfigjson", base64Encode(config)}}}};
  };
  Json s = dockerSecret(R"({"auths":{"https://127.0.0.1:5443":{"username":"u","password":"p"},
                                     "other.example":{"auth":")" +
                        base64Encode("x:y") + R"("}}})");
  auto a = registryAuthFor(s, "127.0.0.1:5443");
  ASSERT_TRUE(a);
  std::string user, pass;
  ASSERT_TRUE(a->basic(&user, &pass));
  EXPECT_EQ(user + ":" + pass, "u:p");
  a = registryAuthFor(s, "other.example");
  ASSERT_TRUE(a && a->basic(&user, &pass));
  EXPECT_EQ(user + ":" + pass, "x:y");
  EXPECT_FALSE(registryAuthFor(s, "third.example"));
  Json basic = {{"type", "kubernetes.io/basic-auth"},
                {"data", {{"username", base64Encode("b")}, {"password", base64Encode("c")}}}};
  a = registryAuthFor(basic, "any.example");
  ASSERT_TRUE(a && a->basic(&user, &pass));
  EXPECT_EQ(user + ":" + pass, "b:c");
  // Malformed data is no credentials, never a crash.
  EXPECT_FALSE(registryAuthFor(dockerSecret("not json"), "r"));
  EXPECT_FALSE(registryAuthFor(Json{{"data", {{".dockerconfigjson", "%%%"}}}}, "r"));
  EXPECT_FALSE(registryAuthFor(dockerSecret(R"({"auths":{"r":"x"}})"), "r"));
  EXPECT_EQ(registryHostOfAuthKey("https://index.docker.io/v1/"), "docker.io");
}

}  // namespace
}  // namespace ep::api
