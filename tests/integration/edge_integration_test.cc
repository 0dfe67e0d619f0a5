// cloudcore and real edgecore processes over the tunnel, on loopback.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include "tests/integration/edge_fixture.h"

namespace ep::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string pod(const std::string& name, const std::string& node, const std::string& cm = "") {
  json p = {{"metadata", {{"name", name}, {"labels", {{"app", "t"}}}}},
            {"spec", {{"containers", {{{"name", "c"}, {"image", "busybox:1.36"}}}}}}};
  if (!node.empty()) p["spec"]["nodeName"] = node;
  if (!cm.empty()) {
    p["spec"]["containers"][0]["envFrom"] = {{{"configMapRef", {{"name", cm}}}}};
  }
  return p.dump();
}

std::string configMap(const std::string& name, const std::string& value = "v") {
  return json{{"metadata", {{"name", name}}}, {"data", {{"k", value}}}}.dump();
}

const char* kPods = "/api/v1/namespaces/default/pods";
const char* kCms = "/api/v1/namespaces/default/configmaps";

class EdgeIntegrationTest : public EdgeFixture {};

TEST_F(EdgeIntegrationTest, ThreeNodesReadyAndObjectsReachOnlyTheirNode) {
  for (const char* n : {"edge-1", "edge-2", "edge-3"}) startEdge(n);
  for (const char* n : {"edge-1", "edge-2", "edge-3"}) {
    EXPECT_TRUE(eventually([&] { return nodeReady(n) == "True"; })) << n;
  }
  auto nodes = edgectl({"get", "nodes"});
  EXPECT_NE(nodes.out.find("edge-2"), std::string::npos) << nodes.out;
  EXPECT_NE(nodes.out.find("Ready"), std::string::npos) << nodes.out;

  ASSERT_EQ(post(kCms, configMap("app-cfg")), 201);
  ASSERT_EQ(post(kPods, pod("app", "edge-2", "app-cfg")), 201);
  std::string podPath = std::string(kPods) + "/app", cmPath = std::string(kCms) + "/app-cfg";
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-2", podPath) == 200; }));
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-2", cmPath) == 200; }));
  EXPECT_EQ(edgeStatus("edge-1", podPath), 404);
  EXPECT_EQ(edgeStatus("edge-3", podPath), 404);
  EXPECT_EQ(edgeStatus("edge-1", cmPath), 404);

  // A configmap change reaches the node that uses it.
  ASSERT_EQ(patch(cmPath, R"({"data":{"k":"v2"}})"), 200);
  EXPECT_TRUE(eventually([&] { return edgeGet("edge-2", cmPath)["data"]["k"] == "v2"; }));

  // A device moved from node 2 to node 3 leaves node 2 and reaches node 3.
  std::string dev = "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices";
  ASSERT_EQ(post("/apis/devices.kubeedge.io/v1beta1/namespaces/default/devicemodels",
                 R"({"metadata":{"name":"m"},"spec":{"properties":[{"name":"t","type":"INT"}]}})"),
            201);
  ASSERT_EQ(post(dev, R"({"metadata":{"name":"d"},"spec":{"deviceModelRef":{"name":"m"},
                         "nodeName":"edge-2"}})"),
            201);
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-2", dev + "/d") == 200; }));
  ASSERT_EQ(patch(dev + "/d", R"({"spec":{"nodeName":"edge-3"}})"), 200);
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-3", dev + "/d") == 200; }));
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-2", dev + "/d") == 404; }));

  // Deleting the pod removes it and the configmap nobody on the node uses any more.
  ASSERT_EQ(del(podPath), 200);
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-2", podPath) == 404; }));
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-2", cmPath) == 404; }));
}

TEST_F(EdgeIntegrationTest, EdgeKilledMidStreamConvergesAfterRestart) {
  startEdge("edge-1");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
  std::atomic<int> created{0};
  std::thread writer([&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
      ts.emplace_back([&, t] {
        auto c = client();
        for (int i = t; i < 1000; i += 4) {
          auto r =
              c.request("POST", kPods, pod("p" + std::to_string(i), "edge-1"), "application/json");
          if (r.isOk() && r->status == 201) created++;
        }
      });
    }
    for (auto& t : ts) t.join();
  });
  ASSERT_TRUE(eventually([&] { return created > 200; }));
  edges_["edge-1"].proc->stop(SIGKILL);
  writer.join();
  ASSERT_EQ(created.load(), 1000);
  startEdge("edge-1");
  auto cloudView = [&] {
    std::map<std::string, std::string> m;
    json list = getJson(kPods);
    for (const auto& p : list["items"]) {
      m[p["metadata"]["name"]] = p["metadata"]["resourceVersion"];
    }
    return m;
  };
  auto edgeView = [&] {
    std::map<std::string, std::string> m;
    json list = edgeGet("edge-1", kPods);
    for (const auto& p : list.value("items", json::array())) {
      m[p["metadata"]["name"]] = p["metadata"]["resourceVersion"];
    }
    return m;
  };
  auto expected = cloudView();
  ASSERT_EQ(expected.size(), 1000u);
  EXPECT_TRUE(eventually([&] { return edgeView() == expected; }, std::chrono::seconds(30)));
  for (const auto& [name, rv] : edgeView()) {
    if (expected[name] != rv) {
      ADD_FAILURE() << name << " edge rv " << rv << " cloud rv " << expected[name];
      break;
    }
  }
  EXPECT_EQ(edgeView().size(), 1000u);
}

// Damage at rest in the edge cache (issue 14): a cached object whose bytes changed while
// edgecore was stopped is never served, and the cloud sends it again (the Hello's inventory
// lacks it); a database file damaged beyond that is moved aside and rebuilt from the cloud.
TEST_F(EdgeIntegrationTest, DamagedEdgeCacheIsNeverServedAndIsRepairedFromTheCloud) {
  startEdge("edge-1");
  ASSERT_EQ(post(kCms, configMap("cfg", "the-real-value")), 201);
  ASSERT_EQ(post(kPods, pod("app", "edge-1", "cfg")), 201);
  const std::string cmPath = std::string(kCms) + "/cfg";
  ASSERT_TRUE(
      eventually([&] { return edgeGet("edge-1", cmPath)["data"]["k"] == "the-real-value"; }));
  edges_["edge-1"].proc->stop(SIGTERM);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() + "/edge-1/edge.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "UPDATE objects SET value=replace(value, 'the-real-value', "
                           "'a-flipped-value') WHERE resource='configmaps'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_changes(db), 1);
    sqlite3_close(db);
  }
  startEdge("edge-1");
  // Never the damaged bytes; the right ones again shortly.
  ASSERT_TRUE(eventually([&] {
    json cm = edgeGet("edge-1", cmPath);
    EXPECT_NE(cm.is_object() ? cm["data"].value("k", "") : "", "a-flipped-value");
    return cm.is_object() && cm["data"].value("k", "") == "the-real-value";
  }));
  EXPECT_GE(edgeGet("edge-1", "/status")["cache"].value("damagedObjects", 0), 1);

  // Pages damaged: the database is moved aside and everything comes from the cloud again.
  edges_["edge-1"].proc->stop(SIGTERM);
  {
    FILE* f = std::fopen((dir_.path() + "/edge-1/edge.db").c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 4096, SEEK_SET);
    std::string junk(16384, '\x5a');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  startEdge("edge-1");
  ASSERT_TRUE(
      eventually([&] { return edgeGet("edge-1", cmPath)["data"]["k"] == "the-real-value"; }));
  EXPECT_TRUE(eventually([&] { return edgeStatus("edge-1", std::string(kPods) + "/app") == 200; }));
  EXPECT_NE(edgeGet("edge-1", "/status")["cache"].value("rebuiltFrom", "").find("edge.db.damaged-"),
            std::string::npos);
  EXPECT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
}

TEST_F(EdgeIntegrationTest, EdgeStartsFromCacheWithoutCloud) {
  startEdge("edge-1");
  ASSERT_EQ(post(kCms, configMap("cached")), 201);
  ASSERT_EQ(post(kPods, pod("cached-pod", "edge-1", "cached")), 201);
  std::string podPath = std::string(kPods) + "/cached-pod";
  ASSERT_TRUE(eventually([&] { return edgeStatus("edge-1", podPath) == 200; }));
  cloud_->stop(SIGTERM);
  edges_["edge-1"].proc->stop(SIGTERM);
  startEdge("edge-1");
  EXPECT_EQ(edgeStatus("edge-1", podPath), 200);
  EXPECT_EQ(edgeStatus("edge-1", std::string(kCms) + "/cached"), 200);
  auto list = edgeGet("edge-1", kPods);
  EXPECT_EQ(list["items"].size(), 1u);
}

TEST_F(EdgeIntegrationTest, OfflineChangesConvergeWithOnlyTheDelta) {
  startEdge("edge-1");
  for (int i = 0; i < 20; ++i) {
    std::string cm = "cm" + std::to_string(i);
    ASSERT_EQ(post(kCms, configMap(cm)), 201);
    ASSERT_EQ(post(kPods, pod("p" + std::to_string(i), "edge-1", cm)), 201);
  }
  ASSERT_TRUE(eventually([&] { return edgeGet("edge-1", kCms)["items"].size() == 20; }));
  edges_["edge-1"].proc->stop(SIGTERM);
  double before = metric("edgeplane_cloudhub_changes_sent_total", "edge-1");
  // While offline: 3 configmaps change, 1 pod (and so its configmap) goes away.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(patch(std::string(kCms) + "/cm" + std::to_string(i), R"({"data":{"k":"new"}})"), 200);
  }
  ASSERT_EQ(del(std::string(kPods) + "/p19"), 200);
  startEdge("edge-1");
  EXPECT_TRUE(eventually([&] {
    return edgeGet("edge-1", std::string(kCms) + "/cm0")["data"]["k"] == "new" &&
           edgeStatus("edge-1", std::string(kPods) + "/p19") == 404 &&
           edgeStatus("edge-1", std::string(kCms) + "/cm19") == 404;
  }));
  double after = metric("edgeplane_cloudhub_changes_sent_total", "edge-1");
  // 3 changed configmaps + 1 deleted pod + 1 configmap no longer needed = 5 changes.
  EXPECT_EQ(after - before, 5) << "before " << before << " after " << after;
}

TEST_F(EdgeIntegrationTest, CloudKilledMidStreamEdgesReconnectAndConverge) {
  startEdge("edge-1");
  startEdge("edge-2");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-2") == "True"; }));
  std::atomic<bool> stop{false};
  std::vector<std::string> acked;
  std::mutex mu;
  std::thread writer([&] {
    auto c = client();
    for (int i = 0; !stop; ++i) {
      std::string name = "k" + std::to_string(i);
      auto r = c.request("POST", kPods, pod(name, i % 2 ? "edge-1" : "edge-2"), "application/json");
      if (!r.isOk()) break;
      if (r->status == 201) {
        std::lock_guard lock(mu);
        acked.push_back(name);
      }
    }
  });
  // Killed mid-stream, once enough has been acknowledged.
  const bool busy = eventually([&] {
    std::lock_guard lock(mu);
    return acked.size() > 20;
  });
  cloud_->stop(SIGKILL);
  stop = true;
  writer.join();
  startCloud(cloudArgs());
  ASSERT_TRUE(busy);
  // Every acknowledged pod exists (a write in flight when the cloud died may exist too), and
  // each edge converges to exactly the cloud's pods for it.
  json cloudList = getJson(kPods);
  std::map<std::string, std::set<std::string>> want;
  std::set<std::string> all;
  for (const auto& p : cloudList["items"]) {
    want[p["spec"]["nodeName"]].insert(p["metadata"]["name"]);
    all.insert(p["metadata"]["name"]);
  }
  for (const auto& name : acked) EXPECT_TRUE(all.count(name)) << name << " was acknowledged";
  for (const char* n : {"edge-1", "edge-2"}) {
    auto edgeNames = [&] {
      std::set<std::string> names;
      json list = edgeGet(n, kPods);
      for (const auto& p : list.value("items", json::array())) names.insert(p["metadata"]["name"]);
      return names;
    };
    EXPECT_TRUE(eventually([&] { return edgeNames() == want[n]; }, std::chrono::seconds(30)))
        << n << ": edge has " << edgeNames().size() << ", cloud " << want[n].size();
  }
  // Upward: node status reports keep flowing to the restarted cloud.
  EXPECT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
}

TEST_F(EdgeIntegrationTest, NodeGoesUnknownWhenHeartbeatsStopAndRecovers) {
  restartCloud({"--config", writeFile("cc.yaml", "nodeGracePeriod: 3s\n")});
  startEdge("edge-1");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
  kill(edges_["edge-1"].proc->pid(), SIGSTOP);
  auto stopped = std::chrono::steady_clock::now();
  EXPECT_TRUE(
      eventually([&] { return nodeReady("edge-1") == "Unknown"; }, std::chrono::seconds(3 + 10)));
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, std::chrono::seconds(3 + 10));
  kill(edges_["edge-1"].proc->pid(), SIGCONT);
  EXPECT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
}

// Heartbeats renew the node's Lease in kube-node-lease; the Node itself is written only when its
// status changes (docs/tunnel.md, "Node lifecycle").
TEST_F(EdgeIntegrationTest, HeartbeatsRenewTheNodesLeaseAndLeaveTheNodeAlone) {
  startEdge("edge-1");  // heartbeats every second
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
  auto getJson = [&](const std::string& path) {
    auto c = client();
    auto r = c.request("GET", path);
    return r.isOk() && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
  };
  const std::string leasePath =
      "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/edge-1";
  auto heartbeats = [&] { return edgeGet("edge-1", "/status").value("heartbeat", json::object()); };
  ASSERT_TRUE(eventually([&] { return heartbeats().value("leaseRenewals", 0) >= 2; }))
      << heartbeats().dump();
  json lease = getJson(leasePath);
  ASSERT_TRUE(lease.is_object()) << "no lease";
  EXPECT_EQ(lease["spec"]["holderIdentity"], "edge-1");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 40);
  EXPECT_EQ(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
  EXPECT_EQ(lease["metadata"]["ownerReferences"][0]["uid"],
            getJson("/api/v1/nodes/edge-1")["metadata"]["uid"]);

  const json before = heartbeats();
  const std::string nodeVersion = getJson("/api/v1/nodes/edge-1")["metadata"]["resourceVersion"];
  const std::string renewed = lease["spec"]["renewTime"];
  ASSERT_TRUE(eventually([&] {
    return heartbeats().value("leaseRenewals", 0) >= before.value("leaseRenewals", 0) + 4 &&
           getJson(leasePath)["spec"].value("renewTime", "") != renewed;
  })) << heartbeats().dump();
  // Only a full report (a change of status) writes the Node.
  if (heartbeats().value("fullReports", 0) == before.value("fullReports", 0)) {
    EXPECT_EQ(getJson("/api/v1/nodes/edge-1")["metadata"]["resourceVersion"], nodeVersion);
  }
  EXPECT_EQ(heartbeats().value("fullReports", 0), before.value("fullReports", 0))
      << "the status of an idle node changed";

  // The Node goes, and its Lease with it.
  auto c = client();
  auto del = c.request("DELETE", "/api/v1/nodes/edge-1");
  ASSERT_TRUE(del.isOk() && del->status == 200);
  // A joined node is not registered again by its reports, nor its Lease made without a Node.
  auto status = [&](const std::string& path) {
    auto r = c.request("GET", path);
    return r.isOk() ? r->status : -1;
  };
  ASSERT_TRUE(eventually([&] { return status(leasePath) == 404; }));
  // (Its certificate is revoked with it: the edge's heartbeats go on, offline.)
  auto beats = [&] {
    json h = heartbeats();
    return h.value("leaseRenewals", 0) + h.value("fullReports", 0);
  };
  const int before3 = beats();
  ASSERT_TRUE(eventually([&] { return beats() >= before3 + 3; }));
  EXPECT_EQ(status(leasePath), 404);
  EXPECT_EQ(status("/api/v1/nodes/edge-1"), 404);
}

TEST_F(EdgeIntegrationTest, GarbagePeerIsRefusedAndOthersKeepWorking) {
  startEdge("edge-1");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
  for (int i = 0; i < 3; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(tunnelPort_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string junk(4096, '\x17');
    (void)!write(fd, junk.data(), junk.size());
    close(fd);
  }
  ASSERT_EQ(post(kCms, configMap("after-garbage")), 201);
  ASSERT_EQ(post(kPods, pod("after-garbage", "edge-1", "after-garbage")), 201);
  EXPECT_TRUE(eventually(
      [&] { return edgeStatus("edge-1", std::string(kPods) + "/after-garbage") == 200; }));
  EXPECT_TRUE(cloud_->running());
}

TEST(SystemdUnitsTest, UnitsVerify) {
  if (system("command -v systemd-analyze >/dev/null 2>&1") != 0) GTEST_SKIP();
  for (const char* unit : {"cloudcore.service", "edgecore.service"}) {
    std::string path = std::string(EP_SOURCE_DIR) + "/deploy/systemd/" + unit;
    auto r = runCommand({"systemd-analyze", "verify", path});
    // A missing /usr/local/bin binary is expected on a build machine; anything else is not.
    std::string problems;
    std::istringstream lines(r.out + r.err);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("is not executable") != std::string::npos) continue;
      if (line.empty()) continue;
      problems += line + "\n";
    }
    EXPECT_TRUE(problems.empty()) << unit << ":\n" << problems;
  }
}

// The edge's data dir on a small filesystem that fills up (issue 14, "the HTTP server under
// hostile clients", last item): heartbeats keep reaching the cloud and say DiskPressure (the
// node never turns Unknown for it); Syncs that do not fit make the tunnel back off further on
// each attempt instead of reconnecting several times a second; with room again everything
// applies. Needs root (mounts a tmpfs); CI runs it as root.
class FullDiskTest : public EdgeFixture {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounts a small tmpfs: needs root";
    EdgeFixture::SetUp();
    const std::string dir = dir_.path() + "/edge-a";
    std::filesystem::create_directories(dir);
    ASSERT_EQ(::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64m,mode=0700"), 0)
        << std::strerror(errno);
    mnt_ = dir;
  }
  void TearDown() override {
    EdgeFixture::TearDown();  // the edge stops first
    if (!mnt_.empty()) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  // Writes FILE until the filesystem has no room left.
  static void fill(const std::string& file) {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::string block(1 << 20, 'x');
    for (;;) {
      ssize_t n = ::write(fd, block.data(), block.size());
      if (n <= 0) break;
      if (static_cast<size_t>(n) < block.size()) block.resize(block.size() - n);
    }
    ::close(fd);
  }
  json condition(const std::string& type) {
    json node = getJson("/api/v1/nodes/edge-a");
    if (!node.is_object() || !node["status"].is_object()) return json::object();
    for (const auto& c : node["status"].value("conditions", json::array())) {
      if (c.value("type", "") == type) return c;
    }
    return json::object();
  }
  std::string mnt_;
};

TEST_F(FullDiskTest, AFullDiskIsReportedAndSyncsBackOffUntilThereIsRoomAgain) {
  startEdge("edge-a");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }));
  ASSERT_TRUE(eventually([&] { return condition("DiskPressure").value("status", "") == "False"; }))
      << condition("DiskPressure").dump();
  const std::string reserve = mnt_ + "/disk-reserve";
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(reserve); }));

  // Full: the heartbeats that follow say so (using the reserve when they must), Ready stays.
  fill(mnt_ + "/filler");
  ASSERT_TRUE(
      eventually([&] { return condition("DiskPressure").value("status", "") == "True"; }, 30s))
      << condition("DiskPressure").dump();
  EXPECT_EQ(nodeReady("edge-a"), "True");
  // Heartbeats keep arriving on the full disk (1 s apart): the status stays the same, so they
  // renew the node's Lease, which writes nothing on the edge's disk.
  auto renewTime = [&] {
    json lease = getJson("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/edge-a");
    return lease.is_object() ? lease["spec"].value("renewTime", "") : std::string();
  };
  const std::string renewed = renewTime();
  EXPECT_TRUE(eventually(
      [&] {
        return renewTime() != renewed && condition("DiskPressure").value("status", "") == "True";
      },
      30s))
      << condition("DiskPressure").dump();
  fill(mnt_ + "/filler");  // whatever the reserve gave back is taken too

  // Objects for the node that cannot be stored there: Syncs fail, and the tunnel's backoff
  // keeps growing across the (accepted) reconnects.
  json podJson = json::parse(pod("big", "edge-a"));
  for (int i = 0; i < 6; ++i) {  // 6 x 900 KiB (a ConfigMap holds at most 1 MiB)
    const std::string name = "big-" + std::to_string(i);
    ASSERT_EQ(post(kCms, configMap(name, std::string(900 * 1024, static_cast<char>('a' + i)))),
              201);
    podJson["spec"]["volumes"].push_back({{"name", name}, {"configMap", {{"name", name}}}});
  }
  ASSERT_EQ(post(kPods, podJson.dump()), 201);
  ASSERT_TRUE(eventually(
      [&] {
        json t = edgeGet("edge-a", "/status")["tunnel"];
        return t.is_object() && t.value("reconnectAttempt", 0) >= 3 &&
               !t.value("syncError", "").empty();
      },
      60s))
      << edgeGet("edge-a", "/status").dump();

  // Room again: the Syncs apply, the pod reaches the node's cache, the pressure goes, and the
  // reserve comes back.
  std::filesystem::remove(mnt_ + "/filler");
  const std::string podPath = std::string(kPods) + "/big";
  ASSERT_TRUE(eventually([&] { return edgeStatus("edge-a", podPath) == 200; }, 90s))
      << edgeGet("edge-a", "/status").dump();
  EXPECT_TRUE(
      eventually([&] { return condition("DiskPressure").value("status", "") == "False"; }, 30s));
  EXPECT_TRUE(eventually([&] {
    json t = edgeGet("edge-a", "/status")["tunnel"];
    return t.is_object() && !t.contains("syncError");
  }));
  EXPECT_TRUE(eventually([&] { return std::filesystem::exists(reserve); }, 30s))
      << condition("DiskPressure").dump();
  EXPECT_EQ(nodeReady("edge-a"), "True");
}

}  // namespace
}  // namespace ep::testing
