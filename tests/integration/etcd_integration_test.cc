// cloudcore on a real etcd (cloudcore --store etcd://...): kubectl works unchanged, Secrets
// reach etcd encrypted, and no acknowledged write is lost when etcd or cloudcore is killed.
#include <signal.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/cloud_fixture.h"
#include "tests/testing/etcd.h"
#include "tests/testing/eventually.h"

namespace ep::testing {
namespace {

class EtcdCloudTest : public CloudFixture {
 protected:
  void SetUp() override {
    if (auto why = EtcdCluster::skipReason(); !why.empty()) GTEST_SKIP() << why;
    etcd_ = std::make_unique<EtcdCluster>(dir_.path() + "/etcd");
    std::filesystem::create_directories(dir_.path() + "/etcd");
    ASSERT_TRUE(etcd_->start()) << etcd_->log(0);
    dataDir_ = dir_.path() + "/data";
    startCloud({"--store", etcd_->url()});
  }
  void TearDown() override {
    CloudFixture::TearDown();
    etcd_.reset();
  }
  CommandResult kubectl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", kubeconfig(), "--cache-dir",
                                     dir_.path() + "/kubecache"};
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

}  // namespace
}  // namespace ep::testing
