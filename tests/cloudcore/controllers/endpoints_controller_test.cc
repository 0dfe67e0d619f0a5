#include "cloudcore/controllers/endpoints_controller.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/api/kinds.h"
#include "tests/testing/store_fixture.h"

namespace ep::controllers {
namespace {

using Json = nlohmann::json;

const api::KindInfo& kindOf(const char* apiVersion, const char* kind) {
  return *api::findByApiVersionKind(apiVersion, kind);
}
const api::KindInfo& svcKind() {
  return kindOf("v1", "Service");
}
const api::KindInfo& podKind() {
  return kindOf("v1", "Pod");
}
const api::KindInfo& epKind() {
  return kindOf("v1", "Endpoints");
}
const api::KindInfo& sliceKind() {
  return kindOf("discovery.k8s.io/v1", "EndpointSlice");
}

// A running pod on `node` with `ip`, Ready or not, whose container serves port 8080 as "http".
Json pod(const std::string& name, const std::string& ip, bool ready, const std::string& app = "web",
         const std::string& node = "edge-1") {
  Json p = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", app}}}}},
      {"spec",
       {{"nodeName", node},
        {"containers",
         Json::array({{{"name", "c"},
                       {"image", "nginx:1"},
                       {"ports", Json::array({{{"name", "http"}, {"containerPort", 8080}}})}}})}}},
      {"status",
       {{"phase", "Running"},
        {"conditions", Json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
  if (!ip.empty()) p["status"]["podIP"] = ip;
  return p;
}

Json service(const std::string& name, Json targetPort = "http") {
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"team", "a"}}}}},
      {"spec",
       {{"selector", {{"app", "web"}}},
        {"ports", Json::array({{{"name", "web"}, {"port", 80}, {"targetPort", targetPort}}})}}}};
}

class EndpointsControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.start().isOk()); }
  void TearDown() override { env_.stop(); }

  void put(const api::KindInfo& kind, Json obj) {
    auto r = env_.registry->create(kind, "default", obj);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  // Creates then writes the status (the pod's status is the node's to write).
  void putPod(Json p) {
    Json status = p["status"];
    put(podKind(), p);
    Json cur = *env_.registry->get(podKind(), "default", p["metadata"]["name"]);
    cur["status"] = status;
    auto r = env_.registry->update(podKind(), "default", p["metadata"]["name"], cur,
                                   registry::Subresource::kStatus);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  std::vector<Json> slicesOf(const std::string& svc) {
    registry::ListQuery q;
    q.labelSelector = std::string(kServiceNameLabel) + "=" + svc;
    auto r = env_.registry->list(sliceKind(), "default", q);
    EXPECT_TRUE(r.isOk());
    return r->items;
  }
  Json endpointsOf(const std::string& svc) {
    auto r = env_.registry->get(epKind(), "default", svc);
    return r.isOk() ? *r : Json();
  }

  testing::StoreFixture env_;
};

TEST_F(EndpointsControllerTest, SlicesAndEndpointsFollowThePods) {
  put(svcKind(), service("web"));
  putPod(pod("web-a", "10.244.0.5", true));
  putPod(pod("web-b", "10.244.0.6", false));
  putPod(pod("web-c", "", true));                  // no IP yet: left out
  putPod(pod("other", "10.244.0.9", true, "db"));  // does not match
  EndpointsController c(*env_.registry, env_.clock);
  auto r = c.reconcileOnce();
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(*r, 2);  // one slice, one Endpoints

  auto slices = slicesOf("web");
  ASSERT_EQ(slices.size(), 1u);
  const Json& s = slices[0];
  EXPECT_EQ(s["metadata"]["labels"][kManagedByLabel], kEndpointSliceControllerName);
  EXPECT_EQ(s["metadata"]["labels"]["team"], "a");
  EXPECT_EQ(s["metadata"]["ownerReferences"][0]["kind"], "Service");
  EXPECT_EQ(s["metadata"]["ownerReferences"][0]["controller"], true);
  EXPECT_EQ(s["addressType"], "IPv4");
  EXPECT_EQ(s["ports"], Json::parse(R"([{"name":"web","port":8080,"protocol":"TCP"}])"));
  ASSERT_EQ(s["endpoints"].size(), 2u);
  EXPECT_EQ(s["endpoints"][0]["addresses"], Json::array({"10.244.0.5"}));
  EXPECT_EQ(s["endpoints"][0]["conditions"],
            Json::parse(R"({"ready":true,"serving":true,"terminating":false})"));
  EXPECT_EQ(s["endpoints"][0]["nodeName"], "edge-1");
  EXPECT_EQ(s["endpoints"][0]["targetRef"]["name"], "web-a");
  EXPECT_EQ(s["endpoints"][1]["conditions"]["ready"], false);

  Json ep = endpointsOf("web");
  ASSERT_TRUE(ep.is_object());
  EXPECT_EQ(ep["subsets"][0]["addresses"][0]["ip"], "10.244.0.5");
  EXPECT_EQ(ep["subsets"][0]["notReadyAddresses"][0]["ip"], "10.244.0.6");
  EXPECT_EQ(ep["subsets"][0]["ports"],
            Json::parse(R"([{"name":"web","port":8080,"protocol":"TCP"}])"));

  // Steady state: nothing written.
  EXPECT_EQ(*c.reconcileOnce(), 0);

  // web-b becomes ready; web-a is deleted.
  Json b = *env_.registry->get(podKind(), "default", "web-b");
  b["status"]["conditions"][0]["status"] = "True";
  ASSERT_TRUE(
      env_.registry->update(podKind(), "default", "web-b", b, registry::Subresource::kStatus)
          .isOk());
  ASSERT_TRUE(env_.registry->remove(podKind(), "default", "web-a").isOk());
  EXPECT_EQ(*c.reconcileOnce(), 2);
  slices = slicesOf("web");
  ASSERT_EQ(slices.size(), 1u);
  ASSERT_EQ(slices[0]["endpoints"].size(), 1u);
  EXPECT_EQ(slices[0]["endpoints"][0]["addresses"][0], "10.244.0.6");
  EXPECT_EQ(slices[0]["endpoints"][0]["conditions"]["ready"], true);
  EXPECT_EQ(endpointsOf("web")["subsets"][0]["addresses"][0]["ip"], "10.244.0.6");

  // The Service goes: so do its slices and Endpoints.
  ASSERT_TRUE(env_.registry->remove(svcKind(), "default", "web").isOk());
  EXPECT_EQ(*c.reconcileOnce(), 2);
  EXPECT_TRUE(slicesOf("web").empty());
  EXPECT_TRUE(endpointsOf("web").is_null());
}

TEST_F(EndpointsControllerTest, NoPodsGiveAPlaceholderSliceAndEmptyEndpoints) {
  put(svcKind(), service("web"));
  EndpointsController c(*env_.registry, env_.clock);
  ASSERT_TRUE(c.reconcileOnce().isOk());
  auto slices = slicesOf("web");
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_TRUE(slices[0]["endpoints"].empty());
  EXPECT_TRUE(slices[0]["ports"].empty());
  Json ep = endpointsOf("web");
  ASSERT_TRUE(ep.is_object());
  EXPECT_FALSE(ep.contains("subsets"));
}

TEST_F(EndpointsControllerTest, ServicesWithoutSelectorAreLeftToTheUser) {
  Json svc = service("manual");
  svc["spec"].erase("selector");
  put(svcKind(), svc);
  put(epKind(), {{"apiVersion", "v1"},
                 {"kind", "Endpoints"},
                 {"metadata", {{"name", "manual"}, {"namespace", "default"}}},
                 {"subsets", Json::parse(R"([{"addresses":[{"ip":"192.168.1.10"}],
                                              "ports":[{"name":"web","port":5432}]}])")}});
  EndpointsController c(*env_.registry, env_.clock);
  EXPECT_EQ(*c.reconcileOnce(), 0);
  EXPECT_EQ(endpointsOf("manual")["subsets"][0]["addresses"][0]["ip"], "192.168.1.10");
  EXPECT_TRUE(slicesOf("manual").empty());
}

TEST(DesiredSlicesTest, NamedPortsSplitPodsAndTerminatingOnesAreNotReady) {
  Json svc = service("web");
  Json a = pod("a", "10.0.0.1", true);
  Json b = pod("b", "10.0.0.2", true);
  b["spec"]["containers"][0]["ports"][0]["containerPort"] = 9090;  // "http" is 9090 here
  Json c = pod("c", "10.0.0.3", true);
  c["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  Json d = pod("d", "10.0.0.4", true);
  d["status"]["phase"] = "Succeeded";  // terminal: left out
  auto slices = desiredSlices(svc, {&a, &b, &c, &d});
  ASSERT_EQ(slices.size(), 2u);
  // Ordered by their ports' serialization: 8080 before 9090.
  EXPECT_EQ(slices[0].ports[0]["port"], 8080);
  ASSERT_EQ(slices[0].endpoints.size(), 2u);
  EXPECT_EQ(slices[0].endpoints[1]["conditions"],
            Json::parse(R"({"ready":false,"serving":true,"terminating":true})"));
  EXPECT_EQ(slices[1].ports[0]["port"], 9090);
  // The Endpoints object leaves terminating pods out.
  Json subsets = desiredSubsets(svc, {&a, &b, &c, &d});
  ASSERT_EQ(subsets.size(), 2u);
  EXPECT_EQ(subsets[0]["addresses"].size(), 1u);
  EXPECT_FALSE(subsets[0].contains("notReadyAddresses"));

  // More than kMaxEndpointsPerSlice pods: several slices.
  std::vector<Json> many;
  for (size_t i = 0; i < kMaxEndpointsPerSlice + 1; ++i) {
    many.push_back(
        pod("p" + std::to_string(1000 + i), "10.1.0." + std::to_string(i % 250 + 1), true));
  }
  std::vector<const Json*> ptrs;
  for (const auto& p : many) ptrs.push_back(&p);
  auto split = desiredSlices(svc, ptrs);
  ASSERT_EQ(split.size(), 2u);
  EXPECT_EQ(split[0].endpoints.size(), kMaxEndpointsPerSlice);
  EXPECT_EQ(split[1].endpoints.size(), 1u);
}

TEST_F(EndpointsControllerTest, KubernetesServicePointsAtTheApi) {
  ASSERT_TRUE(ensureKubernetesService(*env_.registry, "192.168.7.2", 6443).isOk());
  auto svc = env_.registry->get(svcKind(), "default", "kubernetes");
  ASSERT_TRUE(svc.isOk());
  EXPECT_EQ((*svc)["spec"]["clusterIP"], "10.96.0.1");
  EXPECT_EQ((*svc)["spec"]["ports"][0]["port"], 443);
  EXPECT_EQ((*svc)["spec"]["ports"][0]["targetPort"], 6443);
  EXPECT_EQ(endpointsOf("kubernetes")["subsets"][0]["addresses"][0]["ip"], "192.168.7.2");
  auto slice = env_.registry->get(sliceKind(), "default", "kubernetes");
  ASSERT_TRUE(slice.isOk());
  EXPECT_EQ((*slice)["endpoints"][0]["addresses"][0], "192.168.7.2");
  // Idempotent (nothing rewritten), and a new address is written.
  const std::string rv = endpointsOf("kubernetes")["metadata"]["resourceVersion"];
  const std::string svcRv = (*svc)["metadata"]["resourceVersion"];
  ASSERT_TRUE(ensureKubernetesService(*env_.registry, "192.168.7.2", 6443).isOk());
  EXPECT_EQ(endpointsOf("kubernetes")["metadata"]["resourceVersion"], rv);
  EXPECT_EQ(
      (*env_.registry->get(svcKind(), "default", "kubernetes"))["metadata"]["resourceVersion"],
      svcRv);
  ASSERT_TRUE(ensureKubernetesService(*env_.registry, "192.168.7.3", 6443).isOk());
  EXPECT_EQ(endpointsOf("kubernetes")["subsets"][0]["addresses"][0]["ip"], "192.168.7.3");
  // The controller leaves it alone (no selector).
  EndpointsController c(*env_.registry, env_.clock);
  EXPECT_EQ(*c.reconcileOnce(), 0);
  EXPECT_TRUE(env_.registry->get(sliceKind(), "default", "kubernetes").isOk());
}

}  // namespace
}  // namespace ep::controllers
