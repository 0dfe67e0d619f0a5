#include "cloudcore/controllers/pod_eviction_controller.h"

#include <gtest/gtest.h>

#include <fstream>

#include "cloudcore/config.h"
#include "tests/cloudcore/controllers/workload_fixture.h"

namespace ep::controllers {
namespace {

using namespace std::chrono_literals;
using testing::json;

class PodEvictionTest : public testing::WorkloadTest {
 protected:
  json boundPod(const std::string& name, const std::string& node, json tolerations = nullptr) {
    json spec = podSpec();
    spec["nodeName"] = node;
    if (!tolerations.is_null()) spec["tolerations"] = tolerations;
    return createPod(name, spec);
  }
};

TEST_F(PodEvictionTest, OffByDefault) {
  PodEvictionController c(reg(), env_.clock, {});
  addNode("lost");
  boundPod("web", "lost");
  setNodeReady("lost", "Unknown");
  env_.clock.advance(24h);
  auto r = c.reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 0);
  EXPECT_FALSE(pod("web").is_null()) << "edge autonomy: the pod stays";
  EXPECT_TRUE(c.start().isOk());  // no thread when disabled
  c.stop();
}

TEST_F(PodEvictionTest, EvictsAfterTimeoutOnly) {
  PodEvictionController c(reg(), env_.clock, {.timeout = 300s});
  addNode("lost");
  addNode("fine");
  boundPod("a", "lost");
  boundPod("b", "lost",
           json::array({{{"key", "node.kubernetes.io/unreachable"},
                         {"operator", "Exists"},
                         {"effect", "NoExecute"}}}));
  boundPod("c", "lost",
           json::array({{{"key", "node.kubernetes.io/unreachable"},
                         {"operator", "Exists"},
                         {"effect", "NoExecute"},
                         {"tolerationSeconds", 30}}}));
  boundPod("d", "fine");
  env_.clock.advance(10s);
  setNodeReady("lost", "Unknown");
  env_.clock.advance(60s);
  auto r = c.reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 1);
  EXPECT_TRUE(pod("c").is_null()) << "tolerationSeconds 30 < 60s";
  EXPECT_FALSE(pod("a").is_null());
  env_.clock.advance(241s);  // 301s not ready
  r = c.reconcileOnce();
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(*r, 1);
  EXPECT_TRUE(pod("a").is_null());
  EXPECT_FALSE(pod("b").is_null()) << "tolerates unreachable forever";
  EXPECT_FALSE(pod("d").is_null()) << "ready node";
  bool event = false;
  for (const auto& e : events()) {
    event |= e["reason"] == "TaintManagerEviction" && e["involvedObject"]["name"] == "a";
  }
  EXPECT_TRUE(event);
}

TEST_F(PodEvictionTest, ReadyAgainBeforeTimeoutKeepsPods) {
  PodEvictionController c(reg(), env_.clock, {.timeout = 60s});
  addNode("flaky");
  boundPod("a", "flaky");
  setNodeReady("flaky", "False");
  env_.clock.advance(50s);
  setNodeReady("flaky", "True");
  env_.clock.advance(50s);
  ASSERT_EQ(*c.reconcileOnce(), 0);
  EXPECT_FALSE(pod("a").is_null());
}

TEST(PodEvictionConfigTest, KeyParsesValidatesAndDefaultsToZero) {
  cloudcore::Config config;
  EXPECT_EQ(config.podEvictionTimeout.count(), 0);
  ep::testing::TempDir dir;
  std::string path = dir.path() + "/c.yaml";
  std::ofstream(path) << "podEvictionTimeout: 5m\n";
  ASSERT_TRUE(cloudcore::loadConfigFile(path, config).isOk());
  EXPECT_EQ(config.podEvictionTimeout, 300s);
  EXPECT_TRUE(cloudcore::validateConfig(config).isOk());
  std::ofstream(path) << "podEvictionTimeout: soon\n";
  auto s = cloudcore::loadConfigFile(path, config);
  EXPECT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("podEvictionTimeout"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ep::controllers
