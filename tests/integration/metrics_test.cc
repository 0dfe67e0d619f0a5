// `kubectl top` end to end: an edgecore on a private containerd samples its node and its pods'
// containers (CRI ListContainerStats) every second and sends them through the tunnel; cloudcore
// serves them as metrics.k8s.io/v1beta1, which the real kubectl (v1.32) and edgectl print.
// Skips when not root or containerd is missing (CI runs it as root).
#include <gtest/gtest.h>

#include <fstream>

#include "common/api/quantity.h"
#include "common/clock.h"
#include "tests/integration/cri_edge_fixture.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

class MetricsE2eTest : public WithCri<EdgeFixture> {
 protected:
  void SetUp() override {
    WithCri::SetUp();
    if (stopped()) return;
    const std::string cfg = dir_.path() + "/edge-a.yaml";
    std::ofstream(cfg) << "statsInterval: 1s\nlabels:\n  zone: lab\n";
    startEdge("edge-a", {"--config", cfg});
    ASSERT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }, 30s));
    // A pod that burns CPU (capped at 200m by its limit) and one that sleeps.
    auto r = edgectl({"apply", "-f", "-"}, podYaml("burner", "while true; do :; done", "200m") +
                                               "---\n" + podYaml("sleeper", "sleep 3600", ""));
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  std::string podYaml(const std::string& name, const std::string& script,
                      const std::string& cpuLimit) {
    std::string y =
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  labels:\n    app: " + name +
        "\nspec:\n  nodeName: edge-a\n  terminationGracePeriodSeconds: 1\n"
        "  containers:\n  - name: main\n    image: " +
        cri_->registry() + "/busybox:1.36\n    command: [\"sh\", \"-c\", \"" + script + "\"]\n";
    if (!cpuLimit.empty()) y += "    resources:\n      limits:\n        cpu: " + cpuLimit + "\n";
    return y;
  }

  Json getJson(const std::string& path) {
    auto c = client();
    auto r = c.request("GET", path);
    if (!r.isOk() || r->status != 200) return Json();
    return Json::parse(r->body, nullptr, false);
  }

  // CPU millicores of the pod's metrics (sum of its containers); -1 while it has none.
  int64_t podCpuMilli(const std::string& name) {
    Json m = getJson("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/" + name);
    if (!m.is_object() || !m["containers"].is_array() || m["containers"].empty()) return -1;
    int64_t total = 0;
    for (const auto& c : m["containers"]) {
      total += *api::parseQuantityMilli(c["usage"].value("cpu", "0"));
    }
    return total;
  }

  CommandResult kubectl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/kubectl", "--cache-dir=" + dir_.path() + "/kcache",
                                     "--kubeconfig=" + kubeconfig()};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, "", 60s);
  }
};

TEST_F(MetricsE2eTest, NodeAndPodUsageReachTheMetricsApi) {
  ASSERT_TRUE(eventually([&] { return podCpuMilli("burner") > 50; }, 90s))
      << getJson("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").dump()
      << edgeGet("edge-a", "/status").dump();
  // The limit holds the busy loop near 200m; the sleeper uses next to nothing.
  ASSERT_TRUE(eventually([&] { return podCpuMilli("sleeper") >= 0; }, 30s));
  EXPECT_LE(podCpuMilli("burner"), 300);
  EXPECT_LT(podCpuMilli("sleeper"), 50);

  Json pod = getJson("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burner");
  EXPECT_EQ(pod["kind"], "PodMetrics");
  EXPECT_EQ(pod["metadata"]["labels"]["app"], "burner");
  EXPECT_EQ(pod["containers"][0]["name"], "main");
  EXPECT_GT(*api::parseQuantityBytes(pod["containers"][0]["usage"].value("memory", "0")), 0);
  EXPECT_GT(ep::parseRfc3339(pod.value("timestamp", "")), 0) << pod.dump();

  Json node = getJson("/apis/metrics.k8s.io/v1beta1/nodes/edge-a");
  ASSERT_TRUE(node.is_object()) << "no NodeMetrics";
  EXPECT_EQ(node["metadata"]["labels"]["zone"], "lab");
  // The node's CPU includes the burner's.
  EXPECT_GE(*api::parseQuantityMilli(node["usage"].value("cpu", "0")), 50) << node.dump();
  EXPECT_GT(*api::parseQuantityBytes(node["usage"].value("memory", "0")), 0);
  Json nodes = getJson("/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Dlab");
  EXPECT_EQ(nodes["items"].size(), 1u) << nodes.dump();

  // Sampling counters on the edge's /status.
  Json stats = edgeGet("edge-a", "/status")["stats"];
  EXPECT_GT(stats.value("sent", 0), 0) << stats.dump();
  EXPECT_EQ(stats.value("lastError", "x"), "") << stats.dump();
}

TEST_F(MetricsE2eTest, KubectlAndEdgectlTopPrintTheUsage) {
  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  ASSERT_TRUE(
      eventually([&] { return podCpuMilli("burner") > 50 && podCpuMilli("sleeper") >= 0; }, 90s));

  auto node = kubectl({"top", "node"});
  ASSERT_EQ(node.exitCode, 0) << node.err;
  EXPECT_EQ(node.out.rfind("NAME", 0), 0u) << node.out;
  EXPECT_NE(node.out.find("CPU(cores)"), std::string::npos) << node.out;
  EXPECT_NE(node.out.find("MEMORY(%)"), std::string::npos) << node.out;
  EXPECT_NE(node.out.find("edge-a"), std::string::npos) << node.out;
  EXPECT_EQ(node.out.find("<unknown>"), std::string::npos) << node.out;

  auto pods = kubectl({"top", "pod", "--sort-by=cpu"});
  ASSERT_EQ(pods.exitCode, 0) << pods.err;
  // Highest CPU first: the burner's line comes before the sleeper's.
  const auto burner = pods.out.find("burner");
  const auto sleeper = pods.out.find("sleeper");
  ASSERT_NE(burner, std::string::npos) << pods.out;
  ASSERT_NE(sleeper, std::string::npos) << pods.out;
  EXPECT_LT(burner, sleeper) << pods.out;
  auto containers = kubectl({"top", "pod", "burner", "--containers"});
  ASSERT_EQ(containers.exitCode, 0) << containers.err;
  EXPECT_NE(containers.out.find("POD"), std::string::npos) << containers.out;
  EXPECT_NE(containers.out.find("main"), std::string::npos) << containers.out;
  auto missing = kubectl({"top", "pod", "nosuchpod"});
  EXPECT_NE(missing.exitCode, 0);
  EXPECT_NE(missing.err.find("not found"), std::string::npos) << missing.err;

  // edgectl prints the same layout.
  auto edgeNode = edgectl({"top", "node"});
  ASSERT_EQ(edgeNode.exitCode, 0) << edgeNode.err;
  EXPECT_EQ(edgeNode.out.substr(0, edgeNode.out.find('\n')),
            node.out.substr(0, node.out.find('\n')));
  EXPECT_NE(edgeNode.out.find("edge-a"), std::string::npos) << edgeNode.out;
  auto edgePods = edgectl({"top", "pod", "-l", "app=burner"});
  ASSERT_EQ(edgePods.exitCode, 0) << edgePods.err;
  auto kubectlPods = kubectl({"top", "pod", "-l", "app=burner"});
  ASSERT_EQ(kubectlPods.exitCode, 0) << kubectlPods.err;
  EXPECT_EQ(edgePods.out.substr(0, edgePods.out.find('\n')),
            kubectlPods.out.substr(0, kubectlPods.out.find('\n')));
  EXPECT_NE(edgePods.out.find("burner"), std::string::npos) << edgePods.out;
  EXPECT_EQ(edgePods.out.find("sleeper"), std::string::npos) << edgePods.out;
  auto edgeMissing = edgectl({"top", "pod", "nosuchpod"});
  EXPECT_NE(edgeMissing.exitCode, 0);
  EXPECT_EQ(
      edgeMissing.err,
      "Error from server (NotFound): podmetrics.metrics.k8s.io \"default/nosuchpod\" not found\n");
}

}  // namespace
}  // namespace ep::testing
