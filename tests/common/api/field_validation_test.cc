#include "common/api/field_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::api {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const KindInfo& kindOf(const std::string& apiVersion, const std::string& kind) {
  const KindInfo* k = findByApiVersionKind(apiVersion, kind);
  EXPECT_NE(k, nullptr) << apiVersion << " " << kind;
  return *k;
}

TEST(FieldValidationTest, ParsesTheParameterWithWarnAsTheDefault) {
  EXPECT_EQ(*parseFieldValidation(""), FieldValidation::kWarn);
  EXPECT_EQ(*parseFieldValidation("Warn"), FieldValidation::kWarn);
  EXPECT_EQ(*parseFieldValidation("Ignore"), FieldValidation::kIgnore);
  EXPECT_EQ(*parseFieldValidation("Strict"), FieldValidation::kStrict);
  auto bad = parseFieldValidation("strict");
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInvalid);
  EXPECT_NE(bad.status().message().find("fieldValidation"), std::string::npos);
}

// Built-in kinds are checked against Kubernetes' message shapes at every depth: arrays of
// structs, embedded structs (a Volume's VolumeSource), maps; opaque values (quantities, times,
// int-or-strings) are not descended into.
TEST(FieldValidationTest, DropsAndNamesUnknownFieldsOfBuiltinKindsAtEveryDepth) {
  json d = json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labelz": {"a": "b"}, "labels": {"app": "web"},
                 "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {
      "replica": 2, "replicas": 1,
      "selector": {"matchLabels": {"app": "web"}},
      "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
      "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
          "containers": [
            {"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}},
            {"name": "b", "imagee": "y", "ports": [{"containerPort": 80, "protocoll": "TCP"}]}
          ],
          "volumes": [{"name": "v", "configMap": {"name": "c", "defaultMod": 1}}]
        }
      }
    },
    "status": {"replicas": 0}
  })");
  auto unknown = pruneUnknownFields(kindOf("apps/v1", "Deployment"), d);
  EXPECT_THAT(unknown, ElementsAre("metadata.labelz", "spec.replica",
                                   "spec.template.spec.containers[1].imagee",
                                   "spec.template.spec.containers[1].ports[0].protocoll",
                                   "spec.template.spec.volumes[0].configMap.defaultMod"));
  EXPECT_FALSE(d["spec"].contains("replica"));
  EXPECT_FALSE(d["metadata"].contains("labelz"));
  EXPECT_EQ(d["spec"]["replicas"], 1);
  EXPECT_EQ(d["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"], "c");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
  EXPECT_EQ(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
  EXPECT_EQ(d["status"]["replicas"], 0);
}

TEST(FieldValidationTest, TopLevelUnknownFieldsOfBuiltinKinds) {
  json cm = json::parse(
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"},
          "spec":{"x":1},"binaryData":{"b":"AA=="}})");
  EXPECT_THAT(pruneUnknownFields(kindOf("v1", "ConfigMap"), cm), ElementsAre("spec"));
  EXPECT_EQ(cm["data"]["k"], "v");
  json s = json::parse(
      R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"k":"v"},
          "type":"Opaque"})");
  EXPECT_THAT(pruneUnknownFields(kindOf("v1", "Secret"), s), IsEmpty());
}

// Custom kinds have no schema here: the top level and metadata are checked, spec and status
// kept whole.
TEST(FieldValidationTest, CustomKindsAreCheckedAtTheTopLevelAndInMetadata) {
  json dev = json::parse(R"({
    "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
    "metadata": {"name": "d", "nmespace": "x"},
    "spec": {"anything": {"goes": [1, 2]}}, "status": {"twins": []}, "extra": true})");
  auto unknown = pruneUnknownFields(kindOf("devices.kubeedge.io/v1beta1", "Device"), dev);
  EXPECT_THAT(unknown, ElementsAre("extra", "metadata.nmespace"));
  EXPECT_EQ(dev["spec"]["anything"]["goes"][1], 2);
}

TEST(FieldValidationTest, FindsDuplicateKeysWithTheirPaths) {
  EXPECT_THAT(duplicateFields(R"({"a":1,"b":{"c":1,"c":2},"a":3})"), ElementsAre("b.c", "a"));
  EXPECT_THAT(duplicateFields(R"({"spec":{"containers":[{"name":"a"},{"name":"b","name":"c"}]}})"),
              ElementsAre("spec.containers[1].name"));
  EXPECT_THAT(duplicateFields(R"([{"x":1},{"x":1,"x":2}])"), ElementsAre("[1].x"));
  EXPECT_THAT(duplicateFields(R"({"a":{"x":1},"b":{"x":1}})"), IsEmpty());
  EXPECT_THAT(duplicateFields(R"({"a":1,"a":)"), IsEmpty());  // not JSON: the parse reports it
  EXPECT_THAT(duplicateFields(""), IsEmpty());
}

// A hostile body costs reading it: nesting past 512 levels is not followed (regression: a 3 MiB
// run of '[' built a path per level and exhausted memory), and at most 100 are reported.
TEST(FieldValidationTest, DuplicateScanIsBoundedForHostileBodies) {
  EXPECT_THAT(duplicateFields(std::string(3 << 20, '[')), IsEmpty());
  std::string deep = std::string(600, '[') + R"({"a":1,"a":2})" + std::string(600, ']');
  EXPECT_THAT(duplicateFields(deep), IsEmpty());
  std::string many = "{";
  for (int i = 0; i < 100000; ++i) many += R"("k":1,)";
  many += R"("k":1})";
  EXPECT_EQ(duplicateFields(many).size(), 100u);
  // A long key is reported cut at 256 bytes, however deep the duplicate under it.
  std::string longKey(3 << 20, 'k');
  std::string nested = "{\"" + longKey + "\":{\"" + longKey + "\":{\"a\":1,\"a\":2}}}";
  auto found = duplicateFields(nested);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_LE(found[0].size(), 259u);
  EXPECT_EQ(found[0].substr(found[0].size() - 3), "...");
}

TEST(FieldValidationTest, UnknownFieldReportsAreBoundedButAllAreDropped) {
  json cm = {{"metadata", {{"name", "c"}}}, {std::string(100000, 'x'), 1}};
  for (int i = 0; i < 500; ++i) cm["u" + std::to_string(i)] = i;
  auto unknown = pruneUnknownFields(kindOf("v1", "ConfigMap"), cm);
  EXPECT_EQ(unknown.size(), 100u);
  for (const auto& u : unknown) EXPECT_LE(u.size(), 259u);
  EXPECT_EQ(cm.size(), 1u) << cm.dump().substr(0, 200);
}

}  // namespace
}  // namespace ep::api
