// CriRuntime against a real containerd (scripts/cri-env.sh): images from a local registry,
// sandboxes on a bridge network and on the host network, containers, exec, logs, errors.
// Skips when not root or containerd is not installed.
#include "edgecore/edged/runtime/cri_runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "edgecore/edged/streaming/websocket_client.h"
#include "tests/testing/cri_env.h"

namespace ep::edged {
namespace {

using namespace std::chrono_literals;
using ep::testing::CriEnv;

// One environment per test process, brought up by the first test that needs it and torn
// down when the process exits (gtest_discover_tests runs each test in its own process).
class CriEnvironment : public ::testing::Environment {
 public:
  static CriEnvironment* instance;

  void SetUp() override {
    skip_ = CriEnv::skipReason();
    if (!skip_.empty()) return;
    env_ = std::make_unique<CriEnv>();
    ok_ = env_->up();
    if (!ok_) return;
    // containerd's CRI service turns ready a moment after the script sees it start.
    CriRuntimeOptions opts;
    opts.endpoint = env_->endpoint();
    CriRuntime rt(opts);
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!rt.version() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
  }
  void TearDown() override {
    if (env_) env_->down();
    env_.reset();
    // Cgroups the sandboxes were placed under (runc removes only the leaves).
    for (const auto& entry : std::filesystem::directory_iterator("/sys/fs/cgroup")) {
      std::error_code ec;
      std::filesystem::remove(entry.path() / "ep-cri-test", ec);
    }
  }

  const std::string& skip() const { return skip_; }
  bool ok() const { return ok_; }
  CriEnv& env() { return *env_; }

 private:
  std::string skip_;
  bool ok_ = false;
  std::unique_ptr<CriEnv> env_;
};

CriEnvironment* CriEnvironment::instance =
    static_cast<CriEnvironment*>(::testing::AddGlobalTestEnvironment(new CriEnvironment));

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename F>
bool eventually(F&& f, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return f();
}

class CriRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto* e = CriEnvironment::instance;
    if (!e->skip().empty()) GTEST_SKIP() << "CRI tests skipped: " << e->skip();
    ASSERT_TRUE(e->ok()) << e->env().error();
    env_ = &e->env();
    CriRuntimeOptions opts;
    opts.endpoint = env_->endpoint();
    opts.pullTimeout = 2min;
    rt_ = std::make_unique<CriRuntime>(opts);
  }

  void TearDown() override {
    if (!rt_) return;
    // Whatever a failed test left behind.
    auto sandboxes = rt_->listPodSandboxes({{kLabelManagedBy, kManagedByValue}});
    if (sandboxes) {
      for (const auto& s : *sandboxes) {
        (void)rt_->stopPodSandbox(s.id);  // cleanup: best effort
        (void)rt_->removePodSandbox(s.id);
      }
    }
  }

  std::string image(const std::string& nameTag) const { return env_->registry() + "/" + nameTag; }

  PodSandboxConfig sandbox(const std::string& name, bool hostNetwork = false) {
    PodSandboxConfig c;
    c.name = name;
    c.ns = "default";
    c.uid = "uid-" + name;
    c.hostname = name;
    c.hostNetwork = hostNetwork;
    c.logDirectory = env_->dir() + "/pods/default_" + name + "_" + c.uid;
    c.labels = {{kLabelPodName, name},
                {kLabelPodNamespace, "default"},
                {kLabelPodUid, c.uid},
                {kLabelManagedBy, kManagedByValue}};
    c.annotations = {{"edgeplane.io/test", "yes"}};
    c.cgroupParent = "/ep-cri-test";
    return c;
  }

  ContainerConfig container(const std::string& name, const std::string& img,
                            std::vector<std::string> command) {
    ContainerConfig c;
    c.name = name;
    c.image = img;
    c.command = std::move(command);
    c.env = {{"GREETING", "hi"}};
    c.labels = {{kLabelContainerName, name}, {kLabelManagedBy, kManagedByValue}};
    c.annotations = {{kAnnotationRestartCount, "0"}};
    c.logPath = name + "/0.log";
    c.resources.cpuPeriod = 100000;
    c.resources.cpuQuota = 50000;
    c.resources.cpuShares = 512;
    c.resources.memoryLimitBytes = 64 << 20;
    return c;
  }

  void ensurePulled(const std::string& img) {
    auto st = rt_->imageStatus(img);
    ASSERT_TRUE(st) << st.status().toString();
    if (!st->has_value()) {
      auto ref = rt_->pullImage(img, nullptr, nullptr);
      ASSERT_TRUE(ref) << ref.status().toString();
    }
  }

  CriEnv* env_ = nullptr;
  std::unique_ptr<CriRuntime> rt_;
};

TEST_F(CriRuntimeTest, Version) {
  auto v = rt_->version();
  ASSERT_TRUE(v) << v.status().toString();
  EXPECT_NE(v->find("containerd"), std::string::npos) << *v;
  EXPECT_NE(v->find("(CRI v1)"), std::string::npos) << *v;
}

TEST_F(CriRuntimeTest, PullImageStatusListRemove) {
  std::string img = image("busybox:1.36");
  ASSERT_TRUE(rt_->removeImage(img).isOk());  // idempotent: absent is fine
  auto before = rt_->imageStatus(img);
  ASSERT_TRUE(before) << before.status().toString();
  EXPECT_FALSE(before->has_value());

  auto ref = rt_->pullImage(img, nullptr, nullptr);
  ASSERT_TRUE(ref) << ref.status().toString();
  EXPECT_EQ(ref->rfind("sha256:", 0), 0u) << *ref;

  auto after = rt_->imageStatus(img);
  ASSERT_TRUE(after) << after.status().toString();
  ASSERT_TRUE(after->has_value());
  EXPECT_EQ((*after)->id, *ref);
  EXPECT_NE(std::find((*after)->repoTags.begin(), (*after)->repoTags.end(), img),
            (*after)->repoTags.end());
  EXPECT_GT((*after)->size, 0u);

  auto all = rt_->listImages();
  ASSERT_TRUE(all) << all.status().toString();
  bool listed = false;
  for (const auto& i : *all) listed = listed || i.id == *ref;
  EXPECT_TRUE(listed);

  ASSERT_TRUE(rt_->removeImage(img).isOk());
  auto gone = rt_->imageStatus(img);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
}

TEST_F(CriRuntimeTest, PullingAMissingImageFailsClearly) {
  std::string img = image("does-not-exist:1");
  auto ref = rt_->pullImage(img, nullptr, nullptr);
  ASSERT_FALSE(ref);
  EXPECT_EQ(ref.status().code(), Code::kNotFound) << ref.status().toString();
  EXPECT_NE(ref.status().message().find("does-not-exist"), std::string::npos)
      << ref.status().message();
  EXPECT_NE(ref.status().message().find("not found"), std::string::npos) << ref.status().message();
}

TEST_F(CriRuntimeTest, MissingSocketIsUnavailableQuickly) {
  CriRuntimeOptions opts;
  opts.endpoint = env_->dir() + "/no-such.sock";  // plain path: unix:// implied
  opts.callTimeout = 10s;
  CriRuntime missing(opts);
  auto start = std::chrono::steady_clock::now();
  auto v = missing.version();
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(v);
  EXPECT_EQ(v.status().code(), Code::kUnavailable) << v.status().toString();
  EXPECT_LT(elapsed, 2s);
  EXPECT_EQ(missing.podSandboxStatus("x").status().code(), Code::kUnavailable);
}

TEST_F(CriRuntimeTest, UnknownIdsAreNotFound) {
  EXPECT_EQ(rt_->podSandboxStatus("0123456789ab").status().code(), Code::kNotFound);
  EXPECT_EQ(rt_->containerStatus("0123456789ab").status().code(), Code::kNotFound);
}

TEST_F(CriRuntimeTest, PodOnBridgeNetworkFullLifecycle) {
  std::string img = image("busybox:1.36");
  ensurePulled(img);
  if (HasFatalFailure()) return;

  PodSandboxConfig sb = sandbox("web");
  auto sandboxId = rt_->runPodSandbox(sb);
  ASSERT_TRUE(sandboxId) << sandboxId.status().toString();
  EXPECT_TRUE(std::filesystem::is_directory(sb.logDirectory));

  auto sst = rt_->podSandboxStatus(*sandboxId);
  ASSERT_TRUE(sst) << sst.status().toString();
  EXPECT_EQ(sst->info.state, SandboxState::kReady);
  EXPECT_EQ(sst->info.name, "web");
  EXPECT_EQ(sst->info.ns, "default");
  EXPECT_EQ(sst->info.uid, sb.uid);
  EXPECT_EQ(sst->info.annotations.at("edgeplane.io/test"), "yes");
  EXPECT_GT(sst->info.createdAtNs, 0);
  EXPECT_EQ(sst->ip.rfind(env_->subnetPrefix(), 0), 0u) << "ip " << sst->ip;

  auto listed = rt_->listPodSandboxes({{kLabelPodUid, sb.uid}});
  ASSERT_TRUE(listed) << listed.status().toString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, *sandboxId);
  auto none = rt_->listPodSandboxes({{kLabelPodUid, "nobody"}});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  ContainerConfig cc =
      container("main", img, {"sh", "-c", "echo hi; echo $GREETING-env; sleep 1000"});
  auto cid = rt_->createContainer(*sandboxId, cc, sb);
  ASSERT_TRUE(cid) << cid.status().toString();
  auto created = rt_->containerStatus(*cid);
  ASSERT_TRUE(created) << created.status().toString();
  EXPECT_EQ(created->info.state, ContainerState::kCreated);
  ASSERT_TRUE(rt_->startContainer(*cid).isOk());

  auto byLabel = rt_->listContainers({.labels = {{kLabelContainerName, "main"}}});
  ASSERT_TRUE(byLabel) << byLabel.status().toString();
  ASSERT_EQ(byLabel->size(), 1u);
  EXPECT_EQ((*byLabel)[0].id, *cid);
  EXPECT_EQ((*byLabel)[0].sandboxId, *sandboxId);
  EXPECT_EQ((*byLabel)[0].state, ContainerState::kRunning);
  auto bySandboxRunning =
      rt_->listContainers({.sandboxId = *sandboxId, .state = ContainerState::kRunning});
  ASSERT_TRUE(bySandboxRunning);
  EXPECT_EQ(bySandboxRunning->size(), 1u);
  auto exitedNone =
      rt_->listContainers({.sandboxId = *sandboxId, .state = ContainerState::kExited});
  ASSERT_TRUE(exitedNone);
  EXPECT_TRUE(exitedNone->empty());

  auto st = rt_->containerStatus(*cid);
  ASSERT_TRUE(st) << st.status().toString();
  EXPECT_EQ(st->info.state, ContainerState::kRunning);
  EXPECT_EQ(st->info.name, "main");
  EXPECT_GT(st->startedAtNs, 0);
  EXPECT_EQ(st->info.annotations.at(kAnnotationRestartCount), "0");
  EXPECT_EQ(st->logPath, sb.logDirectory + "/main/0.log");

  // Resources reached the container's cgroup (cgroup v1, cgroupfs driver).
  auto mem = rt_->execSync(*cid, {"cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}, 10s);
  ASSERT_TRUE(mem) << mem.status().toString();
  EXPECT_EQ(mem->stdoutData, std::to_string(64 << 20) + "\n");

  auto ex = rt_->execSync(*cid, {"sh", "-c", "echo out; echo err >&2; exit 3"}, 10s);
  ASSERT_TRUE(ex) << ex.status().toString();
  EXPECT_EQ(ex->stdoutData, "out\n");
  EXPECT_EQ(ex->stderrData, "err\n");
  EXPECT_EQ(ex->exitCode, 3);

  auto slow = rt_->execSync(*cid, {"sleep", "30"}, 1s);
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.status().code(), Code::kTimeout) << slow.status().toString();

  // CRI log format: "<RFC3339Nano> stdout F <line>".
  EXPECT_TRUE(eventually([&] { return readFile(st->logPath).find("hi-env") != std::string::npos; }))
      << readFile(st->logPath);
  std::string logText = readFile(st->logPath);
  std::regex line(R"((^|\n)\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[^ ]* stdout F hi\n)");
  EXPECT_TRUE(std::regex_search(logText, line)) << logText;
  EXPECT_TRUE(rt_->reopenContainerLog(*cid).isOk());

  // sh as PID 1 ignores SIGTERM: the runtime kills it after the grace period.
  auto stopStart = std::chrono::steady_clock::now();
  ASSERT_TRUE(rt_->stopContainer(*cid, 1s).isOk());
  EXPECT_LT(std::chrono::steady_clock::now() - stopStart, 15s);
  auto stopped = rt_->containerStatus(*cid);
  ASSERT_TRUE(stopped) << stopped.status().toString();
  EXPECT_EQ(stopped->info.state, ContainerState::kExited);
  EXPECT_EQ(stopped->exitCode, 137);
  EXPECT_GT(stopped->finishedAtNs, 0);
  EXPECT_TRUE(rt_->stopContainer(*cid, 1s).isOk());  // idempotent

  ASSERT_TRUE(rt_->removeContainer(*cid).isOk());
  EXPECT_EQ(rt_->containerStatus(*cid).status().code(), Code::kNotFound);
  ASSERT_TRUE(rt_->stopPodSandbox(*sandboxId).isOk());
  auto notReady = rt_->podSandboxStatus(*sandboxId);
  ASSERT_TRUE(notReady);
  EXPECT_EQ(notReady->info.state, SandboxState::kNotReady);
  ASSERT_TRUE(rt_->removePodSandbox(*sandboxId).isOk());
  EXPECT_EQ(rt_->podSandboxStatus(*sandboxId).status().code(), Code::kNotFound);
  EXPECT_TRUE(rt_->removePodSandbox(*sandboxId).isOk());  // idempotent
}

TEST_F(CriRuntimeTest, ContainerExitCodeIsReported) {
  std::string img = image("busybox:1.36");
  ensurePulled(img);
  if (HasFatalFailure()) return;
  PodSandboxConfig sb = sandbox("job");
  auto sandboxId = rt_->runPodSandbox(sb);
  ASSERT_TRUE(sandboxId) << sandboxId.status().toString();
  auto cid = rt_->createContainer(*sandboxId, container("job", img, {"sh", "-c", "exit 7"}), sb);
  ASSERT_TRUE(cid) << cid.status().toString();
  ASSERT_TRUE(rt_->startContainer(*cid).isOk());
  ASSERT_TRUE(eventually([&] {
    auto st = rt_->containerStatus(*cid);
    return st && st->info.state == ContainerState::kExited;
  }));
  auto st = rt_->containerStatus(*cid);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->exitCode, 7);
  EXPECT_EQ(st->reason, "Error");
  ASSERT_TRUE(rt_->removePodSandbox(*sandboxId).isOk());  // removes the container too
  EXPECT_EQ(rt_->containerStatus(*cid).status().code(), Code::kNotFound);
}

TEST_F(CriRuntimeTest, HostNetworkSandboxHasEmptyHostnameAndHostNetwork) {
  std::string img = image("busybox:1.36");
  ensurePulled(img);
  if (HasFatalFailure()) return;
  PodSandboxConfig sb = sandbox("hostnet", /*hostNetwork=*/true);
  sb.hostname = "must-be-ignored";  // CriRuntime clears it for host-network sandboxes
  auto sandboxId = rt_->runPodSandbox(sb);
  ASSERT_TRUE(sandboxId) << sandboxId.status().toString();
  auto sst = rt_->podSandboxStatus(*sandboxId);
  ASSERT_TRUE(sst) << sst.status().toString();
  EXPECT_EQ(sst->info.state, SandboxState::kReady);
  EXPECT_EQ(sst->ip, "");

  auto cid = rt_->createContainer(*sandboxId, container("c", img, {"sleep", "1000"}), sb);
  ASSERT_TRUE(cid) << cid.status().toString();
  ASSERT_TRUE(rt_->startContainer(*cid).isOk());
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  auto hn = rt_->execSync(*cid, {"hostname"}, 10s);
  ASSERT_TRUE(hn) << hn.status().toString();
  EXPECT_EQ(hn->stdoutData, std::string(host) + "\n");
  // Same network namespace as the host.
  auto netns = rt_->execSync(*cid, {"readlink", "/proc/self/ns/net"}, 10s);
  ASSERT_TRUE(netns) << netns.status().toString();
  EXPECT_EQ(netns->stdoutData, std::filesystem::read_symlink("/proc/self/ns/net").string() + "\n");

  ASSERT_TRUE(rt_->stopContainer(*cid, 0s).isOk());
  ASSERT_TRUE(rt_->stopPodSandbox(*sandboxId).isOk());
  ASSERT_TRUE(rt_->removePodSandbox(*sandboxId).isOk());
}

TEST_F(CriRuntimeTest, HttpdImageServesOnThePodIp) {
  std::string img = image("httpd:1");
  ensurePulled(img);
  if (HasFatalFailure()) return;
  PodSandboxConfig sb = sandbox("httpd");
  auto sandboxId = rt_->runPodSandbox(sb);
  ASSERT_TRUE(sandboxId) << sandboxId.status().toString();
  auto sst = rt_->podSandboxStatus(*sandboxId);
  ASSERT_TRUE(sst);
  auto cid = rt_->createContainer(*sandboxId, container("httpd", img, {}), sb);
  ASSERT_TRUE(cid) << cid.status().toString();
  ASSERT_TRUE(rt_->startContainer(*cid).isOk());
  std::string body;
  EXPECT_TRUE(eventually([&] {
    auto r = ep::testing::runCommand(
        {"curl", "-s", "--max-time", "2", "http://" + sst->ip + ":8080/index.html"}, "", 5s);
    body = r.out;
    return r.exitCode == 0 && body.find("hello from edgeplane") != std::string::npos;
  })) << "body: "
      << body;
  ASSERT_TRUE(rt_->removePodSandbox(*sandboxId).isOk());
}

// CRI PortForward on containerd: the URL's WebSocket reaches the port on the pod's loopback
// (channel 0 after the two-byte port), which is what edged's port-forward streams rely on; a
// closed port is reported on channel 1.
TEST_F(CriRuntimeTest, PortForwardReachesThePodsPort) {
  std::string img = image("httpd:1");
  ensurePulled(img);
  if (HasFatalFailure()) return;
  PodSandboxConfig sb = sandbox("forwarded");
  auto sandboxId = rt_->runPodSandbox(sb);
  ASSERT_TRUE(sandboxId) << sandboxId.status().toString();
  auto cid = rt_->createContainer(*sandboxId, container("httpd", img, {}), sb);
  ASSERT_TRUE(cid) << cid.status().toString();
  ASSERT_TRUE(rt_->startContainer(*cid).isOk());
  // One forwarded request: what came back on channel 0 (port prefix removed) and channel 1.
  auto forward = [&](uint16_t port, std::string& data, std::string& error) {
    data.clear();
    error.clear();
    auto url = rt_->portForwardUrl(*sandboxId, port);
    if (!url) return url.status();
    auto ws = edged::streaming::WebSocketClient::connect(*url, "v4.channel.k8s.io", 10s);
    if (!ws) return ws.status();
    Status s = (*ws)->write(std::string(1, '\0') + "GET /index.html HTTP/1.0\r\n\r\n");
    if (!s.isOk()) return s;
    std::string channel[2];
    for (;;) {
      auto m = (*ws)->read();
      if (!m) break;
      if (m->size() > 1 && uint8_t((*m)[0]) < 2) channel[uint8_t((*m)[0])] += m->substr(1);
    }
    for (auto* c : {&channel[0], &channel[1]}) {
      if (c->size() < 2 || uint8_t((*c)[0]) != (port & 0xff) || uint8_t((*c)[1]) != (port >> 8)) {
        return internalError("a channel did not start with the port: " + *c);
      }
    }
    data = channel[0].substr(2);
    error = channel[1].substr(2);
    return Status::ok();
  };
  std::string data, error;
  EXPECT_TRUE(eventually([&] {
    return forward(8080, data, error).isOk() &&
           data.find("hello from edgeplane") != std::string::npos;
  })) << "data: "
      << data << " error: " << error;
  EXPECT_TRUE(data.rfind("HTTP/1.", 0) == 0) << data;
  ASSERT_TRUE(forward(9, data, error).isOk());
  EXPECT_TRUE(data.empty()) << data;
  EXPECT_NE(error.find("connection refused"), std::string::npos) << error;
  ASSERT_TRUE(rt_->removePodSandbox(*sandboxId).isOk());
}

TEST_F(CriRuntimeTest, ConcurrentCallsFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (rt_->version() && rt_->listPodSandboxes()) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 160);
}

}  // namespace
}  // namespace ep::edged
