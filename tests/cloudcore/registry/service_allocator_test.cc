#include "cloudcore/registry/service_allocator.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "tests/testing/store_fixture.h"

namespace ep::registry {
namespace {

using Json = nlohmann::json;

const api::KindInfo& svcKind() {
  return *api::findByApiVersionKind("v1", "Service");
}

Json service(const std::string& name, Json spec) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", std::move(spec)}};
}

Json clusterIpSpec() {
  return {{"selector", {{"app", "web"}}}, {"ports", Json::array({{{"port", 80}}})}};
}

Json nodePortSpec(int nodePort = 0) {
  Json port = {{"port", 80}, {"targetPort", 8080}};
  if (nodePort) port["nodePort"] = nodePort;
  return {{"type", "NodePort"}, {"selector", {{"app", "web"}}}, {"ports", Json::array({port})}};
}

std::set<std::string> reservations(store::Store& store) {
  store::ListOptions o;
  o.resource = ServiceAllocator::kAllocationResource;
  std::set<std::string> out;
  auto r = store.list(o);
  EXPECT_TRUE(r.isOk());
  for (const auto& i : r->items) out.insert(i.name);
  return out;
}

class ServiceAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.startStore().isOk());
    auto net = ServiceNetwork::parse("10.0.0.0/29", "30000-30002");  // 5 IPs for others, 3 ports
    ASSERT_TRUE(net.isOk());
    env_.registry = std::make_unique<Registry>(*env_.store, env_.clock, *net);
    ASSERT_TRUE(env_.registry->ensureSystemNamespaces().isOk());
  }
  void TearDown() override { env_.stop(); }

  Result<Json> create(const std::string& name, Json spec) {
    return env_.registry->create(svcKind(), "default", service(name, std::move(spec)));
  }

  testing::StoreFixture env_;
};

TEST(ServiceNetworkTest, ParsesAndRefusesNamingTheSetting) {
  auto d = ServiceNetwork::defaults();
  EXPECT_EQ(d.cidr(), "10.96.0.0/12");
  EXPECT_EQ(d.nodePortRange(), "30000-32767");
  EXPECT_EQ(d.firstIp(), "10.96.0.1");
  EXPECT_TRUE(d.contains("10.111.255.254"));
  EXPECT_FALSE(d.contains("10.112.0.1"));
  EXPECT_FALSE(d.contains("10.96.0.0"));       // network address
  EXPECT_FALSE(d.contains("10.111.255.255"));  // broadcast
  for (const char* bad : {"10.96.0.0", "10.96.0.1/12", "fd00::/108", "10.0.0.0/31", "x/12"}) {
    auto r = ServiceNetwork::parse(bad, "30000-32767");
    ASSERT_FALSE(r.isOk()) << bad;
    EXPECT_NE(r.status().message().find("serviceClusterIpRange"), std::string::npos) << bad;
  }
  for (const char* bad : {"30000", "0-10", "300-200", "1-65536", "a-b"}) {
    auto r = ServiceNetwork::parse("10.96.0.0/12", bad);
    ASSERT_FALSE(r.isOk()) << bad;
    EXPECT_NE(r.status().message().find("serviceNodePortRange"), std::string::npos) << bad;
  }
}

TEST_F(ServiceAllocatorTest, CreateDefaultsAndAllocatesAClusterIp) {
  auto r = create("web", clusterIpSpec());
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  const Json& spec = (*r)["spec"];
  EXPECT_EQ(spec["type"], "ClusterIP");
  EXPECT_EQ(spec["sessionAffinity"], "None");
  EXPECT_EQ(spec["internalTrafficPolicy"], "Cluster");
  EXPECT_EQ(spec["ipFamilies"], Json::array({"IPv4"}));
  EXPECT_EQ(spec["ipFamilyPolicy"], "SingleStack");
  EXPECT_EQ(spec["ports"][0]["protocol"], "TCP");
  EXPECT_EQ(spec["ports"][0]["targetPort"], 80);
  EXPECT_FALSE(spec.contains("externalTrafficPolicy"));
  EXPECT_EQ((*r)["status"], Json({{"loadBalancer", Json::object()}}));
  std::string ip = spec["clusterIP"];
  EXPECT_EQ(spec["clusterIPs"], Json::array({ip}));
  EXPECT_TRUE(ServiceNetwork::parse("10.0.0.0/29", "30000-30002")->contains(ip));
  EXPECT_NE(ip, "10.0.0.1");  // the kubernetes Service's
  EXPECT_EQ(reservations(*env_.store), std::set<std::string>{"ip-" + ip});
}

TEST_F(ServiceAllocatorTest, NeverHandsOutAnIpTwiceAndSaysWhenTheRangeIsFull) {
  std::set<std::string> ips;
  for (int i = 0; i < 5; ++i) {  // 10.0.0.2 .. 10.0.0.6
    auto r = create("s" + std::to_string(i), clusterIpSpec());
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    ips.insert((*r)["spec"]["clusterIP"].get<std::string>());
  }
  EXPECT_EQ(ips.size(), 5u);
  auto full = create("s5", clusterIpSpec());
  ASSERT_FALSE(full.isOk());
  EXPECT_EQ(full.status().code(), Code::kInternal);
  EXPECT_NE(full.status().message().find("range is full"), std::string::npos);
  // Headless and ExternalName Services take no IP, so they still fit.
  Json headless = clusterIpSpec();
  headless["clusterIP"] = "None";
  auto h = create("headless", headless);
  ASSERT_TRUE(h.isOk()) << h.status().toString();
  EXPECT_EQ((*h)["spec"]["clusterIPs"], Json::array({"None"}));
  auto en = create("ext", {{"type", "ExternalName"}, {"externalName", "db.example.com"}});
  ASSERT_TRUE(en.isOk()) << en.status().toString();
  EXPECT_FALSE((*en)["spec"].contains("clusterIP"));
  EXPECT_FALSE((*en)["spec"].contains("ipFamilies"));

  // Deleting one frees its IP at once.
  auto gone = env_.registry->get(svcKind(), "default", "s2");
  ASSERT_TRUE(env_.registry->remove(svcKind(), "default", "s2").isOk());
  auto again = create("s6", clusterIpSpec());
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  EXPECT_EQ((*again)["spec"]["clusterIP"], (*gone)["spec"]["clusterIP"]);
}

TEST_F(ServiceAllocatorTest, ChosenValuesAreCheckedAndReserved) {
  Json spec = clusterIpSpec();
  spec["clusterIP"] = "10.0.0.4";
  ASSERT_TRUE(create("a", spec).isOk());
  auto taken = create("b", spec);
  ASSERT_FALSE(taken.isOk());
  EXPECT_EQ(taken.status().code(), Code::kInvalid);
  EXPECT_NE(taken.status().message().find(
                "spec.clusterIPs: Invalid value: [\"10.0.0.4\"]: failed to allocate IP 10.0.0.4: "
                "provided IP is already allocated"),
            std::string::npos)
      << taken.status().message();
  spec["clusterIP"] = "10.0.0.9";
  auto outside = create("c", spec);
  ASSERT_FALSE(outside.isOk());
  EXPECT_NE(outside.status().message().find("The range of valid IPs is 10.0.0.0/29"),
            std::string::npos)
      << outside.status().message();
  spec["clusterIP"] = "10.0.0.1";  // the kubernetes Service's
  EXPECT_EQ(create("d", spec).status().code(), Code::kInvalid);

  ASSERT_TRUE(create("np", nodePortSpec(30001)).isOk());
  auto portTaken = create("np2", nodePortSpec(30001));
  ASSERT_FALSE(portTaken.isOk());
  EXPECT_NE(portTaken.status().message().find(
                "spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated"),
            std::string::npos)
      << portTaken.status().message();
  auto portOutside = create("np3", nodePortSpec(31000));
  ASSERT_FALSE(portOutside.isOk());
  EXPECT_NE(portOutside.status().message().find("The range of valid ports is 30000-30002"),
            std::string::npos);
  // Failed creates keep nothing reserved: the IP of a refused NodePort Service is free again.
  EXPECT_EQ(reservations(*env_.store).size(), 3u) << "a's IP, np's IP and port";
}

TEST_F(ServiceAllocatorTest, DryRunReservesNothing) {
  WriteOptions dry;
  dry.dryRun = true;
  auto r = env_.registry->create(svcKind(), "default", service("web", nodePortSpec()), dry);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_FALSE((*r)["spec"]["clusterIP"].get<std::string>().empty());
  EXPECT_GE((*r)["spec"]["ports"][0]["nodePort"].get<int>(), 30000);
  EXPECT_TRUE(reservations(*env_.store).empty());
}

TEST_F(ServiceAllocatorTest, UpdatesKeepAllocatedValuesAndReleaseWhatTheTypeNoLongerUses) {
  auto created = create("web", nodePortSpec());
  ASSERT_TRUE(created.isOk()) << created.status().toString();
  const std::string ip = (*created)["spec"]["clusterIP"];
  const int nodePort = (*created)["spec"]["ports"][0]["nodePort"];

  // A PUT of the original manifest (no clusterIP, no nodePort) keeps both.
  auto put = env_.registry->update(svcKind(), "default", "web", service("web", nodePortSpec()));
  ASSERT_TRUE(put.isOk()) << put.status().toString();
  EXPECT_EQ((*put)["spec"]["clusterIP"], ip);
  EXPECT_EQ((*put)["spec"]["ports"][0]["nodePort"], nodePort);

  // The cluster IP never changes.
  Json moved = *put;
  const std::string other = ip == "10.0.0.6" ? "10.0.0.5" : "10.0.0.6";
  moved["spec"]["clusterIP"] = other;
  moved["spec"]["clusterIPs"] = Json::array({other});
  auto refused = env_.registry->update(svcKind(), "default", "web", moved);
  ASSERT_FALSE(refused.isOk());
  EXPECT_NE(refused.status().message().find("may not change once set"), std::string::npos)
      << refused.status().message();

  // NodePort -> ClusterIP by a merge patch: the node port goes and is free again.
  auto patched = env_.registry->patch(svcKind(), "default", "web", PatchType::kMerge,
                                      R"({"spec":{"type":"ClusterIP"}})");
  ASSERT_TRUE(patched.isOk()) << patched.status().toString();
  EXPECT_FALSE((*patched)["spec"]["ports"][0].contains("nodePort"));
  EXPECT_FALSE((*patched)["spec"].contains("externalTrafficPolicy"));
  EXPECT_EQ(reservations(*env_.store), std::set<std::string>{"ip-" + ip});

  // ... and back: a node port again.
  auto back = env_.registry->patch(svcKind(), "default", "web", PatchType::kMerge,
                                   R"({"spec":{"type":"NodePort"}})");
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_GE((*back)["spec"]["ports"][0]["nodePort"].get<int>(), 30000);
  EXPECT_EQ(reservations(*env_.store).size(), 2u);

  // To ExternalName: the cluster IP is released.
  auto en = env_.registry->patch(svcKind(), "default", "web", PatchType::kMerge,
                                 R"({"spec":{"type":"ExternalName","externalName":"db.example.com",
                                     "selector":null}})");
  ASSERT_TRUE(en.isOk()) << en.status().toString();
  EXPECT_FALSE((*en)["spec"].contains("clusterIP"));
  EXPECT_TRUE(reservations(*env_.store).empty());

  // Deleting releases everything.
  ASSERT_TRUE(create("np", nodePortSpec()).isOk());
  ASSERT_TRUE(env_.registry->remove(svcKind(), "default", "np").isOk());
  EXPECT_TRUE(reservations(*env_.store).empty());
}

TEST_F(ServiceAllocatorTest, RepairReleasesLeaksAfterTheGraceAndReservesWhatIsMissing) {
  auto& alloc = env_.registry->serviceAllocator();
  // A leak: reserved for a Service that was never written.
  ASSERT_TRUE(env_.store
                  ->create(ServiceAllocator::kAllocationResource, "", "ip-10.0.0.3",
                           Json({{"namespace", "default"},
                                 {"name", "lost"},
                                 {"uid", "u"},
                                 {"reservedAtMillis", env_.clock.nowMillis()}})
                               .dump())
                  .isOk());
  auto kept = create("web", clusterIpSpec());
  ASSERT_TRUE(kept.isOk());
  EXPECT_EQ(*alloc.repair(60'000), 0);  // within the grace: a write may be in flight
  env_.clock.advance(std::chrono::minutes(2));
  EXPECT_EQ(*alloc.repair(60'000), 1);
  EXPECT_EQ(reservations(*env_.store),
            std::set<std::string>{"ip-" + (*kept)["spec"]["clusterIP"].get<std::string>()});

  // A Service whose reservation is missing (a store restored from elsewhere) gets it back.
  ASSERT_TRUE(env_.store
                  ->remove(ServiceAllocator::kAllocationResource, "",
                           "ip-" + (*kept)["spec"]["clusterIP"].get<std::string>(), 0)
                  .isOk());
  EXPECT_TRUE(alloc.repair(60'000).isOk());
  EXPECT_EQ(reservations(*env_.store).size(), 1u);
}

TEST_F(ServiceAllocatorTest, ValidationNamesTheFields) {
  auto bad = create(
      "Web", {{"type", "NodePort"},
              {"clusterIP", "None"},
              {"ports", Json::array({{{"port", 70000}, {"protocol", "HTTP"}}, {{"port", 80}}})}});
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInvalid);
  const std::string& m = bad.status().message();
  for (const char* want :
       {"metadata.name: Invalid value: \"Web\": a DNS-1035 label",
        "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort "
        "services",
        "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.ports[0].protocol: Unsupported value: \"HTTP\"", "spec.ports[0].name: Required value",
        "spec.ports[1].name: Required value"}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
  }
  auto noPorts = create("web", {{"selector", {{"app", "x"}}}});
  ASSERT_FALSE(noPorts.isOk());
  EXPECT_NE(noPorts.status().message().find("spec.ports: Required value"), std::string::npos);
  auto np = clusterIpSpec();
  np["ports"][0]["nodePort"] = 30001;
  auto wrongType = create("web", np);
  ASSERT_FALSE(wrongType.isOk());
  EXPECT_NE(wrongType.status().message().find("may not be used when `type` is 'ClusterIP'"),
            std::string::npos);
}

TEST_F(ServiceAllocatorTest, ConcurrentCreatesNeverShareAValue) {
  // 5 IPs and 3 node ports for 8 writers at once: exactly 3 NodePort Services fit, each with
  // its own IP and port; the others are refused, and nothing they reserved stays.
  std::vector<std::thread> writers;
  std::vector<Result<Json>> results(8, Status(Code::kInternal, "not run"));
  for (int i = 0; i < 8; ++i) {
    writers.emplace_back([&, i] { results[i] = create("s" + std::to_string(i), nodePortSpec()); });
  }
  for (auto& w : writers) w.join();
  std::set<std::string> ips;
  std::set<int> ports;
  int ok = 0;
  for (auto& r : results) {
    if (!r.isOk()) {
      EXPECT_EQ(r.status().code(), Code::kInternal) << r.status().toString();
      continue;
    }
    ++ok;
    ips.insert((*r)["spec"]["clusterIP"].get<std::string>());
    ports.insert((*r)["spec"]["ports"][0]["nodePort"].get<int>());
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(ips.size(), 3u);
  EXPECT_EQ(ports.size(), 3u);
  EXPECT_EQ(reservations(*env_.store).size(), 6u);
}

TEST_F(ServiceAllocatorTest, NodePortsOfOneServiceNeverCollide) {
  // Port 1 asks for 30001; port 0 must not pick it at random.
  for (int round = 0; round < 10; ++round) {
    Json spec = {{"type", "NodePort"},
                 {"ports", Json::array({{{"name", "a"}, {"port", 80}},
                                        {{"name", "b"}, {"port", 81}, {"nodePort", 30001}}})}};
    auto r = create("np", spec);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_NE((*r)["spec"]["ports"][0]["nodePort"], 30001);
    EXPECT_EQ((*r)["spec"]["ports"][1]["nodePort"], 30001);
    ASSERT_TRUE(env_.registry->remove(svcKind(), "default", "np").isOk());
  }
  // The same node port twice for one protocol is refused; TCP and UDP may share one.
  Json dup = {{"type", "NodePort"},
              {"ports", Json::array({{{"name", "a"}, {"port", 80}, {"nodePort", 30002}},
                                     {{"name", "b"}, {"port", 81}, {"nodePort", 30002}}})}};
  auto refused = create("dup", dup);
  ASSERT_FALSE(refused.isOk());
  EXPECT_NE(refused.status().message().find("spec.ports[1].nodePort: Duplicate value: 30002"),
            std::string::npos)
      << refused.status().message();
  dup["ports"][1]["protocol"] = "UDP";
  ASSERT_TRUE(create("dns", dup).isOk());
  EXPECT_EQ(reservations(*env_.store).count("nodeport-30002"), 1u);
}

TEST_F(ServiceAllocatorTest, LoadBalancerWithoutNodePortsAndFinalizedDeletesRelease) {
  auto lb = create("lb", {{"type", "LoadBalancer"},
                          {"allocateLoadBalancerNodePorts", false},
                          {"ports", Json::array({{{"port", 80}}})}});
  ASSERT_TRUE(lb.isOk()) << lb.status().toString();
  EXPECT_FALSE((*lb)["spec"]["ports"][0].contains("nodePort"));
  EXPECT_EQ(reservations(*env_.store).size(), 1u);  // its IP only

  // A Service held by a finalizer goes when the finalizer is removed: everything is released.
  Json spec = nodePortSpec();
  Json svc = service("held", spec);
  svc["metadata"]["finalizers"] = Json::array({"example.com/hold"});
  ASSERT_TRUE(env_.registry->create(svcKind(), "default", svc).isOk());
  ASSERT_TRUE(env_.registry->remove(svcKind(), "default", "held").isOk());  // terminating
  EXPECT_EQ(reservations(*env_.store).size(), 3u);
  auto last = env_.registry->patch(svcKind(), "default", "held", PatchType::kMerge,
                                   R"({"metadata":{"finalizers":null}})");
  ASSERT_TRUE(last.isOk()) << last.status().toString();
  EXPECT_EQ(reservations(*env_.store).size(), 1u);
}

}  // namespace
}  // namespace ep::registry
