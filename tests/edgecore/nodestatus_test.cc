#include <gtest/gtest.h>

#include "edgecore/nodestatus/node_status.h"

namespace ep::edgecore::nodestatus {
namespace {

class FixedHost final : public HostInfo {
 public:
  HostFacts collect() override {
    return {"Edge-Host", "10.0.0.5", 4, 8000000, "arm64", "6.1.0", "Debian GNU/Linux 12"};
  }
};

class RecordingOutbox final : public metamanager::Outbox {
 public:
  Result<uint64_t> enqueue(metamanager::ReportKind kind, const std::string& ns,
                           const std::string& name, const std::string& payload) override {
    std::lock_guard lock(mu);
    entries.push_back({kind, name, payload});
    return entries.size();
  }
  struct E {
    metamanager::ReportKind kind;
    std::string name;
    std::string payload;
  };
  std::mutex mu;
  std::vector<E> entries;
};

NodeIdentity identity() {
  return {"edge-1",
          {{"zone", "a"}},
          {{"dedicated", "edge", "NoSchedule"}},
          "0.1.0",
          "containerd://1.6.20"};
}

TEST(NodeStatus, NodeJsonShape) {
  FakeClock clock(1'700'000'000'000);
  FixedHost host;
  auto n = buildNode(identity(), host.collect(), clock.nowMillis());
  EXPECT_EQ(n["kind"], "Node");
  EXPECT_EQ(n["metadata"]["name"], "edge-1");
  const auto& l = n["metadata"]["labels"];
  EXPECT_EQ(l["zone"], "a");
  EXPECT_EQ(l["kubernetes.io/hostname"], "edge-1");
  EXPECT_EQ(l["kubernetes.io/os"], "linux");
  EXPECT_EQ(l["kubernetes.io/arch"], "arm64");
  EXPECT_EQ(l["node-role.kubernetes.io/edge"], "");
  EXPECT_EQ(n["spec"]["taints"][0]["key"], "dedicated");
  EXPECT_EQ(n["spec"]["taints"][0]["effect"], "NoSchedule");
  const auto& s = n["status"];
  EXPECT_EQ(s["addresses"][0]["type"], "InternalIP");
  EXPECT_EQ(s["addresses"][0]["address"], "10.0.0.5");
  EXPECT_EQ(s["addresses"][1]["type"], "Hostname");
  EXPECT_EQ(s["capacity"]["cpu"], "4");
  EXPECT_EQ(s["capacity"]["memory"], "8000000Ki");
  EXPECT_EQ(s["allocatable"]["pods"], "110");
  EXPECT_EQ(s["nodeInfo"]["architecture"], "arm64");
  EXPECT_EQ(s["nodeInfo"]["osImage"], "Debian GNU/Linux 12");
  EXPECT_EQ(s["nodeInfo"]["kubeletVersion"], "v1.32.0-edgeplane-0.1.0");
  EXPECT_EQ(s["nodeInfo"]["containerRuntimeVersion"], "containerd://1.6.20");
  EXPECT_EQ(s["conditions"][0]["type"], "Ready");
  EXPECT_EQ(s["conditions"][0]["status"], "True");
  EXPECT_EQ(s["conditions"][0]["reason"], "EdgeReady");
  EXPECT_EQ(s["conditions"][0]["lastHeartbeatTime"], "2023-11-14T22:13:20Z");
}

TEST(NodeStatus, ReporterEnqueuesAtStartAndEveryInterval) {
  FakeClock clock;
  FixedHost host;
  RecordingOutbox outbox;
  NodeStatusReporter r(identity(), std::chrono::milliseconds(20), host, outbox, clock);
  ASSERT_TRUE(r.start().isOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  r.stop();
  std::lock_guard lock(outbox.mu);
  ASSERT_GE(outbox.entries.size(), 3u);
  EXPECT_EQ(outbox.entries[0].kind, edgeplane::tunnel::v1::REPORT_KIND_NODE_STATUS);
  EXPECT_EQ(outbox.entries[0].name, "edge-1");
  auto j = nlohmann::json::parse(outbox.entries[0].payload);
  EXPECT_EQ(j["kind"], "Node");
}

TEST(NodeStatus, SystemHostInfoIsSane) {
  SystemHostInfo h;
  auto f = h.collect();
  EXPECT_GE(f.cpus, 1);
  EXPECT_GT(f.memoryKi, 0u);
  EXPECT_FALSE(f.architecture.empty());
  EXPECT_FALSE(f.kernelVersion.empty());
}

}  // namespace
}  // namespace ep::edgecore::nodestatus
