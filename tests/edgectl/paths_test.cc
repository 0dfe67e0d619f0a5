#include "edgectl/paths.h"

#include <gtest/gtest.h>

#include "edgectl/resource_args.h"

namespace ep::edgectl {
namespace {

const api::KindInfo& kind(std::string_view userName) {
  const api::KindInfo* k = api::findByUserName(userName);
  EXPECT_NE(k, nullptr) << userName;
  return *k;
}

TEST(PathsTest, CoreKinds) {
  EXPECT_EQ(resourcePath(kind("pods"), "default"), "/api/v1/namespaces/default/pods");
  EXPECT_EQ(resourcePath(kind("po"), "edge", "web-1"), "/api/v1/namespaces/edge/pods/web-1");
  EXPECT_EQ(resourcePath(kind("pods"), ""), "/api/v1/pods");  // all namespaces
}

TEST(PathsTest, GroupedKinds) {
  EXPECT_EQ(resourcePath(kind("deploy"), "default", "web"),
            "/apis/apps/v1/namespaces/default/deployments/web");
  EXPECT_EQ(resourcePath(kind("devices"), "ns1"),
            "/apis/devices.kubeedge.io/v1beta1/namespaces/ns1/devices");
}

TEST(PathsTest, ClusterScopedKindsIgnoreNamespace) {
  EXPECT_EQ(resourcePath(kind("nodes"), "default", "edge-1"), "/api/v1/nodes/edge-1");
  EXPECT_EQ(resourcePath(kind("ns"), "default"), "/api/v1/namespaces");
  EXPECT_EQ(effectiveNamespace(kind("node"), "default"), "");
  EXPECT_EQ(effectiveNamespace(kind("pod"), "default"), "default");
}

TEST(PathsTest, QueryEncoding) {
  EXPECT_EQ(buildQuery({{"labelSelector", "app in (a,b),tier=web"}, {"fieldSelector", ""}}),
            "?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%3Dweb");
  EXPECT_EQ(buildQuery({{"watch", "1"}, {"resourceVersion", "42"}}), "?watch=1&resourceVersion=42");
  EXPECT_EQ(buildQuery({}), "");
  EXPECT_EQ(resourcePath(kind("pods"), "default", "a b"), "/api/v1/namespaces/default/pods/a%20b");
}

TEST(PathsTest, DisplayNames) {
  EXPECT_EQ(kindDisplayName(kind("pods")), "pod");
  EXPECT_EQ(kindDisplayName(kind("deploy")), "deployment.apps");
  EXPECT_EQ(kindDisplayName(kind("Device")), "device.devices.kubeedge.io");
}

TEST(ResourceArgsTest, Forms) {
  auto r = parseResourceArgs({"pods", "a", "b"}, "get");
  ASSERT_TRUE(r.isOk());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].kind->plural, "pods");
  EXPECT_EQ((*r)[0].names, (std::vector<std::string>{"a", "b"}));

  r = parseResourceArgs({"pod/a", "deploy/b", "po/c"}, "get");
  ASSERT_TRUE(r.isOk());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].names, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ((*r)[1].kind->kind, "Deployment");

  r = parseResourceArgs({"pods,deploy"}, "get");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->size(), 2u);

  EXPECT_EQ(parseResourceArgs({"bogus"}, "get").status().message(),
            "the server doesn't have a resource type \"bogus\"");
  EXPECT_FALSE(parseResourceArgs({"pod/a", "b"}, "get").isOk());
  EXPECT_FALSE(parseResourceArgs({}, "get").isOk());
}

}  // namespace
}  // namespace ep::edgectl
