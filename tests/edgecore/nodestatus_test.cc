#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "edgecore/nodestatus/node_status.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

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
    if (failing) return Status(Code::kUnavailable, "database or disk is full");
    std::lock_guard lock(mu);
    entries.push_back({kind, name, payload});
    return entries.size();
  }
  std::atomic<bool> failing{false};
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
  NodeStatusReporter r(identity(), {.interval = std::chrono::milliseconds(20)}, host, outbox,
                       clock);
  ASSERT_TRUE(r.start().isOk());
  ASSERT_TRUE(testing::eventually([&] {
    std::lock_guard lock(outbox.mu);
    return outbox.entries.size() >= 3;
  }));
  r.stop();
  std::lock_guard lock(outbox.mu);
  EXPECT_EQ(outbox.entries[0].kind, edgeplane::tunnel::v1::REPORT_KIND_NODE_STATUS);
  EXPECT_EQ(outbox.entries[0].name, "edge-1");
  auto j = nlohmann::json::parse(outbox.entries[0].payload);
  EXPECT_EQ(j["kind"], "Node");
}

// Kubelet's DiskPressure (nodefs.available < 10%) and ephemeral-storage capacity, from the data
// dir's filesystem.
TEST(NodeStatus, DiskPressureFollowsTheDataDirsFreeSpace) {
  HostFacts f = FixedHost().collect();
  f.diskCapacityBytes = 100ull << 30;
  f.diskAvailableBytes = 50ull << 30;
  auto n = buildNode(identity(), f, 0);
  EXPECT_EQ(n["status"]["capacity"]["ephemeral-storage"], std::to_string(100ull << 30));
  const auto& d = n["status"]["conditions"][1];
  EXPECT_EQ(d["type"], "DiskPressure");
  EXPECT_EQ(d["status"], "False");
  EXPECT_EQ(d["reason"], "KubeletHasNoDiskPressure");
  f.diskAvailableBytes = 5ull << 30;
  n = buildNode(identity(), f, 0);
  EXPECT_EQ(n["status"]["conditions"][1]["status"], "True");
  EXPECT_EQ(n["status"]["conditions"][1]["reason"], "KubeletHasDiskPressure");
  EXPECT_NE(
      n["status"]["conditions"][1]["message"].get<std::string>().find("5120 MiB of 102400 MiB"),
      std::string::npos);
  EXPECT_EQ(n["status"]["conditions"][0]["status"], "True");  // still Ready
}

// A full disk: the heartbeat's outbox write fails, the reserve is released, and the report
// (DiskPressure True) is written after all; with room again the reserve comes back.
TEST(NodeStatus, AFullDiskIsReportedByReleasingTheReserve) {
  class RoomHost final : public HostInfo {
   public:
    HostFacts collect() override {
      HostFacts f = FixedHost().collect();
      f.diskCapacityBytes = 1ull << 30;
      f.diskAvailableBytes = available;
      return f;
    }
    std::atomic<uint64_t> available{800ull << 20};
  };
  // Full while the reserve file exists (what a filled disk looks like to SQLite).
  class FullOutbox final : public metamanager::Outbox {
   public:
    explicit FullOutbox(std::string reserve) : reserve_(std::move(reserve)) {}
    Result<uint64_t> enqueue(metamanager::ReportKind, const std::string&, const std::string&,
                             const std::string& payload) override {
      if (full && ::access(reserve_.c_str(), F_OK) == 0) {
        return Status(Code::kInternal, "write outbox: database or disk is full");
      }
      payloads.push_back(payload);
      return payloads.size();
    }
    bool full = false;
    std::vector<std::string> payloads;

   private:
    std::string reserve_;
  };
  testing::TempDir dir;
  const std::string reserve = dir.path() + "/disk-reserve";
  RoomHost host;
  FullOutbox outbox(reserve);
  FakeClock clock;
  NodeStatusReporter r(identity(),
                       {.interval = std::chrono::hours(1),
                        .statusReportFrequency = std::chrono::hours(1),
                        .reserve = {.path = reserve, .bytes = 64 * 1024}},
                       host, outbox, clock);
  ASSERT_TRUE(r.reportOnce().isOk());
  struct stat st {};
  ASSERT_EQ(::stat(reserve.c_str(), &st), 0);  // made while there is room
  EXPECT_EQ(st.st_size, 64 * 1024);

  outbox.full = true;
  host.available = 0;
  ASSERT_TRUE(r.reportOnce().isOk());
  EXPECT_NE(::access(reserve.c_str(), F_OK), 0);  // released
  auto j = nlohmann::json::parse(outbox.payloads.back());
  EXPECT_EQ(j["status"]["conditions"][1]["type"], "DiskPressure");
  EXPECT_EQ(j["status"]["conditions"][1]["status"], "True");
  // Still full, and nothing left to release: the error is returned.
  ::close(::open(reserve.c_str(), O_CREAT | O_WRONLY, 0600));
  EXPECT_FALSE(NodeStatusReporter(identity(),
                                  {.interval = std::chrono::hours(1),
                                   .statusReportFrequency = std::chrono::hours(1)},
                                  host, outbox, clock)
                   .reportOnce()
                   .isOk());
  ::unlink(reserve.c_str());

  // Room again: the reserve is made again.
  outbox.full = false;
  host.available = 800ull << 20;
  ASSERT_TRUE(r.reportOnce().isOk());
  EXPECT_EQ(::access(reserve.c_str(), F_OK), 0);
}

// The tunnel as the reporter sees it: a connection number (0: none, or a cloud without leases)
// and the renewals sent.
class FakeLeases final : public LeaseChannel {
 public:
  uint64_t leaseConnection() override { return connection; }
  bool renewLease(uint64_t on) override {
    if (on == 0 || on != connection || !canSend) return false;
    ++renewals;
    return true;
  }
  std::atomic<uint64_t> connection{0};
  std::atomic<bool> canSend{true};
  std::atomic<int> renewals{0};
};

// A host whose free space (and so DiskPressure's message, or its status) can be changed.
class VaryingHost final : public HostInfo {
 public:
  HostFacts collect() override {
    HostFacts f = FixedHost().collect();
    f.diskCapacityBytes = 100ull << 30;
    f.diskAvailableBytes = available;
    return f;
  }
  std::atomic<uint64_t> available{50ull << 30};
};

TEST(NodeStatus, FingerprintLeavesOutWhatChangesWithEveryHeartbeat) {
  HostFacts f = VaryingHost().collect();
  const auto a = buildNode(identity(), f, 1'700'000'000'000);
  f.diskAvailableBytes -= 1 << 20;  // another message: "... MiB of ... available"
  const auto b = buildNode(identity(), f, 1'700'000'010'000);
  EXPECT_NE(a, b);
  EXPECT_EQ(statusFingerprint(a), statusFingerprint(b));
  f.diskAvailableBytes = 1ull << 30;  // under 10%: DiskPressure True
  EXPECT_NE(statusFingerprint(a), statusFingerprint(buildNode(identity(), f, 1'700'000'010'000)));
  NodeIdentity other = identity();
  other.labels["zone"] = "b";
  EXPECT_NE(statusFingerprint(a), statusFingerprint(buildNode(other, f, 1'700'000'000'000)));
}

// While the status stays the same, heartbeats renew the Lease and write nothing on the edge; the
// full status goes on a new connection, on a change, every statusReportFrequency, after a gap in
// the heartbeats, and with every heartbeat while there is no connection taking renewals.
TEST(NodeStatus, HeartbeatsRenewTheLeaseUntilTheStatusIsDue) {
  FakeClock clock(1'700'000'000'000);
  VaryingHost host;
  RecordingOutbox outbox;
  FakeLeases leases;
  NodeStatusReporter r(identity(),
                       {.interval = std::chrono::seconds(10),
                        .statusReportFrequency = std::chrono::minutes(5),
                        .leases = &leases},
                       host, outbox, clock);
  auto entries = [&] {
    std::lock_guard lock(outbox.mu);
    return outbox.entries.size();
  };
  auto beat = [&] {
    clock.advance(std::chrono::seconds(10));
    ASSERT_TRUE(r.reportOnce().isOk());
  };
  // Offline (or an older cloud): every heartbeat is the full status.
  beat();
  beat();
  EXPECT_EQ(entries(), 2u);
  EXPECT_EQ(leases.renewals, 0);

  // Connected: the full status once, then renewals, though the free space moves.
  leases.connection = 7;
  beat();
  EXPECT_EQ(entries(), 3u);
  for (int i = 0; i < 5; ++i) {
    host.available -= 1 << 20;
    beat();
  }
  EXPECT_EQ(entries(), 3u);
  EXPECT_EQ(leases.renewals, 5);
  EXPECT_EQ(r.fullReports(), 3u);
  EXPECT_EQ(r.leaseRenewals(), 5u);

  // A change in what the status says goes at once.
  host.available = 1ull << 30;  // DiskPressure True
  beat();
  EXPECT_EQ(entries(), 4u);
  beat();
  EXPECT_EQ(entries(), 4u);

  // A new connection: the full status (the cloud may have marked the node Unknown).
  leases.connection = 8;
  beat();
  EXPECT_EQ(entries(), 5u);

  // statusReportFrequency after the last full status, whatever happened in between.
  for (int i = 0; i < 29; ++i) beat();  // 4 min 50 s
  EXPECT_EQ(entries(), 5u);
  beat();  // 5 min
  EXPECT_EQ(entries(), 6u);

  // A renewal that cannot go: the full status instead (kept by the outbox).
  leases.canSend = false;
  beat();
  EXPECT_EQ(entries(), 7u);
  leases.canSend = true;
  beat();
  EXPECT_EQ(entries(), 7u);

  // The heartbeat thread was held up for longer than two intervals: the full status.
  clock.advance(std::chrono::seconds(30));
  beat();
  EXPECT_EQ(entries(), 8u);
  beat();
  EXPECT_EQ(entries(), 8u);

  // A full status the outbox cannot take (a full disk): the Lease is renewed all the same.
  const int renewals = leases.renewals;
  outbox.failing = true;
  host.available = 40ull << 30;  // a change: the full status is due
  clock.advance(std::chrono::seconds(10));
  EXPECT_FALSE(r.reportOnce().isOk());
  EXPECT_EQ(leases.renewals, renewals + 1);
  outbox.failing = false;
  beat();  // tried again
  EXPECT_EQ(entries(), 9u);
  std::lock_guard lock(outbox.mu);
  for (const auto& e : outbox.entries) {
    EXPECT_EQ(e.kind, edgeplane::tunnel::v1::REPORT_KIND_NODE_STATUS);
  }
}

TEST(NodeStatus, SystemHostInfoIsSane) {
  SystemHostInfo h;
  auto f = h.collect();
  EXPECT_GE(f.cpus, 1);
  EXPECT_GT(f.memoryKi, 0u);
  EXPECT_FALSE(f.architecture.empty());
  EXPECT_FALSE(f.kernelVersion.empty());
  EXPECT_GT(f.diskCapacityBytes, 0u);
  EXPECT_LE(f.diskAvailableBytes, f.diskCapacityBytes);
}

}  // namespace
}  // namespace ep::edgecore::nodestatus
