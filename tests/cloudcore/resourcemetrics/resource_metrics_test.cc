#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/resourcemetrics/metrics_api.h"
#include "cloudcore/resourcemetrics/resource_metrics_store.h"
#include "common/api/quantity.h"
#include "proto/tunnel.pb.h"
#include "tests/testing/server_request.h"
#include "tests/testing/store_fixture.h"

namespace ep::resourcemetrics {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace tv1 = edgeplane::tunnel::v1;

tv1::ResourceMetrics sample(int64_t at, uint64_t nodeCpu, uint64_t nodeMemory) {
  tv1::ResourceMetrics m;
  m.set_timestamp_ms(at);
  m.set_window_ms(15'000);
  m.mutable_node()->set_cpu_nano_cores(nodeCpu);
  m.mutable_node()->set_memory_working_set_bytes(nodeMemory);
  return m;
}

void addPod(tv1::ResourceMetrics& m, const std::string& ns, const std::string& name,
            std::vector<std::tuple<std::string, uint64_t, uint64_t>> containers) {
  auto* p = m.add_pods();
  p->set_namespace_(ns);
  p->set_name(name);
  for (const auto& [c, cpu, memory] : containers) {
    auto* u = p->add_containers();
    u->set_name(c);
    u->mutable_usage()->set_cpu_nano_cores(cpu);
    u->mutable_usage()->set_memory_working_set_bytes(memory);
  }
}

TEST(ResourceMetricsValidation, BadMessagesNameTheField) {
  auto m = sample(1, 1, 1);
  EXPECT_TRUE(validateResourceMetrics(m).isOk());
  auto noTime = sample(0, 1, 1);
  EXPECT_EQ(validateResourceMetrics(noTime).message(), "timestamp_ms: must be positive");
  auto noWindow = sample(1, 1, 1);
  noWindow.set_window_ms(0);
  EXPECT_NE(validateResourceMetrics(noWindow).message().find("window_ms"), std::string::npos);
  auto twice = sample(1, 1, 1);
  addPod(twice, "default", "web", {{"app", 1, 1}});
  addPod(twice, "default", "web", {{"app", 1, 1}});
  EXPECT_EQ(validateResourceMetrics(twice).message(),
            "pods[1]: pod default/web uid \"\" listed twice");
  // The same name with another uid is another pod (one replaced the other meanwhile).
  auto replaced = sample(1, 1, 1);
  addPod(replaced, "default", "web", {{"app", 1, 1}});
  addPod(replaced, "default", "web", {{"app", 1, 1}});
  replaced.mutable_pods(1)->set_uid("uid-2");
  EXPECT_TRUE(validateResourceMetrics(replaced).isOk());
  auto unnamed = sample(1, 1, 1);
  addPod(unnamed, "default", "web", {{"app", 1, 1}, {"", 1, 1}});
  EXPECT_EQ(validateResourceMetrics(unnamed).message(),
            "pods[0].containers[1].name: must not be empty");
  auto many = sample(1, 1, 1);
  for (size_t i = 0; i <= kMaxPodsPerNode; ++i) addPod(many, "ns", "p" + std::to_string(i), {});
  EXPECT_NE(validateResourceMetrics(many).message().find("pods: more than"), std::string::npos);
}

TEST(ResourceMetricsStoreTest, LatestSampleWinsAndGoesStale) {
  FakeClock clock;
  ResourceMetricsStore store(clock);
  EXPECT_EQ(store.node("edge-a"), nullptr);
  store.onResourceMetrics("edge-a", sample(1000, 5, 6));
  store.onResourceMetrics("edge-a", sample(2000, 7, 8));
  auto s = store.node("edge-a");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->timestampMs, 2000);
  EXPECT_EQ(s->node.cpuNanoCores, 7u);
  // A rejected message leaves the last good one in place.
  store.onResourceMetrics("edge-a", sample(0, 1, 1));
  EXPECT_EQ(store.rejected(), 1u);
  EXPECT_EQ(store.node("edge-a")->timestampMs, 2000);
  // 15 s windows: stale after 60 s (3 x 15 s is less).
  clock.advance(60s);
  EXPECT_NE(store.node("edge-a"), nullptr);
  clock.advance(1ms);
  EXPECT_EQ(store.node("edge-a"), nullptr);
}

TEST(ResourceMetricsStoreTest, APodIsFoundByItsUidAndStaleNodesAreSwept) {
  FakeClock clock;
  ResourceMetricsStore store(clock);
  auto m = sample(1000, 1, 1);
  addPod(m, "default", "web", {{"old", 1, 1}});
  addPod(m, "default", "web", {{"new", 2, 2}});
  m.mutable_pods(0)->set_uid("uid-1");
  m.mutable_pods(1)->set_uid("uid-2");
  store.onResourceMetrics("edge-a", m);
  auto s = store.node("edge-a");
  ASSERT_NE(s, nullptr);
  ASSERT_NE(s->containersOf("default", "web", "uid-2"), nullptr);
  EXPECT_EQ(s->containersOf("default", "web", "uid-2")->front().name, "new");
  EXPECT_EQ(s->containersOf("default", "web", "uid-1")->front().name, "old");
  EXPECT_EQ(s->containersOf("default", "web", "uid-3"), nullptr);
  EXPECT_EQ(s->containersOf("default", "db", "uid-1"), nullptr);
  // edge-a goes quiet; edge-b's samples sweep it away once it is stale.
  clock.advance(61s);
  store.onResourceMetrics("edge-b", sample(2000, 1, 1));
  EXPECT_EQ(store.nodeCount(), 1u);
  EXPECT_EQ(store.node("edge-a"), nullptr);
  EXPECT_NE(store.node("edge-b"), nullptr);
}

TEST(QuantityText, CanonicalLikeKubernetes) {
  EXPECT_EQ(api::formatNanoQuantity(0), "0");
  EXPECT_EQ(api::formatNanoQuantity(2'000'000'000), "2");
  EXPECT_EQ(api::formatNanoQuantity(1'500'000'000), "1500m");
  EXPECT_EQ(api::formatNanoQuantity(12'000), "12u");
  EXPECT_EQ(api::formatNanoQuantity(1234), "1234n");
  EXPECT_EQ(api::formatBinaryQuantity(1 << 20), "1Mi");
  EXPECT_EQ(api::formatBinaryQuantity(1536), "1536");
  EXPECT_EQ(api::formatBinaryQuantity(3 * 1024), "3Ki");
  // What is printed parses back to the same value.
  EXPECT_EQ(*api::parseQuantityMilli(api::formatNanoQuantity(123'456'000)), 124);  // rounded up
  EXPECT_EQ(*api::parseQuantityBytes(api::formatBinaryQuantity(uint64_t{5} << 30)),
            int64_t{5} << 30);
}

class MetricsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    api_ = std::make_unique<MetricsApi>(store_, *env_.registry, env_.clock);
    handler_ = std::make_unique<apiserver::ApiHandler>(*env_.registry, env_.clock);
    handler_->addApiGroup(
        {.group = kMetricsGroup,
         .version = kMetricsVersion,
         .resources = &MetricsApi::resources,
         .route = [this](http::ServerRequest& req, const std::vector<std::string>& rest) {
           return api_->handle(req, rest);
         }});
    create("v1", "Node", "", R"({"metadata":{"name":"edge-a","labels":{"zone":"a"}}})");
    create("v1", "Node", "", R"({"metadata":{"name":"edge-b"}})");
    create("v1", "Pod", "default",
           R"({"metadata":{"name":"web","labels":{"app":"web"}},"spec":{"nodeName":"edge-a",)"
           R"("containers":[{"name":"app","image":"busybox"}]}})");
    create("v1", "Pod", "default",
           R"({"metadata":{"name":"db"},"spec":{"nodeName":"edge-b",)"
           R"("containers":[{"name":"db","image":"busybox"}]}})");
  }
  void TearDown() override { env_.stop(); }

  void create(const std::string& apiVersion, const std::string& kind, const std::string& ns,
              const std::string& body) {
    const api::KindInfo* k = api::findByApiVersionKind(apiVersion, kind);
    json j = json::parse(body);
    j["apiVersion"] = apiVersion;
    j["kind"] = kind;
    ASSERT_TRUE(env_.registry->create(*k, ns, j).isOk()) << body;
  }

  std::pair<int, json> get(const std::string& target, const std::string& method = "GET") {
    http::ServerRequest r = testing::serverRequest(method, target);
    auto resp = handler_->handle(r);
    return {resp.status, json::parse(resp.body, nullptr, false)};
  }

  testing::StoreFixture env_;
  ResourceMetricsStore store_{env_.clock};
  std::unique_ptr<MetricsApi> api_;  // over the registry SetUp starts
  std::unique_ptr<apiserver::ApiHandler> handler_;
};

TEST_F(MetricsApiTest, DiscoveryListsTheGroupLikeMetricsServer) {
  auto [status, groups] = get("/apis");
  ASSERT_EQ(status, 200);
  bool found = false;
  for (const auto& g : groups["groups"]) {
    if (g["name"] == "metrics.k8s.io") {
      found = true;
      EXPECT_EQ(g["preferredVersion"]["groupVersion"], "metrics.k8s.io/v1beta1");
    }
  }
  EXPECT_TRUE(found) << groups.dump();
  auto [rs, resources] = get("/apis/metrics.k8s.io/v1beta1");
  ASSERT_EQ(rs, 200);
  EXPECT_EQ(resources["kind"], "APIResourceList");
  EXPECT_EQ(resources["resources"][0]["kind"], "NodeMetrics");
  EXPECT_EQ(resources["resources"][1]["kind"], "PodMetrics");
  EXPECT_EQ(get("/apis/metrics.k8s.io").first, 200);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1").first, 404);
}

TEST_F(MetricsApiTest, NodesAndPodsFromTheLatestSamples) {
  // Nothing sent yet: empty lists, 404 for one.
  auto [s0, empty] = get("/apis/metrics.k8s.io/v1beta1/nodes");
  ASSERT_EQ(s0, 200);
  EXPECT_EQ(empty["kind"], "NodeMetricsList");
  EXPECT_TRUE(empty["items"].empty());
  auto [s1, missing] = get("/apis/metrics.k8s.io/v1beta1/nodes/edge-a");
  EXPECT_EQ(s1, 404);
  EXPECT_EQ(missing["message"], "nodemetrics.metrics.k8s.io \"edge-a\" not found");

  auto m = sample(env_.clock.nowMillis(), 250'000'000, 512 << 20);
  addPod(m, "default", "web", {{"app", 2'000'000, 10 << 20}});
  addPod(m, "default", "db", {{"db", 9, 9}});  // bound to edge-b: not edge-a's to report
  store_.onResourceMetrics("edge-a", m);

  auto [s2, node] = get("/apis/metrics.k8s.io/v1beta1/nodes/edge-a");
  ASSERT_EQ(s2, 200) << node.dump();
  EXPECT_EQ(node["kind"], "NodeMetrics");
  EXPECT_EQ(node["apiVersion"], "metrics.k8s.io/v1beta1");
  EXPECT_EQ(node["metadata"]["labels"]["zone"], "a");
  EXPECT_EQ(node["usage"]["cpu"], "250m");
  EXPECT_EQ(node["usage"]["memory"], "512Mi");
  EXPECT_EQ(node["window"], "15s");
  EXPECT_EQ(node["timestamp"], formatRfc3339(env_.clock.nowMillis()));

  auto [s3, nodes] = get("/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Da");
  ASSERT_EQ(s3, 200);
  ASSERT_EQ(nodes["items"].size(), 1u);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Db").second["items"].size(),
            0u);

  auto [s4, pods] = get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods");
  ASSERT_EQ(s4, 200);
  EXPECT_EQ(pods["kind"], "PodMetricsList");
  ASSERT_EQ(pods["items"].size(), 1u) << pods.dump();
  EXPECT_EQ(pods["items"][0]["metadata"]["name"], "web");
  EXPECT_EQ(pods["items"][0]["metadata"]["labels"]["app"], "web");
  EXPECT_EQ(pods["items"][0]["containers"][0]["usage"]["cpu"], "2m");
  EXPECT_EQ(pods["items"][0]["containers"][0]["usage"]["memory"], "10Mi");
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/pods").second["items"].size(), 1u);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web").first, 200);
  auto [s5, db] = get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/db");
  EXPECT_EQ(s5, 404);
  EXPECT_EQ(db["message"], "podmetrics.metrics.k8s.io \"default/db\" not found");
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/namespaces/other/pods").second["items"].size(), 0u);
}

TEST_F(MetricsApiTest, ReadOnlyAndOnlyItsResources) {
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/nodes", "DELETE").first, 405);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/nodes?watch=true").first, 405);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/services").first, 404);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/namespaces/default/nodes").first, 404);
  EXPECT_EQ(get("/apis/metrics.k8s.io/v1beta1/nodes/a/b").first, 404);
}

}  // namespace
}  // namespace ep::resourcemetrics
