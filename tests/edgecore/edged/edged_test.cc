#include "edgecore/edged/edged.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/api/base64.h"
#include "edgecore/metamanager/metamanager.h"
#include "tests/edgecore/edged/fake_runtime.h"
#include "tests/testing/sync_changes.h"
#include "tests/testing/temp_dir.h"

namespace ep::edged {
namespace {

namespace tv1 = edgeplane::tunnel::v1;
using edgecore::metamanager::MetaManager;
using edgecore::metamanager::MetaManagerOptions;

constexpr const char* kNode = "edge-1";

Json makePod(const std::string& name, const std::string& uid, Json spec) {
  spec["nodeName"] = kNode;
  return Json{{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", "default"}, {"uid", uid}}},
              {"spec", spec}};
}

Json simpleSpec(const std::string& image = "reg.local/app:1") {
  return Json{{"containers", Json::array({{{"name", "app"}, {"image", image}}})}};
}

class EdgedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = std::make_unique<MetaManager>(MetaManagerOptions{dir_.path() + "/cache"});
    ASSERT_TRUE(cache_->start().isOk());
    runtime_.addImage("reg.local/app:1");
    runtime_.addImage("reg.local/app:2");
    edged_ = makeEdged();
  }

  std::unique_ptr<Edged> makeEdged(EdgedOptions o = {}) {
    o.nodeName = kNode;
    o.dataDir = dir_.path() + "/data";
    o.hostIp = "192.0.2.10";
    return std::make_unique<Edged>(o, runtime_, *cache_, *cache_, clock_);
  }

  void put(const std::string& resource, const Json& obj) {
    tv1::Sync s;
    s.set_revision(++rev_);
    testing::addPutChange(s, resource, obj, rev_);
    ASSERT_TRUE(cache_->applySync(s).isOk());
  }
  void remove(const std::string& resource, const std::string& name) {
    tv1::Sync s;
    s.set_revision(++rev_);
    testing::addDeleteChange(s, resource, "default", name, rev_);
    ASSERT_TRUE(cache_->applySync(s).isOk());
  }

  void sync() { ASSERT_TRUE(edged_->syncOnce().isOk()); }

  // The latest reported status of pod `name`.
  Json lastStatus(const std::string& name) {
    auto entries = cache_->pending(100000);
    EXPECT_TRUE(entries.isOk());
    Json out;
    for (const auto& e : *entries) {
      if (e.kind == tv1::REPORT_KIND_POD_STATUS && e.name == name) out = Json::parse(e.payload);
    }
    return out;
  }
  std::vector<Json> events() {
    auto entries = cache_->pending(100000);
    std::vector<Json> out;
    for (const auto& e : *entries) {
      if (e.kind == tv1::REPORT_KIND_EVENT) out.push_back(Json::parse(e.payload));
    }
    return out;
  }
  bool hasEvent(const std::string& reason, const std::string& messagePart = "") {
    for (const auto& e : events()) {
      if (e["reason"] == reason &&
          e["message"].get<std::string>().find(messagePart) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  std::vector<ContainerStatus> containersNamed(const std::string& name) {
    std::vector<ContainerStatus> out;
    for (auto& c : runtime_.containers()) {
      if (c.info.labels[kLabelContainerName] == name) out.push_back(c);
    }
    return out;
  }
  const ContainerStatus* running(const std::vector<ContainerStatus>& cs) {
    for (const auto& c : cs) {
      if (c.info.state == ContainerState::kRunning) return &c;
    }
    return nullptr;
  }
  std::string readFile(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  testing::TempDir dir_;
  FakeClock clock_{1'700'000'000'000};
  FakeRuntime runtime_{&clock_};
  std::unique_ptr<MetaManager> cache_;
  std::unique_ptr<Edged> edged_;
  int64_t rev_ = 0;
};

TEST_F(EdgedTest, StartsPodWithEnvVolumesAndReportsRunning) {
  put("configmaps", {{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata", {{"name", "cfg"}, {"namespace", "default"}}},
                     {"data", {{"greeting", "hello"}, {"app.conf", "x=1\n"}}}});
  put("secrets", {{"apiVersion", "v1"},
                  {"kind", "Secret"},
                  {"metadata", {{"name", "sec"}, {"namespace", "default"}}},
                  {"data", {{"token", api::base64Encode("s3cr3t")}}}});
  Json spec = simpleSpec();
  spec["containers"][0]["command"] = {"sh", "-c", "echo $(GREETING)"};
  spec["containers"][0]["env"] = {
      {{"name", "GREETING"},
       {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "greeting"}}}}}},
      {{"name", "TOKEN"}, {"valueFrom", {{"secretKeyRef", {{"name", "sec"}, {"key", "token"}}}}}},
      {{"name", "POD"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
      {{"name", "NODE"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "spec.nodeName"}}}}}}};
  spec["containers"][0]["volumeMounts"] = {{{"name", "conf"}, {"mountPath", "/etc/app"}},
                                           {{"name", "scratch"}, {"mountPath", "/tmp/s"}}};
  spec["containers"][0]["resources"] = {{"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}}};
  spec["containers"][0]["ports"] = {{{"containerPort", 80}, {"hostPort", 8080}}};
  spec["volumes"] = {{{"name", "conf"}, {"configMap", {{"name", "cfg"}}}},
                     {{"name", "scratch"}, {"emptyDir", Json::object()}}};
  put("pods", makePod("web", "uid-1", spec));
  sync();

  ASSERT_EQ(runtime_.sandboxes().size(), 1u);
  auto sb = runtime_.sandboxes()[0];
  EXPECT_EQ(sb.info.labels[kLabelPodUid], "uid-1");
  auto sbCfg = runtime_.sandboxConfig(sb.info.id);
  ASSERT_EQ(sbCfg.portMappings.size(), 1u);
  EXPECT_EQ(sbCfg.portMappings[0].hostPort, 8080);
  auto cs = containersNamed("app");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].info.state, ContainerState::kRunning);
  auto cfg = runtime_.containerConfig(cs[0].info.id);
  std::map<std::string, std::string> env(cfg.env.begin(), cfg.env.end());
  EXPECT_EQ(env["GREETING"], "hello");
  EXPECT_EQ(env["TOKEN"], "s3cr3t");
  EXPECT_EQ(env["POD"], "web");
  EXPECT_EQ(env["NODE"], kNode);
  EXPECT_EQ(cfg.command[2], "echo hello");
  EXPECT_EQ(cfg.resources.cpuQuota, 50000);
  EXPECT_EQ(cfg.resources.memoryLimitBytes, 64 << 20);
  ASSERT_EQ(cfg.mounts.size(), 2u);
  EXPECT_EQ(readFile(cfg.mounts[0].hostPath + "/app.conf"), "x=1\n");

  Json st = lastStatus("web");
  EXPECT_EQ(st["phase"], "Running") << st.dump();
  EXPECT_EQ(st["podIP"], runtime_.sandboxes()[0].ip);
  EXPECT_EQ(st["hostIP"], "192.0.2.10");
  EXPECT_EQ(st["containerStatuses"][0]["containerID"], "containerd://" + cs[0].info.id);
  EXPECT_EQ(st["containerStatuses"][0]["ready"], true);
  EXPECT_EQ(st["qosClass"], "Guaranteed");  // limits only: requests default to them
  EXPECT_TRUE(hasEvent("Started", "Started container app"));

  // A second pass with nothing changed does nothing and reports nothing new.
  auto callsBefore = runtime_.calls().size();
  auto pendingBefore = cache_->pending(100000)->size();
  sync();
  EXPECT_EQ(runtime_.calls().size(), callsBefore);
  EXPECT_EQ(cache_->pending(100000)->size(), pendingBefore);

  // A ConfigMap change reaches the mounted file.
  put("configmaps", {{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata", {{"name", "cfg"}, {"namespace", "default"}}},
                     {"data", {{"greeting", "hello"}, {"app.conf", "x=2\n"}}}});
  sync();
  EXPECT_EQ(readFile(cfg.mounts[0].hostPath + "/app.conf"), "x=2\n");
}

TEST_F(EdgedTest, RestartsCrashedContainerWithBackOff) {
  put("pods", makePod("crash", "uid-2", simpleSpec()));
  sync();
  auto first = containersNamed("app");
  ASSERT_EQ(first.size(), 1u);
  runtime_.exitContainer(first[0].info.id, 1);
  sync();  // first restart is immediate
  auto second = containersNamed("app");
  ASSERT_NE(running(second), nullptr);
  EXPECT_EQ(running(second)->info.attempt, 1u);
  Json st = lastStatus("crash");
  EXPECT_EQ(st["containerStatuses"][0]["restartCount"], 1);
  EXPECT_EQ(st["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 1);

  runtime_.exitContainer(running(second)->info.id, 2);
  sync();  // within the 10 s back-off: waits
  EXPECT_EQ(running(containersNamed("app")), nullptr);
  st = lastStatus("crash");
  EXPECT_EQ(st["containerStatuses"][0]["state"]["waiting"]["reason"], "CrashLoopBackOff");
  EXPECT_EQ(st["phase"], "Running");
  EXPECT_TRUE(hasEvent("BackOff"));
  clock_.advance(std::chrono::seconds(11));
  sync();
  auto third = containersNamed("app");
  ASSERT_NE(running(third), nullptr);
  EXPECT_EQ(running(third)->info.attempt, 2u);
  // Only the newest dead container is kept (for logs --previous).
  EXPECT_EQ(third.size(), 2u);
}

TEST_F(EdgedTest, NeverPolicyPodSucceedsAndIsNotRestarted) {
  Json spec = simpleSpec();
  spec["restartPolicy"] = "Never";
  put("pods", makePod("job", "uid-3", spec));
  sync();
  runtime_.exitContainer(containersNamed("app")[0].info.id, 0, "Completed");
  sync();
  sync();
  EXPECT_EQ(containersNamed("app").size(), 1u);
  Json st = lastStatus("job");
  EXPECT_EQ(st["phase"], "Succeeded");
  EXPECT_EQ(st["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
}

TEST_F(EdgedTest, DeletedPodIsStoppedAndRemoved) {
  Json spec = simpleSpec();
  spec["volumes"] = {{{"name", "scratch"}, {"emptyDir", Json::object()}}};
  put("pods", makePod("gone", "uid-4", spec));
  sync();
  ASSERT_TRUE(std::filesystem::exists(dir_.path() + "/data/pods/uid-4"));
  remove("pods", "gone");
  sync();
  EXPECT_TRUE(runtime_.sandboxes().empty());
  EXPECT_TRUE(runtime_.containers().empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data/pods/uid-4"));
}

TEST_F(EdgedTest, PodInGracefulDeletionIsStoppedAndReportedTerminatedOnce) {
  put("pods", makePod("bye", "uid-30", simpleSpec()));
  sync();
  auto id = containersNamed("app")[0].info.id;
  Json deleting = makePod("bye", "uid-30", simpleSpec());
  deleting["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z";
  deleting["metadata"]["deletionGracePeriodSeconds"] = 30;
  put("pods", deleting);
  sync();
  EXPECT_TRUE(runtime_.sandboxes().empty());
  Json st = lastStatus("bye");
  EXPECT_EQ(st["phase"], "Failed");  // stopped: exit 137
  EXPECT_EQ(st["containerStatuses"][0]["state"]["terminated"]["exitCode"], 137);
  EXPECT_EQ(st["containerStatuses"][0]["state"]["terminated"]["containerID"], "containerd://" + id);
  EXPECT_TRUE(hasEvent("Killing", "Stopping container app"));
  // (Status entries coalesce in the outbox, so count what edged queued.)
  auto reports = [&] { return edged_->stats().statusReports; };
  auto before = reports();
  sync();
  EXPECT_EQ(reports(), before) << "the final status is reported once";
  remove("pods", "bye");  // the cloud finished the deletion
  sync();
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data/pods/uid-30"));
}

TEST_F(EdgedTest, NewProcessAdoptsRunningContainers) {
  put("pods", makePod("keep", "uid-5", simpleSpec()));
  sync();
  auto before = runtime_.containers();
  edged_ = makeEdged();
  auto callsBefore = runtime_.calls().size();
  sync();
  auto calls = runtime_.calls();
  EXPECT_EQ(calls.size(), callsBefore) << calls.back();
  ASSERT_EQ(runtime_.containers().size(), 1u);
  EXPECT_EQ(runtime_.containers()[0].info.id, before[0].info.id);
  EXPECT_EQ(lastStatus("keep")["phase"], "Running");
}

TEST_F(EdgedTest, RebootRecreatesSandboxAndContainers) {
  put("pods", makePod("boot", "uid-6", simpleSpec()));
  sync();
  runtime_.reboot();
  edged_ = makeEdged();  // edgecore restarted with the machine, cloud unreachable
  sync();
  auto sbs = runtime_.sandboxes();
  ASSERT_EQ(sbs.size(), 1u);
  EXPECT_EQ(sbs[0].info.state, SandboxState::kReady);
  EXPECT_EQ(sbs[0].info.attempt, 1u);
  auto cs = containersNamed("app");
  ASSERT_NE(running(cs), nullptr);
  Json st = lastStatus("boot");
  EXPECT_EQ(st["phase"], "Running");
  EXPECT_EQ(st["containerStatuses"][0]["restartCount"], 1);
}

TEST_F(EdgedTest, ChangedSpecReplacesContainer) {
  put("pods", makePod("roll", "uid-7", simpleSpec("reg.local/app:1")));
  sync();
  std::string oldId = containersNamed("app")[0].info.id;
  put("pods", makePod("roll", "uid-7", simpleSpec("reg.local/app:2")));
  sync();
  auto cs = containersNamed("app");
  ASSERT_NE(running(cs), nullptr);
  EXPECT_NE(running(cs)->info.id, oldId);
  EXPECT_EQ(running(cs)->info.image, "reg.local/app:2");
  EXPECT_TRUE(hasEvent("Killing", "definition changed"));
}

TEST_F(EdgedTest, BadImageWaitsWithReasonAndDoesNotDisturbOthers) {
  runtime_.failPull("reg.local/missing:1", "not found: manifest unknown");
  put("pods", makePod("ok", "uid-8", simpleSpec()));
  put("pods", makePod("bad", "uid-9", simpleSpec("reg.local/missing:1")));
  sync();
  Json bad = lastStatus("bad");
  EXPECT_EQ(bad["phase"], "Pending");
  EXPECT_EQ(bad["containerStatuses"][0]["state"]["waiting"]["reason"], "ErrImagePull");
  EXPECT_NE(bad["containerStatuses"][0]["state"]["waiting"]["message"].get<std::string>().find(
                "manifest unknown"),
            std::string::npos);
  EXPECT_EQ(lastStatus("ok")["phase"], "Running");
  sync();
  bad = lastStatus("bad");
  EXPECT_EQ(bad["containerStatuses"][0]["state"]["waiting"]["reason"], "ImagePullBackOff");
  runtime_.failPull("reg.local/missing:1", "");
  clock_.advance(std::chrono::seconds(11));
  sync();
  EXPECT_EQ(lastStatus("bad")["phase"], "Running");
}

TEST_F(EdgedTest, RefusedCredentialsDoNotRunTheImageAlreadyOnTheNode) {
  // The image is on the node (another pod pulled it); pullPolicy Always asks the registry.
  runtime_.addImage("reg.local/private:1");
  Json spec = simpleSpec("reg.local/private:1");
  spec["containers"][0]["imagePullPolicy"] = "Always";
  runtime_.failPull("reg.local/private:1",
                    "pulling from host reg.local failed with status code [manifests 1]: 401 "
                    "Unauthorized");
  put("pods", makePod("nocreds", "uid-31", spec));
  sync();
  EXPECT_TRUE(containersNamed("app").empty());
  EXPECT_EQ(lastStatus("nocreds")["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ErrImagePull");
  sync();  // in the back-off: still not from the node's store
  EXPECT_TRUE(containersNamed("app").empty());
  EXPECT_EQ(lastStatus("nocreds")["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ImagePullBackOff");
  // An unreachable registry is another matter: an offline edge runs what it has.
  runtime_.failPull("reg.local/private:1", "dial tcp: connect: connection refused");
  clock_.advance(std::chrono::seconds(11));
  sync();
  EXPECT_EQ(lastStatus("nocreds")["phase"], "Running");
}

TEST_F(EdgedTest, MissingConfigMapIsAContainerConfigError) {
  Json spec = simpleSpec();
  spec["containers"][0]["env"] = {
      {{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "nope"}, {"key", "k"}}}}}}};
  put("pods", makePod("cfgerr", "uid-10", spec));
  sync();
  Json st = lastStatus("cfgerr");
  EXPECT_EQ(st["containerStatuses"][0]["state"]["waiting"]["reason"], "CreateContainerConfigError");
  EXPECT_EQ(st["containerStatuses"][0]["state"]["waiting"]["message"],
            "configmap \"nope\" not found");
}

// Regression: a container whose start failed (e.g. a mount runc could not make) was created and
// removed again on every sync.
TEST_F(EdgedTest, FailedStartIsRetriedWithBackOff) {
  runtime_.failStart("OCI runtime create failed: error mounting");
  put("pods", makePod("nostart", "uid-20", simpleSpec()));
  sync();
  Json st = lastStatus("nostart");
  EXPECT_EQ(st["containerStatuses"][0]["state"]["waiting"]["reason"], "RunContainerError");
  auto creates = [&] {
    auto calls = runtime_.calls();
    return std::count_if(calls.begin(), calls.end(),
                         [](const std::string& c) { return c.rfind("createContainer", 0) == 0; });
  };
  EXPECT_EQ(creates(), 1);
  sync();
  sync();
  EXPECT_EQ(creates(), 1) << "retried inside the back-off";
  runtime_.failStart("");
  clock_.advance(std::chrono::seconds(11));
  sync();
  EXPECT_EQ(creates(), 2);
  EXPECT_EQ(lastStatus("nostart")["phase"], "Running");
}

TEST_F(EdgedTest, ContainerLogsAreRotated) {
  EdgedOptions o;
  o.containerLogMaxSize = 200;
  o.containerLogMaxFiles = 3;
  o.logRotationInterval = std::chrono::milliseconds(0);
  edged_ = makeEdged(o);
  put("pods", makePod("chatty", "uid-40", simpleSpec()));
  sync();
  auto c = containersNamed("app")[0];
  ASSERT_FALSE(c.logPath.empty());
  auto rotatedCount = [&] {
    int n = 0;
    for (const auto& e :
         std::filesystem::directory_iterator(std::filesystem::path(c.logPath).parent_path())) {
      if (e.path().filename().string().rfind("0.log.", 0) == 0) ++n;
    }
    return n;
  };
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 10; ++i)
      runtime_.appendLog(c.info.id, "stdout", "line " + std::to_string(i));
    clock_.advance(std::chrono::seconds(1));  // distinct rotation stamps
    sync();
    EXPECT_LT(std::filesystem::file_size(c.logPath), 200u) << "round " << round;
  }
  EXPECT_EQ(rotatedCount(), 2) << "maxFiles 3: the live log and 2 rotated ones";
  auto calls = runtime_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "reopenContainerLog " + c.info.id), 4);
  // Under the limit: nothing happens.
  sync();
  calls = runtime_.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "reopenContainerLog " + c.info.id), 4);
}

TEST_F(EdgedTest, OrphanSandboxIsRemoved) {
  PodSandboxConfig orphan;
  orphan.name = "stray";
  orphan.ns = "default";
  orphan.uid = "uid-orphan";
  orphan.labels = {
      {kLabelPodUid, "uid-orphan"}, {kLabelManagedBy, kManagedByValue}, {kLabelNodeName, kNode}};
  ASSERT_TRUE(runtime_.runPodSandbox(orphan).isOk());
  PodSandboxConfig foreign = orphan;
  foreign.labels = {{kLabelPodUid, "uid-foreign"}};  // not edged's: left alone
  ASSERT_TRUE(runtime_.runPodSandbox(foreign).isOk());
  PodSandboxConfig otherNode = orphan;  // another edgecore's on a shared runtime: left alone
  otherNode.labels = {
      {kLabelPodUid, "uid-other"}, {kLabelManagedBy, kManagedByValue}, {kLabelNodeName, "edge-2"}};
  ASSERT_TRUE(runtime_.runPodSandbox(otherNode).isOk());
  sync();
  std::set<std::string> left;
  for (auto& sb : runtime_.sandboxes()) left.insert(sb.info.labels[kLabelPodUid]);
  EXPECT_EQ(left, (std::set<std::string>{"uid-foreign", "uid-other"}));
}

TEST_F(EdgedTest, InitContainersRunInOrderBeforeApps) {
  Json spec = simpleSpec();
  spec["initContainers"] = {{{"name", "init"}, {"image", "reg.local/app:1"}}};
  put("pods", makePod("inits", "uid-11", spec));
  sync();
  EXPECT_TRUE(containersNamed("app").empty());
  Json st = lastStatus("inits");
  EXPECT_EQ(st["phase"], "Pending");
  EXPECT_EQ(st["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
  runtime_.exitContainer(containersNamed("init")[0].info.id, 0, "Completed");
  sync();
  ASSERT_EQ(containersNamed("app").size(), 1u);
  st = lastStatus("inits");
  EXPECT_EQ(st["phase"], "Running");
  EXPECT_EQ(st["conditions"][0]["type"], "Initialized");
  EXPECT_EQ(st["conditions"][0]["status"], "True");
}

TEST_F(EdgedTest, ImagePullSecretCredentialsReachTheRuntime) {
  Json dockercfg = {{"auths", {{"reg.local", {{"username", "u"}, {"password", "p"}}}}}};
  put("secrets", {{"apiVersion", "v1"},
                  {"kind", "Secret"},
                  {"type", "kubernetes.io/dockerconfigjson"},
                  {"metadata", {{"name", "regcred"}, {"namespace", "default"}}},
                  {"data", {{".dockerconfigjson", api::base64Encode(dockercfg.dump())}}}});
  Json spec = simpleSpec("reg.local/private:1");
  spec["imagePullSecrets"] = {{{"name", "regcred"}}};
  put("pods", makePod("priv", "uid-12", spec));
  sync();
  EXPECT_EQ(runtime_.lastPullAuth().username, "u");
  EXPECT_EQ(runtime_.lastPullAuth().password, "p");
  // Regression: a "host:port" key sent as the server address made containerd fail every pull
  // from a private registry ("parse server address"); kubelet sends none either.
  EXPECT_EQ(runtime_.lastPullAuth().serverAddress, "");
  EXPECT_EQ(lastStatus("priv")["phase"], "Running");
}

TEST_F(EdgedTest, FailedLivenessProbeRestartsContainer) {
  Json spec = simpleSpec();
  spec["containers"][0]["livenessProbe"] = {
      {"exec", {{"command", {"false"}}}}, {"periodSeconds", 1}, {"failureThreshold", 1}};
  put("pods", makePod("live", "uid-13", spec));
  runtime_.setExecResult({"", "boom", 1});
  sync();  // started
  sync();  // probe fails -> killed and restarted
  auto cs = containersNamed("app");
  ASSERT_NE(running(cs), nullptr);
  EXPECT_EQ(running(cs)->info.attempt, 1u);
  EXPECT_TRUE(hasEvent("Unhealthy", "Liveness probe failed"));
  EXPECT_TRUE(hasEvent("Killing", "failed liveness probe"));
}

TEST_F(EdgedTest, ReadinessProbeGatesPodReady) {
  Json spec = simpleSpec();
  spec["containers"][0]["readinessProbe"] = {{"exec", {{"command", {"check"}}}},
                                             {"periodSeconds", 1}};
  put("pods", makePod("ready", "uid-14", spec));
  runtime_.setExecResult({"", "", 1});
  sync();
  sync();
  Json st = lastStatus("ready");
  EXPECT_EQ(st["containerStatuses"][0]["ready"], false);
  EXPECT_EQ(st["conditions"][1]["type"], "Ready");
  EXPECT_EQ(st["conditions"][1]["status"], "False");
  runtime_.setExecResult({"", "", 0});
  sync();  // within the probe's period: not probed again
  EXPECT_EQ(lastStatus("ready")["containerStatuses"][0]["ready"], false);
  clock_.advance(std::chrono::milliseconds(1100));  // one period later it is
  sync();
  st = lastStatus("ready");
  EXPECT_EQ(st["containerStatuses"][0]["ready"], true);
  EXPECT_EQ(st["conditions"][1]["status"], "True");
}

TEST_F(EdgedTest, RunsThroughWorkersWhenStarted) {
  put("pods", makePod("bg", "uid-15", simpleSpec()));
  ASSERT_TRUE(edged_->start().isOk());
  for (int i = 0; i < 200 && containersNamed("app").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(containersNamed("app").size(), 1u);
  remove("pods", "bg");  // the cache event wakes the dispatcher
  for (int i = 0; i < 200 && !runtime_.sandboxes().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(runtime_.sandboxes().empty());
  edged_->stop();
}

}  // namespace
}  // namespace ep::edged
