// cloudcore on a real etcd (cloudcore --store etcd://...): kubectl works unchanged, Secrets
// reach etcd encrypted, no acknowledged write is lost when etcd or cloudcore is killed, and two
// replicas on one etcd run the controllers on one elected leader.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/cloud_fixture.h"
#include "tests/integration/edge_fixture.h"
#include "tests/testing/etcd.h"
#include "tests/testing/eventually.h"

namespace ep::testing {
namespace {

// A real etcd member beside the fixture's cloudcore (Base: CloudFixture or EdgeFixture),
// started before Base::SetUp; killed after Base::TearDown.
template <typename Base>
class WithEtcd : public Base {
 protected:
  void SetUp() override {
    if (startEtcd()) Base::SetUp();
  }
  // Starts the member; false when the test was skipped (no etcd here) or failed.
  bool startEtcd() {
    if (auto why = EtcdCluster::skipReason(); !why.empty()) {
      [&] { GTEST_SKIP() << why; }();
      return false;
    }
    std::filesystem::create_directories(this->dir_.path() + "/etcd");
    etcd_ = std::make_unique<EtcdCluster>(this->dir_.path() + "/etcd");
    const bool started = etcd_->start();
    [&] { ASSERT_TRUE(started) << etcd_->log(0); }();
    return started;
  }
  void TearDown() override {
    Base::TearDown();
    etcd_.reset();
  }
  CommandResult kubectl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", this->kubeconfig(), "--cache-dir",
                                     this->dir_.path() + "/kubecache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  }
  CommandResult etcdctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"etcdctl", "--endpoints", etcd_->endpoint(0)};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, "", std::chrono::seconds(20), {"ETCDCTL_API=3"});
  }

  std::unique_ptr<EtcdCluster> etcd_;
};

// cloudcore started on etcd.
class EtcdCloudTest : public WithEtcd<CloudFixture> {
 protected:
  void SetUp() override {
    if (!startEtcd()) return;
    dataDir_ = dir_.path() + "/data";
    startCloud({"--store", etcd_->url()});
  }
};

TEST_F(EtcdCloudTest, KubectlWorksAndSecretsReachEtcdEncrypted) {
  auto cm = kubectl({"create", "configmap", "settings", "--from-literal=mode=fast"});
  ASSERT_EQ(cm.exitCode, 0) << cm.err;
  auto secret = kubectl({"create", "secret", "generic", "db", "--from-literal=password=s3cr3t-pw"});
  ASSERT_EQ(secret.exitCode, 0) << secret.err;
  auto got = kubectl({"get", "secret", "db", "-o", "jsonpath={.data.password}"});
  ASSERT_EQ(got.exitCode, 0) << got.err;
  EXPECT_EQ(got.out, "czNjcjN0LXB3");  // base64 of s3cr3t-pw

  // The objects are etcd keys under the prefix; the Secret's value is ciphertext there.
  auto keys = etcdctl({"get", "--prefix", "/edgeplane/configmaps/default/", "--keys-only"});
  ASSERT_EQ(keys.exitCode, 0) << keys.err;
  EXPECT_NE(keys.out.find("/edgeplane/configmaps/default/settings"), std::string::npos) << keys.out;
  auto raw = etcdctl({"get", "/edgeplane/secrets/default/db", "--print-value-only"});
  ASSERT_EQ(raw.exitCode, 0) << raw.err;
  EXPECT_EQ(raw.out.rfind("k8s:enc:", 0), 0u) << raw.out;
  EXPECT_EQ(raw.out.find("s3cr3t-pw"), std::string::npos);
  EXPECT_EQ(raw.out.find("czNjcjN0LXB3"), std::string::npos);
}

// Writers keep creating ConfigMaps through the API while etcd is killed (SIGKILL) and started
// again, and then cloudcore is killed and started again: every create that was answered 201 is
// there at the end, and an API watch held across etcd's restart delivered each one once.
TEST_F(EtcdCloudTest, AcknowledgedWritesSurviveKillsOfEtcdAndCloudcore) {
  ASSERT_EQ(kubectl({"create", "configmap", "listed"}).exitCode, 0);
  Process watch({"/usr/bin/kubectl", "--kubeconfig", kubeconfig(), "--cache-dir",
                 dir_.path() + "/kubecache", "get", "cm", "-n", "default", "-w", "-o", "name"},
                dir_.path() + "/watch.log");
  ASSERT_TRUE(watch.start());
  ASSERT_TRUE(eventually([&] { return watch.log().find("configmap/listed") != std::string::npos; }))
      << watch.log();

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acked;
  auto write = [&](int t) {
    http::ClientOptions o = adminOptions();
    o.timeout = std::chrono::seconds(15);
    for (int i = 0; !stop; ++i) {
      http::HttpClient c(server(), o);
      std::string name = "cm-" + std::to_string(t) + "-" + std::to_string(i);
      auto r = c.request("POST", "/api/v1/namespaces/default/configmaps",
                         R"({"metadata":{"name":")" + name + R"("},"data":{"k":"v"}})",
                         "application/json");
      if (r.isOk() && r->status == 201) {
        std::lock_guard lock(mu);
        acked.push_back(name);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // cloudcore or etcd down
      }
    }
  };
  auto ackedCount = [&] {
    std::lock_guard lock(mu);
    return acked.size();
  };
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) writers.emplace_back(write, t);

  ASSERT_TRUE(eventually([&] { return ackedCount() > 30; }));
  etcd_->killMember(0);
  ASSERT_TRUE(etcd_->startMember(0)) << etcd_->log(0);
  const size_t afterEtcd = ackedCount();
  ASSERT_TRUE(eventually([&] { return ackedCount() > afterEtcd + 30; }, std::chrono::seconds(30)))
      << cloud_->log();
  // The watch opened before it all delivers every write acknowledged before etcd was killed
  // and while it restarted, once each.
  std::vector<std::string> early;
  {
    std::lock_guard lock(mu);
    early.assign(acked.begin(), acked.begin() + static_cast<std::ptrdiff_t>(afterEtcd));
  }
  auto undelivered = [&] {
    const std::string seen = watch.log();
    std::vector<std::string> missing;
    for (const auto& name : early) {
      if (seen.find("configmap/" + name + "\n") == std::string::npos) missing.push_back(name);
    }
    return missing;
  };
  const bool allDelivered =
      eventually([&] { return undelivered().empty(); }, std::chrono::seconds(20));
  const auto missing = undelivered();
  EXPECT_TRUE(allDelivered) << missing.size() << " not delivered, e.g. "
                            << (missing.empty() ? "" : missing.front()) << "\n"
                            << cloud_->log();
  EXPECT_TRUE(watch.running()) << watch.log();
  for (const auto& name : early) {
    const std::string line = "configmap/" + name + "\n";
    const std::string seen = watch.log();
    EXPECT_EQ(seen.find(line), seen.rfind(line)) << name << " delivered twice";
  }

  cloud_->stop(SIGKILL);
  stop = true;
  for (auto& w : writers) w.join();

  startCloud({"--store", etcd_->url()});
  auto list = getJson("/api/v1/namespaces/default/configmaps");
  std::set<std::string> present;
  for (const auto& item : list["items"]) present.insert(item["metadata"]["name"]);
  for (const auto& name : acked) EXPECT_TRUE(present.count(name)) << name << " was acknowledged";
}

// A second cloudcore on the same etcd, set up as docs/deployment.md says: a copy of the first
// one's pki/ in a data dir of its own, and its own ports.
struct SecondReplica {
  std::string dataDir;
  int apiPort = 0;
  int tunnelPort = 0;
  std::unique_ptr<Process> proc;

  void start(const std::string& firstDataDir, const std::string& root, const std::string& store) {
    dataDir = root + "/b";
    std::filesystem::create_directories(dataDir);
    std::filesystem::copy(firstDataDir + "/pki", dataDir + "/pki",
                          std::filesystem::copy_options::recursive);
    apiPort = freePort();
    tunnelPort = freePort();
    proc = std::make_unique<Process>(
        std::vector<std::string>{buildPath("cloudcore/cloudcore"), "--data-dir", dataDir, "--store",
                                 store, "--api-listen", "127.0.0.1:" + std::to_string(apiPort),
                                 "--tunnel-listen", "127.0.0.1:" + std::to_string(tunnelPort),
                                 "--router-listen", "127.0.0.1:" + std::to_string(freePort())},
        root + "/b.log");
    ASSERT_TRUE(proc->start());
    ASSERT_TRUE(waitReady(apiPort, std::chrono::seconds(20), /*https=*/true)) << proc->log();
  }
  // Kills it (as ~Process does), after printing its log's tail if the test failed.
  void stop() {
    if (proc && ::testing::Test::HasFailure()) {
      const std::string log = proc->log();
      std::cerr << "---- replica b log (tail) ----\n"
                << (log.size() > 4000 ? log.substr(log.size() - 4000) : log);
    }
    proc.reset();
  }
  ~SecondReplica() { stop(); }
};

// GET (null unless 200) and writes (the status, -1 when unreachable) through the API at `port`,
// with `options`: the first replica's admin credentials serve for all (one CA).
nlohmann::json getVia(int port, const http::ClientOptions& options, const std::string& path) {
  http::HttpClient c("https://127.0.0.1:" + std::to_string(port), options);
  auto r = c.request("GET", path);
  if (!r.isOk() || r->status != 200) return {};
  return nlohmann::json::parse(r->body, nullptr, false);
}
int sendVia(int port, const http::ClientOptions& options, const std::string& method,
            const std::string& path, const std::string& body) {
  http::HttpClient c("https://127.0.0.1:" + std::to_string(port), options);
  auto r = c.request(method, path, body, "application/json");
  return r.isOk() ? r->status : -1;
}

// Two cloudcores on one etcd, the second set up with a copy of the first's pki/ (CA, serving
// and signing keys, the encryption key: docs/deployment.md). Both serve the API; the
// controllers run on the holder of the Lease kube-system/cloudcore only; the survivor of a
// killed leader takes over within 15 s; a replica stopped normally hands over at once.
class ReplicasTest : public WithEtcd<CloudFixture> {
 protected:
  void SetUp() override {
    if (!startEtcd()) return;
    dataDir_ = dir_.path() + "/a";
    startCloud({"--store", etcd_->url()});
    if (HasFatalFailure()) return;
    b_.start(dataDir_, dir_.path(), etcd_->url());
  }
  void TearDown() override {
    b_.stop();
    WithEtcd<CloudFixture>::TearDown();
  }
  nlohmann::json getB(const std::string& path) { return getVia(b_.apiPort, adminOptions(), path); }
  int postB(const std::string& path, const std::string& body) {
    return sendVia(b_.apiPort, adminOptions(), "POST", path, body);
  }
  std::string holder() {
    auto lease = getB("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/cloudcore");
    return lease.is_object() ? lease["spec"].value("holderIdentity", "") : "";
  }
  static std::string identity(const std::string& dataDir) {
    std::ifstream in(dataDir + "/leader-election-id");
    std::string id;
    in >> id;
    return id;
  }
  // A ReplicaSet created through replica b; true once the ReplicaSet controller made its pods.
  bool replicaSetGetsPods(const std::string& name, std::chrono::milliseconds timeout) {
    const std::string rs =
        R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":")" + name +
        R"("},"spec":{"replicas":2,"selector":{"matchLabels":{"app":")" + name +
        R"("}},"template":{"metadata":{"labels":{"app":")" + name +
        R"("}},"spec":{"containers":[{"name":"c","image":"127.0.0.1:5000/app:1"}]}}}})";
    EXPECT_EQ(postB("/apis/apps/v1/namespaces/default/replicasets", rs), 201);
    return eventually(
        [&] {
          auto pods = getB("/api/v1/namespaces/default/pods?labelSelector=app%3D" + name);
          return pods.is_object() && pods["items"].size() == 2;
        },
        timeout);
  }

  SecondReplica b_;
};

TEST_F(ReplicasTest, ControllersRunOnTheLeaderAndMoveWhenItDies) {
  const std::string a = identity(dataDir_), b = identity(b_.dataDir);
  ASSERT_EQ(a.size(), 16u);
  ASSERT_EQ(b.size(), 16u);
  ASSERT_NE(a, b);
  // a started first and leads; b serves the API and writes through it reach a's controllers.
  ASSERT_TRUE(eventually([&] { return holder().find(a) != std::string::npos; })) << holder();
  EXPECT_EQ(b_.proc->log().find("starting the controllers"), std::string::npos) << b_.proc->log();
  EXPECT_TRUE(replicaSetGetsPods("before", std::chrono::seconds(20)));

  // The leader dies: b holds the Lease within 15 s (lease 10 s, attempts every 2 s).
  cloud_->stop(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      eventually([&] { return holder().find(b) != std::string::npos; }, std::chrono::seconds(25)))
      << holder();
  const auto failover = std::chrono::steady_clock::now() - killed;
  std::cerr << "failover after the leader's death: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(failover).count() << " ms\n";
  // At most 14 s by design (docs/deployment.md), plus this test's polls on a loaded machine.
  EXPECT_LE(failover, std::chrono::seconds(16));
  EXPECT_TRUE(replicaSetGetsPods("after", std::chrono::seconds(20))) << b_.proc->log();

  // a comes back as a follower; b, stopped normally, releases the Lease and a leads again at
  // its next attempt rather than after the lease duration.
  startCloud({"--store", etcd_->url()});
  EXPECT_TRUE(eventually([&] { return holder().find(b) != std::string::npos; }));
  ASSERT_NE(b_.proc->stop(SIGTERM), -1);
  const auto released = std::chrono::steady_clock::now();
  b_.proc.reset();
  auto holderViaA = [&] {
    auto lease = getJson("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/cloudcore");
    return lease.is_object() ? lease["spec"].value("holderIdentity", "") : "";
  };
  ASSERT_TRUE(eventually([&] { return holderViaA().find(a) != std::string::npos; }))
      << holderViaA();
  EXPECT_LE(std::chrono::steady_clock::now() - released, std::chrono::seconds(5));
  auto lease = getJson("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/cloudcore");
  EXPECT_EQ(lease["spec"]["leaseTransitions"], 2) << lease.dump();
}

// An edge node given both replicas' tunnel addresses: it connects to one; when that replica is
// killed it moves to the other within 30 s, stays Ready, and a change made through the
// survivor reaches it.
class EdgeReplicasTest : public WithEtcd<EdgeFixture> {
 protected:
  void SetUp() override {
    if (!startEtcd()) return;
    tunnelPort_ = freePort();
    dataDir_ = dir_.path() + "/a";
    startCloud(cloudArgs({"--store", etcd_->url()}));
    if (HasFatalFailure()) return;
    b_.start(dataDir_, dir_.path(), etcd_->url());
  }
  void TearDown() override {
    b_.stop();
    WithEtcd<EdgeFixture>::TearDown();
  }
  std::string tunnelA() const { return "127.0.0.1:" + std::to_string(tunnelPort_); }
  std::string tunnelB() const { return "127.0.0.1:" + std::to_string(b_.tunnelPort); }
  std::string readyVia(int port, const std::string& node) {
    auto n = getVia(port, adminOptions(), "/api/v1/nodes/" + node);
    if (!n.is_object() || !n["status"].is_object()) return "";
    for (const auto& c : n["status"].value("conditions", nlohmann::json::array())) {
      if (c.value("type", "") == "Ready") return c.value("status", "");
    }
    return "";
  }
  nlohmann::json tunnel(const std::string& node) { return edgeGet(node, "/status")["tunnel"]; }

  SecondReplica b_;
};

TEST_F(EdgeReplicasTest, AnEdgeMovesToTheSurvivingReplicaAndConverges) {
  startEdge("edge-1", {"--cloud", tunnelA() + "," + tunnelB()});
  ASSERT_TRUE(eventually([&] { return tunnel("edge-1").value("connected", false); }))
      << edges_["edge-1"].proc->log();
  ASSERT_TRUE(eventually([&] { return readyVia(b_.apiPort, "edge-1") == "True"; }));
  const std::string cmPath = "/api/v1/namespaces/default/configmaps/app-config";
  ASSERT_EQ(sendVia(b_.apiPort, adminOptions(), "POST", "/api/v1/namespaces/default/configmaps",
                    R"({"metadata":{"name":"app-config"},"data":{"mode":"v1"}})"),
            201);
  ASSERT_EQ(sendVia(b_.apiPort, adminOptions(), "POST", "/api/v1/namespaces/default/pods",
                    R"({"metadata":{"name":"app"},"spec":{"nodeName":"edge-1",)"
                    R"("containers":[{"name":"c","image":"127.0.0.1:5000/app:1"}],)"
                    R"("volumes":[{"name":"cfg","configMap":{"name":"app-config"}}]}})"),
            201);
  ASSERT_TRUE(eventually([&] { return edgeGet("edge-1", cmPath)["data"]["mode"] == "v1"; }));

  // Kill the replica the edge is connected to.
  const std::string used = tunnel("edge-1").value("cloud", "");
  ASSERT_TRUE(used == tunnelA() || used == tunnelB()) << used;
  const bool killedA = used == tunnelA();
  const int survivor = killedA ? b_.apiPort : port_;
  if (killedA) {
    cloud_->stop(SIGKILL);
  } else {
    b_.proc->stop(SIGKILL);
  }
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        auto t = tunnel("edge-1");
        return t.value("connected", false) && t.value("cloud", "") != used;
      },
      std::chrono::seconds(30)))
      << tunnel("edge-1").dump() << "\n"
      << edges_["edge-1"].proc->log();
  std::cerr << "edge reconnected to the other replica after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - killed)
                   .count()
            << " ms\n";

  // A change through the survivor reaches the edge; the node stays Ready there (its Lease is
  // renewed through the survivor, whose controllers now lead if the dead one did).
  ASSERT_EQ(sendVia(survivor, adminOptions(), "PUT", cmPath,
                    R"({"metadata":{"name":"app-config"},"data":{"mode":"v2"}})"),
            200);
  EXPECT_TRUE(eventually([&] { return edgeGet("edge-1", cmPath)["data"]["mode"] == "v2"; }))
      << edgeGet("edge-1", cmPath).dump();
  EXPECT_TRUE(eventually([&] { return readyVia(survivor, "edge-1") == "True"; }));
  // And a pod created through the survivor lands there.
  ASSERT_EQ(sendVia(survivor, adminOptions(), "POST", "/api/v1/namespaces/default/pods",
                    R"({"metadata":{"name":"later"},"spec":{"nodeName":"edge-1",)"
                    R"("containers":[{"name":"c","image":"127.0.0.1:5000/app:1"}]}})"),
            201);
  EXPECT_TRUE(eventually(
      [&] { return edgeStatus("edge-1", "/api/v1/namespaces/default/pods/later") == 200; }));
}

// Moving a cluster from the embedded store to etcd: cloudcore stopped, --migrate-store-to copies
// every object, a second copy is refused, and cloudcore started on etcd serves the same objects
// (a Secret still decrypts: it moved as ciphertext, and the key stayed in the data dir).
class StoreMigrationTest : public WithEtcd<CloudFixture> {};  // cloudcore on SQLite first

TEST_F(StoreMigrationTest, MigrateStoreToEtcdCarriesEveryObject) {
  ASSERT_EQ(kubectl({"create", "configmap", "settings", "--from-literal=mode=fast"}).exitCode, 0);
  ASSERT_EQ(kubectl({"create", "secret", "generic", "db", "--from-literal=password=pw-1"}).exitCode,
            0);
  ASSERT_EQ(kubectl({"create", "namespace", "team-a"}).exitCode, 0);
  ASSERT_EQ(kubectl({"create", "configmap", "-n", "team-a", "other"}).exitCode, 0);
  const auto before = getJson("/api/v1/namespaces/default/configmaps/settings");
  ASSERT_NE(cloud_->stop(SIGTERM), -1) << cloud_->log();  // stopped: the SQLite store is free

  auto migrate = runCommand({buildPath("cloudcore/cloudcore"), "--data-dir", dataDir_,
                             "--migrate-store-to", etcd_->url()});
  ASSERT_EQ(migrate.exitCode, 0) << migrate.out << migrate.err;
  ASSERT_NE(migrate.out.find("copied "), std::string::npos) << migrate.out;
  auto again = runCommand({buildPath("cloudcore/cloudcore"), "--data-dir", dataDir_,
                           "--migrate-store-to", etcd_->url()});
  EXPECT_EQ(again.exitCode, 1);
  EXPECT_NE(again.err.find("already holds"), std::string::npos) << again.err;
  // A store that is not there is not an empty cluster to copy.
  auto elsewhere =
      runCommand({buildPath("cloudcore/cloudcore"), "--data-dir", dataDir_, "--store",
                  "sqlite://" + dir_.path() + "/nothing-here", "--migrate-store-to", etcd_->url()});
  EXPECT_EQ(elsewhere.exitCode, 1);
  EXPECT_NE(elsewhere.err.find("no SQLite store at"), std::string::npos) << elsewhere.err;
  // Every object went: as many keys in etcd as objects the copy reported, and the Secret is
  // ciphertext there.
  const size_t reported = std::stoul(migrate.out.substr(migrate.out.find("copied ") + 7));
  auto count = etcdctl({"get", "--prefix", "/edgeplane/", "--keys-only", "-w", "json"});
  ASSERT_EQ(count.exitCode, 0) << count.err;
  EXPECT_EQ(nlohmann::json::parse(count.out, nullptr, false).value("count", 0u), reported)
      << count.out;
  auto raw = etcdctl({"get", "/edgeplane/secrets/default/db", "--print-value-only"});
  EXPECT_EQ(raw.out.rfind("k8s:enc:", 0), 0u) << raw.out;
  EXPECT_EQ(raw.out.find("pw-1"), std::string::npos);

  startCloud({"--store", etcd_->url()});
  auto secret = kubectl({"get", "secret", "db", "-o", "jsonpath={.data.password}"});
  ASSERT_EQ(secret.exitCode, 0) << secret.err;
  EXPECT_EQ(secret.out, "cHctMQ==");  // base64 of pw-1
  const auto after = getJson("/api/v1/namespaces/default/configmaps/settings");
  EXPECT_EQ(after["data"], before["data"]);
  EXPECT_EQ(after["metadata"]["uid"], before["metadata"]["uid"]);
  EXPECT_EQ(after["metadata"]["creationTimestamp"], before["metadata"]["creationTimestamp"]);
  auto other = kubectl({"get", "configmap", "-n", "team-a", "other", "-o", "name"});
  EXPECT_EQ(other.out, "configmap/other\n") << other.err;
  // And it is etcd that serves them now: written through the new cloudcore, read in etcd.
  ASSERT_EQ(kubectl({"create", "configmap", "after-move"}).exitCode, 0);
  auto keys = etcdctl({"get", "--prefix", "/edgeplane/configmaps/default/", "--keys-only"});
  EXPECT_NE(keys.out.find("/edgeplane/configmaps/default/after-move"), std::string::npos)
      << keys.out;
  EXPECT_NE(keys.out.find("/edgeplane/configmaps/default/settings"), std::string::npos);
}

// An edge node stays right across the move: its cache holds the old store's (higher)
// revisions, the new store's are lower, and a change made after the move still reaches it.
class EdgeStoreMigrationTest : public WithEtcd<EdgeFixture> {
 protected:
  int put(const std::string& path, const std::string& body) {
    auto c = client();
    auto r = c.request("PUT", path, body, "application/json");
    return r.isOk() ? r->status : -1;
  }
};

TEST_F(EdgeStoreMigrationTest, AChangeAfterTheMoveReachesTheEdge) {
  startEdge("edge-1");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; })) << cloud_->log();
  const std::string cmPath = "/api/v1/namespaces/default/configmaps/app-config";
  ASSERT_EQ(post("/api/v1/namespaces/default/configmaps",
                 R"({"metadata":{"name":"app-config"},"data":{"mode":"v1"}})"),
            201);
  ASSERT_EQ(post("/api/v1/namespaces/default/pods",
                 R"({"metadata":{"name":"app"},"spec":{"nodeName":"edge-1",)"
                 R"("containers":[{"name":"c","image":"127.0.0.1:5000/app:1"}],)"
                 R"("volumes":[{"name":"cfg","configMap":{"name":"app-config"}}]}})"),
            201);
  ASSERT_TRUE(eventually([&] { return edgeGet("edge-1", cmPath)["data"]["mode"] == "v1"; }));
  // Many revisions on the embedded store, so that its revision is well above what etcd's will
  // be after the copy.
  ASSERT_EQ(post("/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"scratch"}})"),
            201);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(put("/api/v1/namespaces/default/configmaps/scratch",
                  R"({"metadata":{"name":"scratch"},"data":{"i":")" + std::to_string(i) + R"("}})"),
              200);
  }
  // The edge's copy now carries one of the embedded store's highest revisions.
  ASSERT_EQ(put(cmPath, R"({"metadata":{"name":"app-config"},"data":{"mode":"v1b"}})"), 200);
  ASSERT_TRUE(eventually([&] { return edgeGet("edge-1", cmPath)["data"]["mode"] == "v1b"; }));
  const int64_t sqliteRev =
      std::stoll(getJson("/api/v1/namespaces/default/configmaps")["metadata"]["resourceVersion"]
                     .get<std::string>());

  ASSERT_NE(cloud_->stop(SIGTERM), -1);
  auto migrate = runCommand({buildPath("cloudcore/cloudcore"), "--data-dir", dataDir_,
                             "--migrate-store-to", etcd_->url()});
  ASSERT_EQ(migrate.exitCode, 0) << migrate.out << migrate.err;
  restartCloud({"--store", etcd_->url()});
  const int64_t etcdRev =
      std::stoll(getJson("/api/v1/namespaces/default/configmaps")["metadata"]["resourceVersion"]
                     .get<std::string>());
  ASSERT_LT(etcdRev, sqliteRev);  // the premise: revisions went back

  ASSERT_EQ(put(cmPath, R"({"metadata":{"name":"app-config"},"data":{"mode":"v2"}})"), 200);
  EXPECT_TRUE(eventually([&] { return edgeGet("edge-1", cmPath)["data"]["mode"] == "v2"; }))
      << edgeGet("edge-1", cmPath).dump() << "\n"
      << edges_["edge-1"].proc->log();
  EXPECT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
}

}  // namespace
}  // namespace ep::testing
