#include "edgecore/serviceproxy/service_proxy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "edgecore/metamanager/metamanager.h"
#include "edgecore/serviceproxy/service_rules.h"
#include "tests/testing/eventually.h"
#include "tests/testing/sync_changes.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::serviceproxy {
namespace {

namespace tv1 = edgeplane::tunnel::v1;
using Json = nlohmann::json;

Json service(const std::string& name, const std::string& ip, const std::string& type = "ClusterIP",
             int nodePort = 0) {
  Json port = {{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", 8080}};
  if (nodePort) port["nodePort"] = nodePort;
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"type", type}, {"clusterIP", ip}, {"ports", Json::array({port})}}}};
}

Json endpoint(const std::string& ip, const std::string& node, bool ready) {
  return {{"addresses", Json::array({ip})},
          {"nodeName", node},
          {"conditions", {{"ready", ready}, {"serving", ready}, {"terminating", false}}}};
}

Json slice(const std::string& name, const std::string& svc, Json endpoints) {
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", svc}}}}},
          {"addressType", "IPv4"},
          {"ports", Json::parse(R"([{"name":"http","port":8080,"protocol":"TCP"}])")},
          {"endpoints", std::move(endpoints)}};
}

TEST(ServiceRulesTest, OnlyReadyLocalEndpointsOfServicesWithAClusterIp) {
  std::vector<Json> services = {service("web", "10.96.0.10", "NodePort", 30080),
                                service("headless", "None"), service("remote", "10.96.0.11")};
  std::vector<Json> slices = {
      slice("web-a", "web",
            Json::array({endpoint("10.88.0.5", "edge-1", true),
                         endpoint("10.88.0.6", "edge-1", false),    // not ready
                         endpoint("10.88.1.5", "edge-2", true)})),  // another node
      slice("headless-a", "headless", Json::array({endpoint("10.88.0.7", "edge-1", true)})),
      slice("remote-a", "remote", Json::array({endpoint("10.88.1.9", "edge-2", true)}))};
  auto ports = computeServicePorts(services, slices, "edge-1");
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0].name, "web");
  EXPECT_EQ(ports[0].clusterIp, "10.96.0.10");
  EXPECT_EQ(ports[0].nodePort, 30080);
  ASSERT_EQ(ports[0].backends.size(), 1u);
  EXPECT_EQ(ports[0].backends[0], (Backend{"10.88.0.5", 8080}));

  std::string rules = renderNatRules(ports, {"EDGEPLANE-SVC-000000000000", "OTHER-CHAIN"});
  const std::string svc = serviceChain(ports[0]);
  const std::string sep = backendChain(ports[0], ports[0].backends[0]);
  EXPECT_LE(svc.size(), 28u);
  for (const std::string& want : std::vector<std::string>{
           "*nat\n", ":EDGEPLANE-SERVICES - [0:0]\n",
           "-A EDGEPLANE-SERVICES -m comment --comment \"default/web:http\" -p tcp -m tcp -d "
           "10.96.0.10/32 --dport 80 -j " +
               svc + "\n",
           "-A EDGEPLANE-NODEPORTS -m comment --comment \"default/web:http\" -p tcp -m tcp --dport "
           "30080 -j " +
               svc + "\n",
           "-A " + sep +
               " -m comment --comment \"default/web:http\" -p tcp -m tcp -j DNAT "
               "--to-destination 10.88.0.5:8080\n",
           "-A EDGEPLANE-SERVICES -m addrtype --dst-type LOCAL -j EDGEPLANE-NODEPORTS\n",
           ":EDGEPLANE-SVC-000000000000 - [0:0]\n", "-X EDGEPLANE-SVC-000000000000\n",
           "COMMIT\n"}) {
    EXPECT_NE(rules.find(want), std::string::npos) << want << "\n" << rules;
  }
  EXPECT_EQ(rules.find("OTHER-CHAIN"), std::string::npos);  // never touches chains not ours
}

TEST(ServiceRulesTest, BackendsShareTrafficEqually) {
  ServicePort p{
      "default",    "web", "http", "TCP",
      "10.96.0.10", 80,    0,      {{"10.88.0.5", 8080}, {"10.88.0.6", 8080}, {"10.88.0.7", 8080}}};
  std::string rules = renderNatRules({p}, {});
  EXPECT_NE(rules.find("--probability 0.3333333333 -j " + backendChain(p, p.backends[0])),
            std::string::npos)
      << rules;
  EXPECT_NE(rules.find("--probability 0.5000000000 -j " + backendChain(p, p.backends[1])),
            std::string::npos);
  EXPECT_NE(rules.find("--comment \"default/web:http\" -j " + backendChain(p, p.backends[2])),
            std::string::npos);
}

class FakeApplier : public RuleApplier {
 public:
  Result<std::set<std::string>> listChains(const std::string& prefix) override {
    ++lists;
    if (!readable) return unavailableError("iptables-save: Permission denied (you must be root)");
    return existing;
  }
  Status restore(const std::string& rules) override {
    if (!writable) return unavailableError("iptables-restore: failed");
    applied.push_back(rules);
    return Status::ok();
  }
  Status ensureJumps() override {
    ++jumps;
    return Status::ok();
  }
  bool readable = true;
  bool writable = true;
  int lists = 0;
  int jumps = 0;
  std::set<std::string> existing;
  std::vector<std::string> applied;
};

class ServiceProxyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cache_.start().isOk()); }
  void TearDown() override { cache_.stop(); }

  void put(const std::string& resource, const Json& obj) {
    tv1::Sync s;
    s.set_revision(++rev_);
    testing::addPutChange(s, resource, obj, rev_);
    ASSERT_TRUE(cache_.applySync(s).isOk());
  }
  void remove(const std::string& resource, const std::string& name) {
    tv1::Sync s;
    s.set_revision(++rev_);
    testing::addDeleteChange(s, resource, "default", name, rev_);
    ASSERT_TRUE(cache_.applySync(s).isOk());
  }

  testing::TempDir dir_;
  metamanager::MetaManager cache_{metamanager::MetaManagerOptions{dir_.path()}};
  int64_t rev_ = 0;
  FakeApplier applier_;
};

TEST_F(ServiceProxyTest, ANodeWithoutServicesNeverTouchesThePacketFilter) {
  applier_.readable = false;  // not root
  ServiceProxy proxy({.nodeName = "edge-1"}, cache_, applier_);
  EXPECT_TRUE(proxy.syncOnce(true).isOk());
  EXPECT_EQ(applier_.lists, 1);  // looked once for leftovers of a previous run
  EXPECT_TRUE(applier_.applied.empty());
  EXPECT_EQ(proxy.counters().lastError, "");
  // Nothing to program: not looked at again, not even on the periodic resync.
  EXPECT_TRUE(proxy.syncOnce(true).isOk());
  EXPECT_TRUE(proxy.syncOnce(false).isOk());
  EXPECT_EQ(applier_.lists, 1);
  EXPECT_TRUE(applier_.applied.empty());
  // A Service with a local endpoint arrives: now the filter is needed, and its failure shows.
  put("services", service("web", "10.96.0.10"));
  put("endpointslices.discovery.k8s.io",
      slice("web-a", "web", Json::array({endpoint("10.88.0.5", "edge-1", true)})));
  EXPECT_FALSE(proxy.syncOnce(false).isOk());
  EXPECT_EQ(applier_.lists, 2);
  EXPECT_NE(proxy.counters().lastError.find("must be root"), std::string::npos);
  applier_.readable = true;
  EXPECT_TRUE(proxy.syncOnce(false).isOk());
  EXPECT_EQ(applier_.applied.size(), 1u);
}

TEST_F(ServiceProxyTest, ProgramsFromTheCacheAndCleansUpWhenServicesGo) {
  put("services", service("web", "10.96.0.10"));
  put("endpointslices.discovery.k8s.io",
      slice("web-a", "web", Json::array({endpoint("10.88.0.5", "edge-1", true)})));
  ServiceProxy proxy({.nodeName = "edge-1"}, cache_, applier_);
  ASSERT_TRUE(proxy.syncOnce(false).isOk());
  ASSERT_EQ(applier_.applied.size(), 1u);
  EXPECT_NE(applier_.applied[0].find("--to-destination 10.88.0.5:8080"), std::string::npos);
  EXPECT_EQ(applier_.jumps, 1);
  EXPECT_EQ(proxy.counters().servicePorts, 1u);
  EXPECT_EQ(proxy.counters().backends, 1u);
  // Unchanged: nothing written again unless forced (the periodic resync).
  ASSERT_TRUE(proxy.syncOnce(false).isOk());
  EXPECT_EQ(applier_.applied.size(), 1u);
  ASSERT_TRUE(proxy.syncOnce(true).isOk());
  EXPECT_EQ(applier_.applied.size(), 2u);

  // The Service goes: its chains are flushed and deleted, the fixed ones stay empty.
  ServicePort port{"default", "web", "http", "TCP", "10.96.0.10", 80, 0, {{"10.88.0.5", 8080}}};
  remove("services", "web");
  ASSERT_TRUE(proxy.syncOnce(false).isOk());
  ASSERT_EQ(applier_.applied.size(), 3u);
  EXPECT_NE(applier_.applied[2].find("-X " + serviceChain(port) + "\n"), std::string::npos)
      << applier_.applied[2];
  EXPECT_EQ(applier_.applied[2].find("DNAT"), std::string::npos);
  EXPECT_EQ(proxy.counters().servicePorts, 0u);
}

TEST_F(ServiceProxyTest, StaleRulesFromBeforeARestartAreRemoved) {
  // edgecore stopped with a Service programmed; the Service was deleted meanwhile.
  applier_.existing = {"EDGEPLANE-SERVICES", "EDGEPLANE-SVC-0123456789ab",
                       "EDGEPLANE-SEP-0123456789ab"};
  ServiceProxy proxy({.nodeName = "edge-1"}, cache_, applier_);
  ASSERT_TRUE(proxy.syncOnce(false).isOk());
  ASSERT_EQ(applier_.applied.size(), 1u);
  EXPECT_NE(applier_.applied[0].find("-X EDGEPLANE-SVC-0123456789ab\n"), std::string::npos);
  EXPECT_NE(applier_.applied[0].find("-X EDGEPLANE-SEP-0123456789ab\n"), std::string::npos);
}

TEST_F(ServiceProxyTest, FailuresAreReportedAndRetried) {
  put("services", service("web", "10.96.0.10"));
  put("endpointslices.discovery.k8s.io",
      slice("web-a", "web", Json::array({endpoint("10.88.0.5", "edge-1", true)})));
  applier_.writable = false;
  ServiceProxy proxy({.nodeName = "edge-1"}, cache_, applier_);
  EXPECT_FALSE(proxy.syncOnce(false).isOk());
  EXPECT_EQ(proxy.counters().lastError, "iptables-restore: failed");
  applier_.writable = true;
  EXPECT_TRUE(proxy.syncOnce(false).isOk());  // the same rules, written this time
  EXPECT_EQ(applier_.applied.size(), 1u);
  EXPECT_EQ(proxy.counters().lastError, "");
  EXPECT_GE(applier_.lists, 2);  // what exists is read again after a failed write
}

TEST_F(ServiceProxyTest, TheThreadFollowsCacheChanges) {
  ServiceProxy proxy({.nodeName = "edge-1", .minGap = std::chrono::milliseconds(10)}, cache_,
                     applier_);
  proxy.start();
  put("services", service("web", "10.96.0.10"));
  put("endpointslices.discovery.k8s.io",
      slice("web-a", "web", Json::array({endpoint("10.88.0.5", "edge-1", true)})));
  EXPECT_TRUE(testing::eventually([&] { return proxy.counters().backends == 1; }));
  put("endpointslices.discovery.k8s.io",
      slice("web-a", "web",
            Json::array(
                {endpoint("10.88.0.5", "edge-1", true), endpoint("10.88.0.9", "edge-1", true)})));
  EXPECT_TRUE(testing::eventually([&] { return proxy.counters().backends == 2; }));
  proxy.stop();
}

}  // namespace
}  // namespace ep::edgecore::serviceproxy
