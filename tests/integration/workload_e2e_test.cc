// End to end with real components: cloudcore, two edgecores running pods on a private containerd
// (scripts/cri-env.sh) that pulls images from a local docker-registry. A Deployment is spread
// over both nodes, rolled forward and back, scaled; containers killed by hand are restarted;
// configmap changes reach mounted files; the cloud goes away and an edgecore restarts without
// touching running containers; a bad image reports why. Skips when not root or containerd is
// missing (CI runs it as root).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "tests/integration/cri_edge_fixture.h"
#include "tests/testing/process.h"
#include "tests/testing/terminal.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

class WorkloadE2eTest : public WithCri<EdgeFixture> {
 protected:
  void SetUp() override {
    WithCri::SetUp();
    if (stopped()) return;
    // The service proxy's nat chains are the host's: only one edgecore of all the tests that
    // may run side by side (ctest -j) programs them, edge-a of the test that needs Services.
    serviceProxyOnEdgeA_ =
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) ==
        "DeploymentRunsRollsBackRestartsAndFollowsConfig";
    startLabelledEdge("edge-a");
    startLabelledEdge("edge-b");
    ASSERT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }, 30s));
    ASSERT_TRUE(eventually([&] { return nodeReady("edge-b") == "True"; }, 30s));
    // Regression (a CI run where the other test's edgecore rewrote the chains): the proxy runs
    // where asked and nowhere else.
    EXPECT_EQ(edgeGet("edge-a", "/status").contains("serviceProxy"), serviceProxyOnEdgeA_);
    EXPECT_FALSE(edgeGet("edge-b", "/status").contains("serviceProxy"));
  }

  void startLabelledEdge(const std::string& name, const std::string& extraConfig = "") {
    std::string cfg = dir_.path() + "/" + name + ".yaml";
    // Tiny log limits so that rotation (every 10 s, on the real runtime) shows within a test.
    std::ofstream(cfg) << "labels:\n  e2e: \"yes\"\ncontainerLogMaxSize: 1Ki\n"
                          "containerLogMaxFiles: 2\n"
                       << extraConfig;
    std::vector<std::string> flags = {"--config", cfg};
    if (name == "edge-a" && serviceProxyOnEdgeA_)
      flags.insert(flags.end(), {"--service-proxy", "iptables"});
    startEdge(name, flags);
  }
  bool serviceProxyOnEdgeA_ = false;

  std::string image(const std::string& nameTag) { return cri_->registry() + "/" + nameTag; }

  Json getJson(const std::string& path) {
    auto c = client();
    auto r = c.request("GET", path);
    if (!r.isOk() || r->status != 200) return Json();
    return Json::parse(r->body, nullptr, false);
  }
  std::vector<Json> pods(const std::string& selector) {
    Json list = getJson("/api/v1/namespaces/default/pods?labelSelector=" + selector);
    std::vector<Json> out;
    if (list.is_object() && list["items"].is_array()) {
      for (auto& p : list["items"]) out.push_back(p);
    }
    return out;
  }
  static bool podReady(const Json& pod) {
    if (pod["status"].value("phase", "") != "Running") return false;
    for (const auto& c : pod["status"].value("conditions", Json::array())) {
      if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
    }
    return false;
  }
  int readyCount(const std::string& selector) {
    auto ps = pods(selector);
    return static_cast<int>(std::count_if(ps.begin(), ps.end(), podReady));
  }
  static std::string containerId(const Json& pod) {
    std::string id = pod["status"]["containerStatuses"][0].value("containerID", "");
    auto p = id.find("://");
    return p == std::string::npos ? id : id.substr(p + 3);
  }
  // ctr against the private containerd.
  CommandResult ctr(std::vector<std::string> args) {
    std::vector<std::string> argv = {"ctr", "--address", cri_->dir() + "/containerd.sock", "-n",
                                     "k8s.io"};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  }
  std::set<std::string> runningTasks() {
    std::set<std::string> out;
    auto r = ctr({"tasks", "ls"});
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string id, pid, status;
      f >> id >> pid >> status;
      if (status == "RUNNING") out.insert(id);
    }
    return out;
  }
  std::string httpGetPod(const Json& pod, const std::string& path) {
    std::string ip = pod["status"].value("podIP", "");
    auto r = runCommand({"curl", "-fsS", "--max-time", "3", "http://" + ip + ":8080" + path});
    return r.exitCode == 0 ? r.out : "";
  }

  std::string deploymentYaml(const std::string& img, const std::vector<std::string>& command) {
    std::string cmd;
    if (!command.empty()) {
      cmd = "        command: [";
      for (size_t i = 0; i < command.size(); ++i) cmd += (i ? ", \"" : "\"") + command[i] + "\"";
      cmd += "]\n";
    }
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site\ndata:\n"
           "  index.html: \"version one\"\n---\n"
           "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
           "  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n"
           "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n"
           "      maxUnavailable: 0\n      maxSurge: 1\n"
           "  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n"
           "      terminationGracePeriodSeconds: 2\n"
           "      nodeSelector:\n        e2e: \"yes\"\n      containers:\n"
           "      - name: web\n        image: " +
           img + "\n" + cmd +
           "        ports:\n        - name: http\n          containerPort: 8080\n"
           "        readinessProbe:\n          httpGet:\n            path: /index.html\n"
           "            port: 8080\n          periodSeconds: 1\n"
           "        volumeMounts:\n        - name: site\n          mountPath: /www\n"
           "      volumes:\n      - name: site\n        configMap:\n          name: site\n";
  }
};

TEST_F(WorkloadE2eTest, DeploymentRunsRollsBackRestartsAndFollowsConfig) {
  // 1. A Deployment of 2 replicas lands on both nodes and runs in containerd.
  auto r = edgectl({"apply", "-f", "-"}, deploymentYaml(image("httpd:1"), {}));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  ASSERT_TRUE(eventually([&] { return readyCount("app%3Dweb") == 2; }, 90s))
      << edgectl({"get", "pods", "-o", "wide"}).out;
  auto ps = pods("app%3Dweb");
  std::set<std::string> nodes;
  for (auto& p : ps) nodes.insert(p["spec"].value("nodeName", ""));
  EXPECT_EQ(nodes, (std::set<std::string>{"edge-a", "edge-b"}));
  auto tasks = runningTasks();
  for (auto& p : ps) EXPECT_TRUE(tasks.count(containerId(p))) << containerId(p);
  EXPECT_EQ(httpGetPod(ps[0], "/index.html"), "version one");
  auto wide = edgectl({"get", "pods", "-o", "wide"});
  EXPECT_NE(wide.out.find("Running"), std::string::npos) << wide.out;
  EXPECT_NE(wide.out.find("edge-a"), std::string::npos) << wide.out;

  // 1b. A Service selecting them: its EndpointSlice lists both pods' IPs (from the real CNI)
  // as ready endpoints on their nodes, and each endpoint answers on the resolved target port.
  r = edgectl({"apply", "-f", "-"},
              "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n"
              "  type: NodePort\n  selector:\n    app: web\n  ports:\n  - name: http\n"
              "    port: 80\n    targetPort: 8080\n");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  std::set<std::string> podIps;
  for (auto& p : ps) podIps.insert(p["status"].value("podIP", ""));
  Json slice;
  ASSERT_TRUE(eventually(
      [&] {
        Json list = getJson(
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector="
            "kubernetes.io%2Fservice-name%3Dweb");
        if (!list.is_object() || list["items"].size() != 1) return false;
        slice = list["items"][0];
        std::set<std::string> ready;
        for (const auto& e : slice.value("endpoints", Json::array())) {
          if (e["conditions"].value("ready", false)) ready.insert(e["addresses"][0]);
        }
        return ready == podIps;
      },
      30s))
      << slice.dump();
  EXPECT_EQ(slice["ports"][0]["port"], 8080);
  for (const auto& e : slice["endpoints"]) {
    EXPECT_TRUE(e["nodeName"] == "edge-a" || e["nodeName"] == "edge-b") << e.dump();
    auto got =
        runCommand({"curl", "-fsS", "--max-time", "3",
                    "http://" + e["addresses"][0].get<std::string>() + ":" +
                        std::to_string(slice["ports"][0]["port"].get<int>()) + "/index.html"});
    EXPECT_EQ(got.out, "version one") << got.err;
  }
  // edge-a's service proxy DNATs the cluster IP, and the node port on this host's address, to
  // its local pod: real traffic through the nat rules it programmed from its cache.
  Json svc = getJson("/api/v1/namespaces/default/services/web");
  const std::string clusterIp = svc["spec"].value("clusterIP", "");
  const int nodePort = svc["spec"]["ports"][0].value("nodePort", 0);
  auto viaProxy = [&](const std::string& hostPort) {
    auto got =
        runCommand({"curl", "-fsS", "--max-time", "3", "http://" + hostPort + "/index.html"});
    return got.exitCode == 0 ? got.out : got.err;
  };
  EXPECT_TRUE(eventually([&] { return viaProxy(clusterIp + ":80") == "version one"; }, 30s))
      << viaProxy(clusterIp + ":80") << runCommand({"iptables-save", "-t", "nat"}).out;
  const std::string nodeIp = ps[0]["status"].value("hostIP", "");  // this host's address
  EXPECT_EQ(viaProxy(nodeIp + ":" + std::to_string(nodePort)), "version one");
  // kubectl port-forward to the Service (kubectl picks a pod behind it and maps port 80 to its
  // targetPort): through the API, the tunnel, edged and containerd's port-forward into the pod.
  if (access("/usr/bin/kubectl", X_OK) != 0 && std::getenv("CI") != nullptr) {
    ADD_FAILURE() << "kubectl is missing (scripts/install-deps.sh installs it)";
  }
  if (access("/usr/bin/kubectl", X_OK) == 0) {
    Process forward({"/usr/bin/kubectl", "--kubeconfig", kubeconfig(), "--cache-dir",
                     dir_.path() + "/kcache", "port-forward", "svc/web", ":80"},
                    dir_.path() + "/port-forward.log");
    ASSERT_TRUE(forward.start());
    const int local = forwardedPort(forward, 60s);
    ASSERT_GT(local, 0) << forward.log();
    for (int i = 0; i < 3; ++i) {  // one kubectl, a connection each
      EXPECT_EQ(viaProxy("127.0.0.1:" + std::to_string(local)), "version one") << forward.log();
    }
    forward.stop(SIGTERM);
  }
  // The same with edgectl (over HTTPS with the admin kubeconfig's client certificate); the
  // port by its name in the pod's spec.
  {
    Process forward({buildPath("edgectl/edgectl"), "--kubeconfig", kubeconfig(), "port-forward",
                     "deploy/web", ":http"},
                    dir_.path() + "/edgectl-port-forward.log");
    ASSERT_TRUE(forward.start());
    const int local = forwardedPort(forward, 60s);
    ASSERT_GT(local, 0) << forward.log();
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(viaProxy("127.0.0.1:" + std::to_string(local)), "version one") << forward.log();
    }
    forward.stop(SIGTERM);
  }
  // The Service goes: edge-a removes its chains.
  ASSERT_EQ(edgectl({"delete", "service", "web"}).exitCode, 0);
  EXPECT_TRUE(eventually(
      [&] {
        return runCommand({"iptables-save", "-t", "nat"}).out.find("EDGEPLANE-SVC-") ==
               std::string::npos;
      },
      30s))
      << runCommand({"iptables-save", "-t", "nat"}).out;

  // 2. A configmap change reaches the file in the running containers (no restart).
  r = edgectl({"apply", "-f", "-"},
              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site\ndata:\n"
              "  index.html: \"version two\"\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(eventually([&] { return httpGetPod(ps[0], "/index.html") == "version two"; }, 30s));
  auto cat =
      ctr({"tasks", "exec", "--exec-id", "e2e-cat", containerId(ps[1]), "cat", "/www/index.html"});
  EXPECT_EQ(cat.out, "version two") << cat.err;

  // 3. Rolling update to another image: never fewer than 2 ready (maxUnavailable 0).
  std::atomic<bool> watching{true};
  std::atomic<int> minReady{2};
  std::thread sampler([&] {
    while (watching) {
      minReady = std::min(minReady.load(), readyCount("app%3Dweb"));
      std::this_thread::sleep_for(100ms);
    }
  });
  r = edgectl({"apply", "-f", "-"},
              deploymentYaml(image("busybox:1.36"), {"httpd", "-f", "-p", "8080", "-h", "/www"}));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = edgectl({"rollout", "status", "deployment/web", "--timeout", "120s"});
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(eventually(
      [&] {
        auto now = pods("app%3Dweb");
        return now.size() == 2 && std::all_of(now.begin(), now.end(), [&](const Json& p) {
                 return podReady(p) && p["spec"]["containers"][0]["image"] == image("busybox:1.36");
               });
      },
      60s));
  watching = false;
  sampler.join();
  EXPECT_GE(minReady.load(), 2) << "a rolling update with maxUnavailable 0 dropped below 2 ready";

  // 4. rollout undo goes back to the first template.
  r = edgectl({"rollout", "undo", "deployment/web"});
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_TRUE(eventually(
      [&] {
        auto now = pods("app%3Dweb");
        return now.size() == 2 && std::all_of(now.begin(), now.end(), [&](const Json& p) {
                 return podReady(p) && p["spec"]["containers"][0]["image"] == image("httpd:1");
               });
      },
      90s))
      << edgectl({"get", "pods", "-o", "wide"}).out;

  // 5. A container killed by hand is restarted and its restartCount grows.
  ps = pods("app%3Dweb");
  std::string victim = ps[0]["metadata"]["name"];
  std::string killed = containerId(ps[0]);
  ASSERT_EQ(ctr({"tasks", "kill", "-s", "SIGKILL", killed}).exitCode, 0);
  EXPECT_TRUE(eventually(
      [&] {
        Json p = getJson("/api/v1/namespaces/default/pods/" + victim);
        return p.is_object() && p["status"]["containerStatuses"][0].value("restartCount", 0) >= 1 &&
               podReady(p) && containerId(p) != killed;
      },
      60s))
      << edgectl({"get", "pod", victim, "-o", "yaml"}).out;

  // 6. Scale to 3 and back to 1.
  r = edgectl({"scale", "deployment/web", "--replicas", "3"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(eventually([&] { return readyCount("app%3Dweb") == 3; }, 60s));
  r = edgectl({"scale", "deployment/web", "--replicas", "1"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(eventually([&] { return pods("app%3Dweb").size() == 1; }, 60s));

  // 7. Host networking and host ports: an httpd on the node's network, and one published
  // through a hostPort (CNI portmap), both reachable on the node.
  int hostNetPort = freePort();
  int hostPort = freePort();
  r = edgectl({"apply", "-f", "-"},
              "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hostnet\nspec:\n  nodeName: edge-a\n"
              "  hostNetwork: true\n  terminationGracePeriodSeconds: 1\n  containers:\n"
              "  - name: web\n    image: " +
                  image("httpd:1") + "\n    command: [\"httpd\", \"-f\", \"-p\", \"" +
                  std::to_string(hostNetPort) +
                  "\", \"-h\", \"/www\"]\n---\n"
                  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hostport\nspec:\n"
                  "  nodeName: edge-b\n  terminationGracePeriodSeconds: 1\n  containers:\n"
                  "  - name: web\n    image: " +
                  image("httpd:1") + "\n    ports:\n    - containerPort: 8080\n      hostPort: " +
                  std::to_string(hostPort) + "\n");
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  std::string hostIp;
  EXPECT_TRUE(eventually(
      [&] {
        Json a = getJson("/api/v1/namespaces/default/pods/hostnet");
        Json b = getJson("/api/v1/namespaces/default/pods/hostport");
        if (!a.is_object() || !b.is_object() || !podReady(a) || !podReady(b)) return false;
        hostIp = b["status"].value("hostIP", "");
        return a["status"].value("podIP", "") == a["status"].value("hostIP", "x");
      },
      60s))
      << edgectl({"get", "pods", "-o", "wide"}).out;
  auto curl = [](const std::string& url) {
    auto c = runCommand({"curl", "-fsS", "--max-time", "3", url});
    return c.exitCode == 0 ? c.out : c.err;
  };
  EXPECT_TRUE(eventually([&] {
    return curl("http://127.0.0.1:" + std::to_string(hostNetPort) + "/") ==
           "hello from edgeplane\n";
  }));
  ASSERT_FALSE(hostIp.empty());
  EXPECT_TRUE(eventually([&] {
    return curl("http://" + hostIp + ":" + std::to_string(hostPort) + "/") ==
           "hello from edgeplane\n";
  })) << curl("http://" + hostIp + ":" + std::to_string(hostPort) + "/");

  // 8. A bad image reference reports why and disturbs nothing else.
  r = edgectl({"apply", "-f", "-"},
              "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  nodeSelector:\n"
              "    e2e: \"yes\"\n  containers:\n  - name: bad\n    image: " +
                  image("does-not-exist:1") + "\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::string reason;
  EXPECT_TRUE(eventually(
      [&] {
        Json p = getJson("/api/v1/namespaces/default/pods/bad");
        if (!p.is_object() || !p["status"].contains("containerStatuses")) return false;
        reason = p["status"]["containerStatuses"][0]["state"]["waiting"].value("reason", "");
        return reason == "ErrImagePull" || reason == "ImagePullBackOff";
      },
      60s))
      << reason;
  EXPECT_EQ(readyCount("app%3Dweb"), 1);
  auto described = edgectl({"describe", "pod", "bad"});
  if (getenv("EP_E2E_VERBOSE")) {
    std::cerr << edgectl({"get", "pods", "-o", "wide"}).out << described.out
              << edgectl({"rollout", "history", "deployment/web"}).out
              << edgectl({"get", "events"}).out << "minReady " << minReady << "\n";
  }
  EXPECT_NE(described.out.find("Failed"), std::string::npos) << described.out;
}

TEST_F(WorkloadE2eTest, ContainersSurviveCloudLossEdgecoreRestartAndOfflineReboot) {
  auto r =
      edgectl({"apply", "-f", "-"},
              "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ticker\nspec:\n  nodeName: edge-a\n"
              "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: tick\n    image: " +
                  image("busybox:1.36") +
                  "\n    command: [\"sh\", \"-c\", \"i=0; while true; do echo tick $i; i=$((i+1)); "
                  "sleep 0.2; done\"]\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::string before;
  ASSERT_TRUE(eventually(
      [&] {
        Json p = getJson("/api/v1/namespaces/default/pods/ticker");
        if (!p.is_object() || !podReady(p)) return false;
        before = containerId(p);
        return true;
      },
      60s));

  // Logs and exec through the tunnel.
  EXPECT_TRUE(eventually([&] {
    auto logs = edgectl({"logs", "ticker", "--tail", "2"});
    return logs.exitCode == 0 && logs.out.find("tick ") != std::string::npos;
  }));
  auto ex = edgectl({"exec", "ticker", "--", "sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(ex.exitCode, 3);
  EXPECT_EQ(ex.out, "out\n");
  EXPECT_NE(ex.err.find("err"), std::string::npos);

  // Interactive exec and attach on the real runtime, as a user at a terminal runs them: the
  // shell sees the terminal's size and its changes, keystrokes, and its exit code comes back.
  if (access("/usr/bin/kubectl", X_OK) == 0) {
    std::vector<std::string> kubectl = {"/usr/bin/kubectl", "--kubeconfig", kubeconfig(),
                                        "--cache-dir", dir_.path() + "/kcache"};
    const std::vector<std::string> env = {"HOME=" + dir_.path()};
    auto with = [&](std::vector<std::string> args) {
      auto argv = kubectl;
      argv.insert(argv.end(), args.begin(), args.end());
      return argv;
    };
    {
      TerminalProcess term(with({"exec", "-it", "ticker", "--", "sh"}), 33, 101, env);
      ASSERT_TRUE(term.started());
      ASSERT_TRUE(term.waitFor("# ", 60s)) << term.output();  // busybox sh's prompt
      term.type("stty size; echo sum=$((6*7))\r");
      EXPECT_TRUE(term.waitFor("33 101", 20s)) << term.output();
      EXPECT_TRUE(term.waitFor("sum=42", 20s)) << term.output();
      term.resize(40, 120);
      EXPECT_TRUE(eventually(
          [&] {
            term.type("stty size\r");
            return term.waitFor("40 120", 1s);
          },
          20s))
          << term.output();
      term.type("exit 4\r");
      EXPECT_EQ(term.wait(30s), 4) << term.output();
    }
    // Without a terminal: stdin piped into a command that stops reading by itself.
    auto piped = runCommand(with({"exec", "-i", "ticker", "--", "head", "-c", "5"}), "hello world",
                            60s, env);
    EXPECT_EQ(piped.exitCode, 0) << piped.err;
    EXPECT_EQ(piped.out, "hello");
    // The end of stdin reaches the command (SPDY to containerd's streaming server): cat ends by
    // itself, and kubectl cp into the pod (tar reading stdin) finishes.
    auto catted =
        runCommand(with({"exec", "-i", "ticker", "--", "cat"}), "hello\nworld\n", 60s, env);
    EXPECT_EQ(catted.exitCode, 0) << catted.err;
    EXPECT_EQ(catted.out, "hello\nworld\n");
    const std::string local = dir_.path() + "/to-copy.txt";
    std::ofstream(local) << "copied into the pod\n";
    auto copied = runCommand(with({"cp", local, "ticker:/tmp/copied.txt"}), "", 60s, env);
    EXPECT_EQ(copied.exitCode, 0) << copied.err;
    auto back = edgectl({"exec", "ticker", "--", "cat", "/tmp/copied.txt"});
    EXPECT_EQ(back.out, "copied into the pod\n") << back.err;
    // Attach follows the main process's output.
    TerminalProcess attach(with({"attach", "ticker"}), 24, 80, env);
    EXPECT_TRUE(attach.waitFor("tick ", 30s)) << attach.output();
  }

  // The ticker's log is rotated on containerd (reopened by the runtime) and stays bounded.
  std::string logDir;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/edge-a/logs")) {
    if (e.path().filename().string().rfind("default_ticker_", 0) == 0) logDir = e.path() / "tick";
  }
  ASSERT_FALSE(logDir.empty());
  auto rotated = [&] {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(logDir)) {
      std::string name = e.path().filename().string();
      if (name.find(".log.") != std::string::npos) names.insert(name);
    }
    return names;
  };
  std::set<std::string> first;
  EXPECT_TRUE(eventually(
      [&] {
        first = rotated();
        return first.size() == 1;
      },
      30s));
  // After another rotation the older rotated file is gone: one rotated file (maxFiles 2).
  std::set<std::string> second;
  EXPECT_TRUE(eventually(
      [&] {
        second = rotated();
        return second.size() == 1 && second != first;
      },
      30s))
      << second.size() << " rotated files";
  EXPECT_LT(std::filesystem::file_size(logDir + "/0.log"), 4096u);
  // Logs keep coming from the reopened file (just after a rotation it may hold no line yet).
  CommandResult after;
  EXPECT_TRUE(eventually([&] {
    after = edgectl({"logs", "ticker", "--tail", "1"});
    return after.out.find("tick ") != std::string::npos;
  })) << after.out
      << after.err;

  // The cloud goes away; edgecore restarts with no cloud: the container is adopted, not
  // recreated.
  cloud_.reset();
  edges_["edge-a"].proc.reset();
  startLabelledEdge("edge-a");
  // Once the new edgecore's pod workers have run twice for each of its pods (its local
  // /status), the container is still the one that was running before.
  Json edgedStatus;
  EXPECT_TRUE(eventually(
      [&] {
        http::HttpClient local("http://127.0.0.1:" + std::to_string(edges_["edge-a"].localPort));
        auto r = local.request("GET", "/status");
        if (!r.isOk() || r->status != 200) return false;
        Json j = Json::parse(r->body, nullptr, false);
        if (!j.is_object() || !j.contains("edged") || !j["edged"].is_object()) return false;
        edgedStatus = j["edged"];
        const auto pods = edgedStatus.value("pods", int64_t{0});
        return pods >= 1 && edgedStatus.value("syncs", int64_t{0}) >= 2 * pods;
      },
      30s))
      << edgedStatus.dump();
  EXPECT_TRUE(runningTasks().count(before)) << "the running container was not adopted";

  // Offline, a killed container is still restarted by the edge.
  ASSERT_EQ(ctr({"tasks", "kill", "-s", "SIGKILL", before}).exitCode, 0);
  EXPECT_TRUE(eventually(
      [&] {
        auto tasks = runningTasks();  // the sandbox's pause task and the new container
        return !tasks.count(before) && tasks.size() >= 2;
      },
      30s));

  // Still offline, the machine reboots: containerd restarts with every container gone, and
  // edgecore, started with no cloud, brings the pod back from its cache.
  // Power loss: every process dies at once (the containers, then containerd itself, with no
  // chance to clean up); containerd keeps its metadata on disk and starts again.
  edges_["edge-a"].proc.reset();
  for (const auto& id : runningTasks()) ctr({"tasks", "kill", "-s", "SIGKILL", id});
  ASSERT_TRUE(eventually([&] { return runningTasks().empty(); }, 20s));
  {
    std::ifstream pidFile(cri_->dir() + "/containerd.pid");
    pid_t pid = 0;
    pidFile >> pid;
    ASSERT_GT(pid, 0);
    ::kill(pid, SIGKILL);
  }
  ASSERT_TRUE(cri_->up()) << cri_->error();
  EXPECT_TRUE(runningTasks().empty());
  startLabelledEdge("edge-a");
  EXPECT_TRUE(eventually([&] { return runningTasks().size() >= 2; }, 60s))
      << "the pod did not come back after an offline reboot";

  // The cloud returns: the status the edge recorded offline catches up.
  restartCloud();
  EXPECT_TRUE(eventually(
      [&] {
        Json p = getJson("/api/v1/namespaces/default/pods/ticker");
        return p.is_object() && podReady(p) &&
               p["status"]["containerStatuses"][0].value("restartCount", 0) >= 2 &&
               containerId(p) != before && runningTasks().count(containerId(p));
      },
      60s))
      << edgectl({"get", "pod", "ticker", "-o", "yaml"}).out;

  // Deleting the pod is graceful: Terminating until the node has stopped its containers, then
  // gone from the API and from containerd.
  Json node = getJson("/api/v1/nodes/edge-a");
  EXPECT_EQ(
      node["status"]["nodeInfo"].value("containerRuntimeVersion", "").rfind("containerd://", 0), 0u)
      << node.dump();
  auto c = client();
  auto del = c.request("DELETE", "/api/v1/namespaces/default/pods/ticker");
  ASSERT_TRUE(del.isOk());
  ASSERT_EQ(del->status, 200) << del->body;
  Json terminating = Json::parse(del->body, nullptr, false);
  EXPECT_FALSE(terminating["metadata"].value("deletionTimestamp", "").empty()) << del->body;
  EXPECT_EQ(terminating["metadata"].value("deletionGracePeriodSeconds", 0), 1);
  EXPECT_TRUE(eventually(
      [&] {
        auto g = c.request("GET", "/api/v1/namespaces/default/pods/ticker");
        return g.isOk() && g->status == 404;
      },
      30s));
  EXPECT_TRUE(runningTasks().empty());
  auto events = edgectl({"get", "events"});
  EXPECT_NE(events.out.find("Stopping container tick"), std::string::npos) << events.out;
}

}  // namespace
}  // namespace ep::testing
