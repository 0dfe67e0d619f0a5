#include "common/api/object_util.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::api {
namespace {

using nlohmann::json;

const json kPod = json::parse(R"({
  "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe", "bad": 3},
               "annotations": {"a.io/x": "1"}},
  "spec": {"nodeName": "edge-1", "containers": [{"name": "app", "image": "nginx"},
                                                 {"name": "side", "image": "busybox"}]},
  "status": {"podIPs": [{"ip": "10.0.0.5"}], "count": 7, "big": 18446744073709551615}
})");

TEST(ObjectUtilTest, LookupPath) {
  ASSERT_NE(lookupPath(kPod, "spec.nodeName"), nullptr);
  EXPECT_EQ(*lookupPath(kPod, "spec.nodeName"), "edge-1");
  EXPECT_EQ(*lookupPath(kPod, "spec.containers[1].image"), "busybox");
  EXPECT_EQ(*lookupPath(kPod, "status.podIPs[0].ip"), "10.0.0.5");
  EXPECT_EQ(lookupPath(kPod, ""), &kPod);
  EXPECT_EQ(lookupPath(kPod, "spec.containers[2].image"), nullptr);
  EXPECT_EQ(lookupPath(kPod, "spec.containers[x]"), nullptr);
  EXPECT_EQ(lookupPath(kPod, "spec.containers[0"), nullptr);
  EXPECT_EQ(lookupPath(kPod, "spec.nodeName.deeper"), nullptr);
  EXPECT_EQ(lookupPath(kPod, "spec[0]"), nullptr);
  EXPECT_EQ(lookupPath(kPod, "missing"), nullptr);
  EXPECT_EQ(lookupPath(json("scalar"), "a"), nullptr);
}

TEST(ObjectUtilTest, TypedAccessors) {
  EXPECT_EQ(stringAt(kPod, "metadata.name"), "web");
  EXPECT_EQ(stringAt(kPod, "status.count", "dflt"), "dflt");
  EXPECT_EQ(stringAt(kPod, "nope"), "");
  EXPECT_EQ(intAt(kPod, "status.count"), 7);
  EXPECT_EQ(intAt(kPod, "metadata.name", -1), -1);
  EXPECT_EQ(intAt(kPod, "status.big", -2), -2);
}

TEST(ObjectUtilTest, LabelsAndAnnotations) {
  auto labels = labelsOf(kPod);
  EXPECT_EQ(labels, (std::map<std::string, std::string>{{"app", "web"}, {"tier", "fe"}}));
  EXPECT_EQ(annotationsOf(kPod).at("a.io/x"), "1");
  EXPECT_TRUE(labelsOf(json::object()).empty());
  EXPECT_TRUE(labelsOf(json::parse(R"({"metadata": {"labels": []}})")).empty());
}

TEST(ObjectUtilTest, NestedDeeperThan) {
  EXPECT_FALSE(nestedDeeperThan(json(1), 0));
  EXPECT_TRUE(nestedDeeperThan(json::object(), 0));
  EXPECT_FALSE(nestedDeeperThan(json::object(), 1));
  json v = json::parse(R"({"a": [1, {"b": {}}], "c": 2})");  // 4 levels
  EXPECT_FALSE(nestedDeeperThan(v, 4));
  EXPECT_TRUE(nestedDeeperThan(v, 3));
  std::string deep(200000, '[');
  deep += std::string(200000, ']');
  EXPECT_TRUE(nestedDeeperThan(json::parse(deep), 512));
}

}  // namespace
}  // namespace ep::api
