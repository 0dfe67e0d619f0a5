// The workload controllers inside a real cloudcore process: a Deployment gets a ReplicaSet and
// pods, the scheduler binds them to a Ready node, and edgectl rollout/scale/describe see it all.
// No edge: the node and the pods' Ready status are written through the API as edgecore would.

#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/clock.h"
#include "tests/integration/cloud_fixture.h"

namespace ep::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* kDeployment = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
)";

class WorkloadsIntegrationTest : public CloudFixture {
 protected:
  void send(const std::string& method, const std::string& path, const json& body,
            int expect = 200) {
    auto c = client();
    auto r = c.request(method, path, body.dump(), "application/json");
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_EQ(r->status, expect) << method << " " << path << ": " << r->body;
  }
  void createNode(const std::string& name) {
    std::string now = formatRfc3339(SystemClock::instance().nowMillis());
    send("POST", "/api/v1/nodes",
         {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}}},
          {"status",
           {{"allocatable", {{"cpu", "2"}, {"memory", "4Gi"}, {"pods", "110"}}},
            {"conditions",
             {{{"type", "Ready"},
               {"status", "True"},
               {"lastHeartbeatTime", now},
               {"lastTransitionTime", now}}}}}}},
         201);
  }
  json pods() { return getJson("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb"); }
  // Waits until `pred(pods list)` holds.
  bool waitPods(const std::function<bool(const json&)>& pred) {
    for (int i = 0; i < 150; ++i) {
      if (pred(pods())) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  // Reports every bound pod Running and Ready, like edgecore.
  void markBoundReady() {
    json list = pods();
    for (const auto& p : list["items"]) {
      if (p["spec"].value("nodeName", "").empty()) continue;
      json next = p;
      next["status"]["phase"] = "Running";
      next["status"]["conditions"] = json::array({json{{"type", "Ready"}, {"status", "True"}}});
      send(
          "PUT",
          "/api/v1/namespaces/default/pods/" + p["metadata"]["name"].get<std::string>() + "/status",
          next);
    }
  }
};

TEST_F(WorkloadsIntegrationTest, DeploymentIsScheduledRolledOutAndScaled) {
  createNode("edge-1");
  auto applied = edgectl({"apply", "-f", writeFile("web.yaml", kDeployment)});
  ASSERT_EQ(applied.exitCode, 0) << applied.err;

  auto allBound = [](size_t n) {
    return [n](const json& list) {
      if (list["items"].size() != n) return false;
      for (const auto& p : list["items"]) {
        if (p["spec"].value("nodeName", "") != "edge-1") return false;
      }
      return true;
    };
  };
  ASSERT_TRUE(waitPods(allBound(2))) << pods().dump(1);
  json first = pods()["items"][0];
  EXPECT_EQ(first["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");

  auto pending = edgectl({"rollout", "status", "deployment/web", "--timeout", "1s"});
  EXPECT_NE(pending.exitCode, 0) << "pods are not Ready yet";
  EXPECT_NE(pending.out.find("Waiting for deployment \"web\" rollout to finish"), std::string::npos)
      << pending.out;

  markBoundReady();
  auto status = edgectl({"rollout", "status", "deployment/web", "--timeout", "20s"});
  ASSERT_EQ(status.exitCode, 0)
      << status.out << status.err << pods().dump(1)
      << getJson("/apis/apps/v1/namespaces/default/deployments/web").dump(1);
  EXPECT_NE(status.out.find("deployment \"web\" successfully rolled out"), std::string::npos)
      << status.out;

  auto describe = edgectl({"describe", "pod", first["metadata"]["name"].get<std::string>()});
  ASSERT_EQ(describe.exitCode, 0) << describe.err;
  EXPECT_NE(describe.out.find("Successfully assigned default/" +
                              first["metadata"]["name"].get<std::string>() + " to edge-1"),
            std::string::npos)
      << describe.out;

  auto scaled = edgectl({"scale", "deploy/web", "--replicas", "3"});
  ASSERT_EQ(scaled.exitCode, 0) << scaled.err;
  EXPECT_EQ(scaled.out, "deployment.apps/web scaled\n");
  ASSERT_TRUE(waitPods(allBound(3))) << pods().dump(1);

  auto history = edgectl({"rollout", "history", "deployment", "web"});
  ASSERT_EQ(history.exitCode, 0) << history.err;
  EXPECT_NE(history.out.find("1         <none>"), std::string::npos) << history.out;

  auto del = edgectl({"delete", "deployment", "web"});
  ASSERT_EQ(del.exitCode, 0) << del.err;
  ASSERT_TRUE(waitPods([](const json& list) { return list["items"].empty(); }))
      << "cascading deletion";
}

TEST_F(WorkloadsIntegrationTest, UnschedulablePodExplainsWhy) {
  std::string yaml = kDeployment;
  yaml.replace(yaml.find("cpu: 100m"), 9, "cpu: \"64\"");
  ASSERT_EQ(edgectl({"apply", "-f", writeFile("big.yaml", yaml)}).exitCode, 0);
  createNode("edge-1");
  ASSERT_TRUE(waitPods([](const json& list) {
    if (list["items"].size() != 2) return false;
    for (const auto& p : list["items"]) {
      bool explained = false;
      for (const auto& c : p["status"].value("conditions", json::array())) {
        explained |= c["type"] == "PodScheduled" && c["reason"] == "Unschedulable" &&
                     c["message"] == "0/1 nodes are available: 1 Insufficient cpu.";
      }
      if (!explained) return false;
    }
    return true;
  })) << pods().dump(1);
}

TEST_F(WorkloadsIntegrationTest, ScaleSubresourceServesKubectlScale) {
  ASSERT_EQ(edgectl({"apply", "-f", writeFile("web.yaml", kDeployment)}).exitCode, 0);
  const std::string path = "/apis/apps/v1/namespaces/default/deployments/web/scale";
  json scale = getJson(path);
  EXPECT_EQ(scale["kind"], "Scale");
  EXPECT_EQ(scale["apiVersion"], "autoscaling/v1");
  EXPECT_EQ(scale["spec"]["replicas"], 2);
  EXPECT_EQ(scale["status"]["selector"], "app=web");

  auto c = client();
  auto patched =
      c.request("PATCH", path, R"({"spec":{"replicas":4}})", "application/merge-patch+json");
  ASSERT_TRUE(patched.isOk());
  EXPECT_EQ(patched->status, 200) << patched->body;
  EXPECT_EQ(getJson("/apis/apps/v1/namespaces/default/deployments/web")["spec"]["replicas"], 4);
  auto bad = c.request("PUT", path, R"({"spec":{"replicas":-1}})", "application/json");
  ASSERT_TRUE(bad.isOk());
  EXPECT_EQ(bad->status, 422) << bad->body;

  json discovery = getJson("/apis/apps/v1");
  bool listed = false;
  for (const auto& r : discovery["resources"]) listed |= r["name"] == "deployments/scale";
  EXPECT_TRUE(listed) << discovery.dump();

  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  auto k = runCommand(
      {"/usr/bin/kubectl", "--kubeconfig=" + kubeconfig(), "--cache-dir=" + dir_.path() + "/kcache",
       "scale", "deployment/web", "--replicas=1"},
      "", std::chrono::seconds(60));
  ASSERT_EQ(k.exitCode, 0) << k.out << k.err;
  EXPECT_EQ(k.out, "deployment.apps/web scaled\n");
  EXPECT_EQ(getJson("/apis/apps/v1/namespaces/default/deployments/web")["spec"]["replicas"], 1);
}

}  // namespace
}  // namespace ep::testing
