// Edgecore upgrades from the cloud (docs/upgrades.md), end to end with real processes:
// cloudcore, edgecores that run pods on a private containerd, `edgectl upgrade push` of another
// build of edgecore (tests' edgecore_next: the same sources with another version), and
// NodeUpgradeJobs. Each edgecore runs from its own copy of the binary (an upgrade replaces the
// file it runs from) under a restart loop standing in for systemd's Restart=always, which the
// rollback of a binary that dies at start relies on (deploy/systemd/edgecore.service). Needs
// root and containerd for the pods (scripts/cri-env.sh); skips otherwise.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "common/api/object_util.h"
#include "common/api/upgrades.h"
#include "common/clock.h"
#include "common/digest/sha256.h"
#include "tests/integration/cri_edge_fixture.h"
#include "tests/testing/process.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
// A file's identity for comparisons (megabytes of binary make unreadable failure messages).
std::string digestOf(const std::string& path) {
  auto d = digest::sha256OfFile(path);
  return d.isOk() ? d->first : "unreadable: " + d.status().message();
}

// An edgecore under a restart loop: like systemd's Restart=always with RestartSec=1.
class Supervised {
 public:
  Supervised(std::vector<std::string> argv, std::string logPrefix)
      : argv_(std::move(argv)), logPrefix_(std::move(logPrefix)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Supervised() {
    stopping_ = true;
    thread_.join();
  }
  int starts() const { return starts_.load(); }
  std::string logs() const {
    std::string out;
    for (int i = 1; i <= starts_.load(); ++i) {
      out += "--- run " + std::to_string(i) + " ---\n" +
             slurp(logPrefix_ + "." + std::to_string(i) + ".log");
    }
    return out;
  }

 private:
  void run() {
    while (!stopping_) {
      const int n = ++starts_;
      Process p(argv_, logPrefix_ + "." + std::to_string(n) + ".log");
      if (p.start()) {
        while (!stopping_ && p.running()) std::this_thread::sleep_for(100ms);
        if (stopping_) {
          p.stop(SIGTERM);
          return;
        }
      }
      for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(100ms);
    }
  }
  const std::vector<std::string> argv_;
  const std::string logPrefix_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> starts_{0};
  std::thread thread_;
};

class UpgradeTest : public WithCri<EdgeFixture> {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      for (auto& [name, e] : supervised_) {
        std::cerr << "---- " << name << " (supervised) logs ----\n"
                  << tail(e->logs(), 6000) << "\n";
      }
      std::cerr << "---- jobs ----\n"
                << edgectl({"get", "nodeupgradejobs", "-o", "yaml"}).out << "\n";
    }
    supervised_.clear();  // before the cloud and containerd go
    WithCri::TearDown();
  }

  // Starts edgecore NAME from its own copy of the build's binary, supervised.
  void startSupervisedEdge(const std::string& name) {
    const std::string bin = dir_.path() + "/" + name + "-bin/edgecore";
    fs::create_directories(fs::path(bin).parent_path());
    fs::copy_file(buildPath("edgecore/edgecore"), bin, fs::copy_options::overwrite_existing);
    binaries_[name] = bin;
    std::vector<std::string> argv = {bin,
                                     "--node-name",
                                     name,
                                     "--data-dir",
                                     dir_.path() + "/" + name,
                                     "--local-api-listen",
                                     "127.0.0.1:" + std::to_string(freePort()),
                                     "--heartbeat-interval",
                                     "1s",
                                     "--runtime-endpoint",
                                     runtimeEndpoint_,
                                     "--cloud",
                                     "127.0.0.1:" + std::to_string(tunnelPort_),
                                     "--token",
                                     joinToken(),
                                     "--mqtt-server",
                                     "",
                                     "--dmi-socket",
                                     "",
                                     "--service-proxy",
                                     "off"};
    supervised_[name] = std::make_unique<Supervised>(argv, dir_.path() + "/" + name);
    ASSERT_TRUE(eventually([&] { return nodeReady(name) == "True"; }, 30s))
        << supervised_[name]->logs();
  }

  std::string jsonpath(const std::vector<std::string>& what, const std::string& path) {
    std::vector<std::string> args = what;
    args.push_back("-o");
    args.push_back("jsonpath=" + path);
    return edgectl(args).out;
  }
  std::string kubeletVersion(const std::string& node) {
    return jsonpath({"get", "node", node}, "{.status.nodeInfo.kubeletVersion}");
  }
  Json job(const std::string& name) {
    auto r = edgectl({"get", "nodeupgradejob", name, "-o", "json"});
    return r.exitCode == 0 ? Json::parse(r.out, nullptr, false) : Json();
  }
  std::string containerId(const std::string& pod) {
    return jsonpath({"get", "pod", pod}, "{.status.containerStatuses[0].containerID}");
  }
  std::string nextVersion() {
    auto r = runCommand({buildPath("tests/integration/edgecore_next"), "--version"});
    std::string v = r.out;
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    return v;
  }

  std::map<std::string, std::unique_ptr<Supervised>> supervised_;
  std::map<std::string, std::string> binaries_;
};

TEST_F(UpgradeTest, UpgradesTwoNodesOneAtATimeKeepingTheirContainers) {
  startSupervisedEdge("edge-a");
  startSupervisedEdge("edge-b");
  const std::string oldVersion = api::kubeletVersionFor(EP_TEST_VERSION);
  ASSERT_EQ(kubeletVersion("edge-a"), oldVersion);
  for (const char* node : {"edge-a", "edge-b"}) {
    auto r = edgectl({"apply", "-f", "-"},
                     std::string("apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper-") + node +
                         "\nspec:\n  nodeName: " + node +
                         "\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: s\n"
                         "    image: " +
                         cri_->registry() + "/busybox:1.36\n    command: [sleep, \"3600\"]\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }
  std::map<std::string, std::string> ids;
  ASSERT_TRUE(eventually(
      [&] {
        for (const char* node : {"edge-a", "edge-b"}) {
          ids[node] = containerId(std::string("sleeper-") + node);
          if (ids[node].empty()) return false;
        }
        return true;
      },
      90s))
      << edgectl({"get", "pods", "-o", "wide"}).out;

  const std::string next = nextVersion();
  ASSERT_FALSE(next.empty());
  ASSERT_NE(next, EP_TEST_VERSION);
  auto pushed =
      edgectl({"upgrade", "push", buildPath("tests/integration/edgecore_next"), "--version", next});
  ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
  EXPECT_NE(pushed.out.find("edgecorerelease.upgrade.edgeplane.io/" + next + " pushed: amd64"),
            std::string::npos)
      << pushed.out;

  auto applied = edgectl({"apply", "-f", "-"},
                         "apiVersion: operations.kubeedge.io/v1alpha1\nkind: NodeUpgradeJob\n"
                         "metadata:\n  name: to-next\nspec:\n  version: " +
                             next +
                             "\n  nodeNames: [edge-a, edge-b]\n  concurrency: 1\n"
                             "  timeoutSeconds: 120\n");
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  // Concurrency 1: never two nodes InProgress at once, watched until the job is done. When each
  // node was first seen InProgress and first seen Completed is printed (docs/performance.md,
  // "Upgrades"; informational, not asserted).
  size_t most = 0;
  std::map<std::string, std::chrono::steady_clock::time_point> started, finished;
  ASSERT_TRUE(eventually(
      [&] {
        Json j = job("to-next");
        size_t now = 0;
        const auto t = std::chrono::steady_clock::now();
        for (const auto& s : api::nodeUpgradeStatuses(j)) {
          now += s.state == api::kUpgradeInProgress ? 1 : 0;
          if (s.state == api::kUpgradeInProgress) started.emplace(s.nodeName, t);
          if (s.state == api::kUpgradeCompleted) finished.emplace(s.nodeName, t);
        }
        most = std::max(most, now);
        return api::stringAt(j, "status.state") == api::kUpgradeCompleted;
      },
      180s))
      << job("to-next").dump(2);
  EXPECT_EQ(most, 1u);
  // Not only as sampled: the second node staged its binary after the first had installed its
  // own (each edgecore's log; the clocks are this machine's).
  auto logTime = [&](const std::string& node, const std::string& needle) -> int64_t {
    const std::string log = supervised_[node]->logs();
    size_t pos = log.find(needle);
    if (pos == std::string::npos) return -1;
    size_t bol = log.rfind('\n', pos);
    bol = bol == std::string::npos ? 0 : bol + 1;
    return ep::parseRfc3339(log.substr(bol, 23) + "Z");
  };
  const int64_t aInstalled = logTime("edge-a", "is healthy and installed");
  const int64_t bInstalled = logTime("edge-b", "is healthy and installed");
  const int64_t aStaged = logTime("edge-a", "staged at");
  const int64_t bStaged = logTime("edge-b", "staged at");
  ASSERT_TRUE(aInstalled > 0 && bInstalled > 0 && aStaged > 0 && bStaged > 0);
  EXPECT_TRUE(bStaged > aInstalled || aStaged > bInstalled)
      << "edge-a staged " << aStaged << " installed " << aInstalled << "; edge-b staged " << bStaged
      << " installed " << bInstalled;
  for (const auto& [node, t0] : started) {
    if (!finished.count(node)) continue;
    std::cout << "upgrade timing: " << node << " InProgress -> Completed in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(finished[node] - t0).count()
              << " ms (8 MB binary over loopback, 1 s heartbeats)\n";
  }
  // edgecore's own gap: from the old binary's shutdown to the new one's tunnel (log times).
  for (const char* node : {"edge-a", "edge-b"}) {
    const std::string log = supervised_[node]->logs();
    auto at = [&](size_t pos) {
      size_t bol = log.rfind('\n', pos);
      bol = bol == std::string::npos ? 0 : bol + 1;
      return ep::parseRfc3339(log.substr(bol, 23) + "Z");  // "2026-12-07T08:28:57.476"
    };
    size_t down = log.find("signal 10, shutting down");  // SIGUSR1: the handover
    size_t up = down == std::string::npos ? down : log.find("edgehub: connected", down);
    if (up == std::string::npos) continue;
    std::cout << "upgrade timing: " << node << " edgecore handover (old binary stops -> new one "
              << "connected) " << at(up) - at(down) << " ms\n";
  }
  Json done = job("to-next");
  EXPECT_EQ(api::stringAt(done, "status.action"), api::kUpgradeActionSuccess);
  for (const auto& s : api::nodeUpgradeStatuses(done)) {
    EXPECT_EQ(s.action, api::kUpgradeActionSuccess) << s.nodeName << ": " << s.reason;
  }
  for (const char* node : {"edge-a", "edge-b"}) {
    EXPECT_EQ(kubeletVersion(node), api::kubeletVersionFor(next)) << node;
    // The new binary is installed where the service manager starts it; the old one kept.
    EXPECT_EQ(slurp(binaries_[node]), slurp(buildPath("tests/integration/edgecore_next"))) << node;
    EXPECT_EQ(slurp(binaries_[node] + ".previous"), slurp(buildPath("edgecore/edgecore"))) << node;
    // In the same process: no restart by the supervisor.
    EXPECT_EQ(supervised_[node]->starts(), 1) << node;
    // Pods kept running through the handover: the same containers.
    EXPECT_EQ(containerId(std::string("sleeper-") + node), ids[node]) << node;
    EXPECT_EQ(jsonpath({"get", "pod", std::string("sleeper-") + node},
                       "{.status.containerStatuses[0].restartCount}"),
              "0");
    EXPECT_EQ(jsonpath({"get", "node", node},
                       "{.status.conditions[?(@.type==\"EdgecoreUpgrade\")].reason}"),
              "Upgraded");
  }
}

TEST_F(UpgradeTest, ABinaryThatDiesAtStartIsRolledBackAndTheJobFailsForThatNode) {
  startSupervisedEdge("edge-a");
  const std::string arch = jsonpath({"get", "node", "edge-a"}, "{.status.nodeInfo.architecture}");
  const std::string broken = dir_.path() + "/broken-edgecore";
  std::ofstream(broken) << "#!/bin/sh\necho 'broken edgecore' >&2\nexit 1\n";
  ::chmod(broken.c_str(), 0755);
  // Not an ELF file: the architecture must be named.
  auto refused = edgectl({"upgrade", "push", broken, "--version", "9.9.9-broken"});
  EXPECT_NE(refused.exitCode, 0);
  EXPECT_NE(refused.err.find("--arch"), std::string::npos) << refused.err;
  auto pushed = edgectl({"upgrade", "push", broken, "--version", "9.9.9-broken", "--arch", arch});
  ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
  auto applied = edgectl({"apply", "-f", "-"},
                         "apiVersion: operations.kubeedge.io/v1alpha1\nkind: NodeUpgradeJob\n"
                         "metadata:\n  name: broken\nspec:\n  version: 9.9.9-broken\n"
                         "  labelSelector:\n    matchLabels:\n"
                         "      kubernetes.io/hostname: edge-a\n  timeoutSeconds: 120\n");
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  ASSERT_TRUE(eventually(
      [&] { return api::stringAt(job("broken"), "status.state") == api::kUpgradeFailure; }, 120s))
      << job("broken").dump(2);
  auto statuses = api::nodeUpgradeStatuses(job("broken"));
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].nodeName, "edge-a");
  EXPECT_EQ(statuses[0].action, api::kUpgradeActionFailure);
  EXPECT_EQ(statuses[0].event, "Rollback");
  EXPECT_NE(statuses[0].reason.find("exited before it connected"), std::string::npos)
      << statuses[0].reason;
  // The node runs the version it ran, from the binary it had, and is Ready.
  EXPECT_EQ(kubeletVersion("edge-a"), api::kubeletVersionFor(EP_TEST_VERSION));
  EXPECT_EQ(digestOf(binaries_["edge-a"]), digestOf(buildPath("edgecore/edgecore")));
  EXPECT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }, 30s));
  EXPECT_GE(supervised_["edge-a"]->starts(), 2);  // the broken one died; the old one came back
}

// spec.image (docs/upgrades.md, "From an image"): cloudcore pulls an image holding the other build
// of edgecore from the authenticated registry (the credentials of the Secret the job's
// annotation names, the registry's CA from --registry-certs-dir), takes the binary out of it
// into EdgecoreRelease VERSION, and the node upgrades from it over the tunnel. A tag the
// registry does not have fails the node with the registry's answer.
TEST_F(UpgradeTest, UpgradesFromAnImageInAnAuthenticatedRegistry) {
  restartCloud({"--registry-certs-dir", cri_->dir() + "/certs.d"});
  startSupervisedEdge("edge-a");
  const std::string next = nextVersion();
  ASSERT_FALSE(next.empty());
  // An image like scripts/build-images.sh makes: the binary at /usr/bin/edgecore, the entrypoint.
  const std::string rootfs = dir_.path() + "/image-root";
  fs::create_directories(rootfs + "/usr/bin");
  fs::copy_file(buildPath("tests/integration/edgecore_next"), rootfs + "/usr/bin/edgecore");
  auto built = runCommand({"python3", std::string(EP_SOURCE_DIR) + "/scripts/oci_image.py",
                           "--rootfs", rootfs, "--layout", dir_.path() + "/image-layout", "--ref",
                           "edgeplane/edgecore:" + next, "--entrypoint", "/usr/bin/edgecore",
                           "--arch", "amd64"});
  ASSERT_EQ(built.exitCode, 0) << built.err;
  const std::string repo = cri_->secureRegistry() + "/edgeplane/edgecore";
  auto pushed =
      runCommand({"skopeo", "copy", "--quiet", "--dest-creds",
                  CriEnv::secureUser() + ":" + cri_->securePassword(), "--dest-cert-dir",
                  cri_->dir() + "/registry-auth/certs",
                  "oci:" + dir_.path() + "/image-layout:" + next, "docker://" + repo + ":" + next},
                 "", std::chrono::minutes(2));
  ASSERT_EQ(pushed.exitCode, 0) << pushed.err;
  auto secret = edgectl({"create", "secret", "docker-registry", "upgrade-pull", "-n", "kube-system",
                         "--docker-server", cri_->secureRegistry(), "--docker-username",
                         CriEnv::secureUser(), "--docker-password", cri_->securePassword()});
  ASSERT_EQ(secret.exitCode, 0) << secret.err;
  auto jobYaml = [&](const std::string& name, const std::string& version) {
    return "apiVersion: operations.kubeedge.io/v1alpha1\nkind: NodeUpgradeJob\nmetadata:\n  "
           "name: " +
           name +
           "\n  annotations:\n    upgrade.edgeplane.io/image-pull-secret: "
           "kube-system/upgrade-pull\n"
           "spec:\n  version: " +
           version + "\n  image: " + repo + "\n  nodeNames: [edge-a]\n  timeoutSeconds: 120\n";
  };

  // A version the registry has no image for: the registry's answer, and the node untouched.
  auto applied = edgectl({"apply", "-f", "-"}, jobYaml("missing", "9.9.9-missing"));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  ASSERT_TRUE(eventually(
      [&] { return api::stringAt(job("missing"), "status.state") == api::kUpgradeFailure; }, 60s))
      << job("missing").dump(2);
  auto missing = api::nodeUpgradeStatuses(job("missing"));
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_NE(missing[0].reason.find("404 Not Found"), std::string::npos) << missing[0].reason;
  EXPECT_NE(missing[0].reason.find("edgeplane/edgecore:9.9.9-missing"), std::string::npos)
      << missing[0].reason;

  applied = edgectl({"apply", "-f", "-"}, jobYaml("from-image", next));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  ASSERT_TRUE(eventually(
      [&] {
        const std::string state = api::stringAt(job("from-image"), "status.state");
        return state == api::kUpgradeCompleted || state == api::kUpgradeFailure;
      },
      180s))
      << job("from-image").dump(2);
  Json done = job("from-image");
  EXPECT_EQ(api::stringAt(done, "status.state"), api::kUpgradeCompleted) << done.dump(2);
  EXPECT_EQ(kubeletVersion("edge-a"), api::kubeletVersionFor(next));
  EXPECT_EQ(digestOf(binaries_["edge-a"]), digestOf(buildPath("tests/integration/edgecore_next")));
  // The release made from the image: the binary's digest, and where it came from.
  auto rel = edgectl({"get", "edgecorerelease", next, "-o", "json"});
  ASSERT_EQ(rel.exitCode, 0) << rel.err;
  Json release = Json::parse(rel.out, nullptr, false);
  auto bin = api::releaseBinaryFor(release, "amd64");
  ASSERT_TRUE(bin) << rel.out;
  EXPECT_EQ(bin->digest, digestOf(buildPath("tests/integration/edgecore_next")));
  EXPECT_EQ(api::stringAt(release, "spec.binaries[0].image").rfind(repo + "@sha256:", 0), 0u)
      << rel.out;
  // How long the import took (docs/performance.md, "Upgrades"; informational).
  const std::string log = cloud_->log();
  const size_t at = log.find("edgecore image imports: EdgecoreRelease " + next);
  if (at != std::string::npos) {
    std::cout << "upgrade timing: " << log.substr(at, log.find('\n', at) - at) << "\n";
  }
}

}  // namespace
}  // namespace ep::testing
