#include "common/api/printers.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ep::api {
namespace {

using nlohmann::json;

constexpr int64_t kCreated = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr int64_t kNow = kCreated + 5 * 60 * 1000;

const KindInfo& kind(std::string_view name) {
  const KindInfo* k = findByUserName(name);
  EXPECT_NE(k, nullptr) << name;
  return *k;
}

std::vector<std::string> names(const std::vector<Column>& cols, int priority) {
  std::vector<std::string> out;
  for (const auto& c : cols) {
    if (c.priority == priority) out.push_back(c.name);
  }
  return out;
}

json cells(std::string_view k, const char* obj, int64_t now = kNow) {
  json c = tableCells(kind(k), json::parse(obj), now);
  EXPECT_EQ(c.size(), tableColumns(kind(k)).size()) << k;
  return c;
}

TEST(PrintersTest, Columns) {
  using V = std::vector<std::string>;
  EXPECT_EQ(names(tableColumns(kind("pod")), 0), (V{"Name", "Ready", "Status", "Restarts", "Age"}));
  EXPECT_EQ(names(tableColumns(kind("pod")), 1),
            (V{"IP", "Node", "Nominated Node", "Readiness Gates"}));
  EXPECT_EQ(names(tableColumns(kind("node")), 0), (V{"Name", "Status", "Roles", "Age", "Version"}));
  EXPECT_EQ(names(tableColumns(kind("node")), 1),
            (V{"Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"}));
  EXPECT_EQ(names(tableColumns(kind("ns")), 0), (V{"Name", "Status", "Age"}));
  EXPECT_EQ(names(tableColumns(kind("cm")), 0), (V{"Name", "Data", "Age"}));
  EXPECT_EQ(names(tableColumns(kind("secret")), 0), (V{"Name", "Type", "Data", "Age"}));
  EXPECT_EQ(names(tableColumns(kind("ev")), 0),
            (V{"Last Seen", "Type", "Reason", "Object", "Message"}));
  EXPECT_EQ(names(tableColumns(kind("deploy")), 0),
            (V{"Name", "Ready", "Up-to-date", "Available", "Age"}));
  EXPECT_EQ(names(tableColumns(kind("deploy")), 1), (V{"Containers", "Images", "Selector"}));
  EXPECT_EQ(names(tableColumns(kind("rs")), 0), (V{"Name", "Desired", "Current", "Ready", "Age"}));
  EXPECT_EQ(names(tableColumns(kind("device")), 0), (V{"Name", "Model", "Node", "State", "Age"}));
  EXPECT_EQ(names(tableColumns(kind("device")), 1), (V{"Protocol", "Last-Online", "Reported"}));
  EXPECT_EQ(names(tableColumns(kind("devicemodel")), 0),
            (V{"Name", "Protocol", "Properties", "Age"}));
  for (const char* k : {"ruleendpoint", "rule", "models.sedna.io"}) {
    EXPECT_EQ(names(tableColumns(kind(k)), 0), (V{"Name", "Age"})) << k;
  }
  for (const auto& k : allKinds()) {
    const auto& cols = tableColumns(k);
    ASSERT_FALSE(cols.empty());
    for (const auto& c : cols) {
      EXPECT_FALSE(c.description.empty()) << k.kind << " " << c.name;
      EXPECT_TRUE(c.type == "string" || c.type == "integer") << c.type;
      EXPECT_EQ(c.format == "name", c.name == "Name" && c.priority == 0) << k.kind << " " << c.name;
    }
  }
  EXPECT_EQ(tableColumns(kind("cm"))[1].type, "integer");
}

TEST(PodPrinterTest, RunningPod) {
  json c = cells("pod", R"({
    "metadata": {"name": "web-1", "creationTimestamp": "2023-11-14T22:13:20Z"},
    "spec": {"nodeName": "edge-1", "containers": [{"name": "a"}, {"name": "b"}]},
    "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "podIP": "10.0.0.7",
      "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]}})");
  EXPECT_EQ(c, json::parse(R"(["web-1", "2/2", "Running", 0, "5m", "10.0.0.7", "edge-1",
                               "<none>", "<none>"])"));
}

TEST(PodPrinterTest, PendingWithoutStatus) {
  json c = cells("pod", R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}})");
  EXPECT_EQ(c, json::parse(R"(["p", "0/1", "Pending", 0, "<unknown>", "<none>", "<none>",
                               "<none>", "<none>"])"));
}

TEST(PodPrinterTest, RestartsAndWaitingReason) {
  json c = cells("pod", R"({
    "metadata": {"name": "p", "creationTimestamp": "2023-11-14T22:13:20Z"},
    "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    "status": {"phase": "Running", "nominatedNodeName": "n2", "containerStatuses": [
      {"name": "a", "ready": false, "restartCount": 3,
       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
       "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2023-11-14T22:16:20Z"}}},
      {"name": "b", "ready": true, "restartCount": 1, "state": {"running": {}}}]}})");
  EXPECT_EQ(c[1], "1/2");
  EXPECT_EQ(c[2], "CrashLoopBackOff");
  EXPECT_EQ(c[3], "4 (2m ago)");
  EXPECT_EQ(c[7], "n2");

  // Restarts without a known termination time stay a number.
  c = cells("pod", R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
    "status": {"phase": "Running", "containerStatuses": [
      {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}}]}})");
  EXPECT_EQ(c[3], 2);
}

TEST(PodPrinterTest, TerminatedContainers) {
  json c = cells("pod", R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
    "status": {"phase": "Failed", "containerStatuses": [
      {"name": "a", "state": {"terminated": {"exitCode": 137}}}]}})");
  EXPECT_EQ(c[2], "ExitCode:137");
  c = cells("pod", R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
    "status": {"phase": "Failed", "containerStatuses": [
      {"name": "a", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}})");
  EXPECT_EQ(c[2], "Signal:9");
  c = cells("pod",
            R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    "status": {"phase": "Running", "containerStatuses": [
      {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
      {"name": "b", "ready": true, "state": {"running": {}}}]}})");
  EXPECT_EQ(c[2], "NotReady");  // completed container but another still running, pod not ready
  c = cells("pod", R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
    "status": {"phase": "Succeeded", "containerStatuses": [
      {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}})");
  EXPECT_EQ(c[2], "Completed");
  EXPECT_EQ(c[1], "0/1");
}

TEST(PodPrinterTest, InitContainers) {
  const char* base = R"({"metadata": {"name": "p"},
    "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
    "status": {"phase": "Pending", "initContainerStatuses": %s}})";
  auto withInit = [&](const char* statuses) {
    std::string doc(base);
    doc.replace(doc.find("%s"), 2, statuses);
    return cells("pod", doc.c_str());
  };
  EXPECT_EQ(withInit(R"([{"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}}])")[2],
            "Init:0/2");
  EXPECT_EQ(withInit(R"([{"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                         {"name": "i2", "state": {"running": {}}}])")[2],
            "Init:1/2");
  EXPECT_EQ(withInit(R"([{"name": "i1", "restartCount": 4,
                          "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])")[2],
            "Init:CrashLoopBackOff");
  json c = withInit(R"([{"name": "i1", "state": {"terminated": {"exitCode": 2}}}])");
  EXPECT_EQ(c[2], "Init:ExitCode:2");
  c = withInit(
      R"([{"name": "i1", "restartCount": 4, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}])");
  EXPECT_EQ(c[2], "Init:Error");
  EXPECT_EQ(c[3], 4);  // init restarts count while initializing
}

TEST(PodPrinterTest, SidecarCountsAsContainer) {
  json c = cells("pod", R"({"metadata": {"name": "p"},
    "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
      "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                                 "state": {"running": {}}}],
      "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}})");
  EXPECT_EQ(c[1], "2/2");
  EXPECT_EQ(c[2], "Running");
  EXPECT_EQ(c[3], 1);
}

TEST(PodPrinterTest, TerminatingAndGates) {
  json c = cells("pod", R"({"metadata": {"name": "p", "deletionTimestamp": "2023-11-14T22:14:00Z"},
    "spec": {"containers": [{"name": "a"}],
             "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]},
    "status": {"phase": "Running", "conditions": [{"type": "example.com/lb", "status": "True"},
                                                  {"type": "example.com/dns", "status": "False"}]}})");
  EXPECT_EQ(c[2], "Terminating");
  EXPECT_EQ(c[8], "1/2");
  c = cells("pod", R"({"metadata": {"name": "p", "deletionTimestamp": "2023-11-14T22:14:00Z"},
    "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running", "reason": "NodeLost"}})");
  EXPECT_EQ(c[2], "Unknown");
  c = cells("pod", R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
    "status": {"phase": "Failed", "reason": "Evicted"}})");
  EXPECT_EQ(c[2], "Evicted");
}

TEST(NodePrinterTest, StatusRolesAndWide) {
  json c = cells("node", R"({
    "metadata": {"name": "edge-1", "creationTimestamp": "2023-11-12T22:13:20Z",
                 "labels": {"node-role.kubernetes.io/edge": "", "node-role.kubernetes.io/agent": "",
                            "kubernetes.io/hostname": "edge-1"}},
    "spec": {"unschedulable": true},
    "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                              {"type": "Ready", "status": "True"}],
               "addresses": [{"type": "Hostname", "address": "edge-1"},
                             {"type": "InternalIP", "address": "192.168.1.10"}],
               "nodeInfo": {"kubeletVersion": "v1.32.0-edgeplane", "osImage": "Debian GNU/Linux 12",
                            "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0"}}})");
  EXPECT_EQ(c, json::parse(R"(["edge-1", "Ready,SchedulingDisabled", "agent,edge", "2d",
      "v1.32.0-edgeplane", "192.168.1.10", "<none>", "Debian GNU/Linux 12", "6.1.0",
      "containerd://1.7.0"])"));

  c = cells(
      "node",
      R"({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})");
  EXPECT_EQ(c[1], "NotReady");
  EXPECT_EQ(c[2], "<none>");
  EXPECT_EQ(c[7], "<unknown>");
  c = cells("node", R"({"metadata": {"name": "n", "labels": {"kubernetes.io/role": "master"}}})");
  EXPECT_EQ(c[1], "Unknown");
  EXPECT_EQ(c[2], "master");
}

TEST(SimplePrintersTest, NamespaceConfigMapSecret) {
  EXPECT_EQ(
      cells("ns", R"({"metadata": {"name": "default", "creationTimestamp": "2023-11-14T22:13:20Z"},
                            "status": {"phase": "Active"}})"),
      json::parse(R"(["default", "Active", "5m"])"));
  EXPECT_EQ(
      cells(
          "cm",
          R"({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})"),
      json::parse(R"(["c", 3, "<unknown>"])"));
  EXPECT_EQ(cells("cm", R"({"metadata": {"name": "c"}})"), json::parse(R"(["c", 0, "<unknown>"])"));
  EXPECT_EQ(
      cells("secret", R"({"metadata": {"name": "s", "creationTimestamp": "2023-11-14T22:13:20Z"},
                                "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})"),
      json::parse(R"(["s", "kubernetes.io/tls", 2, "5m"])"));
  EXPECT_EQ(cells("device",
                  R"({"metadata": {"name": "d1", "creationTimestamp": "2023-11-14T22:13:20Z"}})"),
            json::parse(R"(["d1", "", "<none>", "<none>", "5m", "<none>", "<none>", "<none>"])"));
  EXPECT_EQ(
      cells("device", R"({"metadata": {"name": "d1", "creationTimestamp": "2023-11-14T22:13:20Z"},
                  "spec": {"deviceModelRef": {"name": "m"}, "nodeName": "n1",
                           "protocol": {"protocolName": "modbus"}},
                  "status": {"state": "online", "lastOnlineTime": "2023-11-14T22:17:20Z",
                             "twins": [{"propertyName": "t", "reported": {"value": "21"}},
                                       {"propertyName": "s", "observedDesired": {"value": "5"}},
                                       {"propertyName": "h", "reported": {"value": "40"}}]}})"),
      json::parse(R"(["d1", "m", "n1", "online", "5m", "modbus", "60s", "t=21,h=40"])"));
  EXPECT_EQ(cells("devicemodel",
                  R"({"metadata": {"name": "m", "creationTimestamp": "2023-11-14T22:13:20Z"},
                  "spec": {"protocol": "modbus", "properties": [{"name": "a"}, {"name": "b"}]}})"),
            json::parse(R"(["m", "modbus", 2, "5m"])"));
  EXPECT_EQ(cells("rule", R"({"metadata": {"name": "r", "creationTimestamp": "garbage"}})"),
            json::parse(R"(["r", "<unknown>"])"));
}

TEST(EventPrinterTest, Cells) {
  json c = cells("ev", R"({"metadata": {"name": "web.1"},
    "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
    "reason": "BackOff", "type": "Warning", "message": "  Back-off restarting  \n",
    "firstTimestamp": "2023-11-14T22:13:20Z", "lastTimestamp": "2023-11-14T22:17:20Z", "count": 4,
    "source": {"component": "kubelet", "host": "edge-1"}})");
  EXPECT_EQ(c, json::parse(R"(["60s", "Warning", "BackOff", "pod/web", "spec.containers{app}",
      "kubelet, edge-1", "Back-off restarting", "5m", 4, "web.1"])"));

  c = cells("ev", R"({"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"},
    "eventTime": "2023-11-14T22:16:20.123456Z", "reportingComponent": "edgeplane-controller",
    "series": {"count": 7, "lastObservedTime": "2023-11-14T22:17:50.000000Z"}})");
  EXPECT_EQ(c[0], "30s");
  EXPECT_EQ(c[3], "node");
  EXPECT_EQ(c[5], "edgeplane-controller");
  EXPECT_EQ(c[7], "119s");  // eventTime 22:16:20.123456, now 22:18:20
  EXPECT_EQ(c[8], 7);

  c = cells("ev", R"({"metadata": {"name": "e"}})");
  EXPECT_EQ(c[0], "<unknown>");
  EXPECT_EQ(c[8], 1);
}

TEST(WorkloadPrinterTest, DeploymentAndReplicaSet) {
  const char* deploy = R"({"metadata": {"name": "web", "creationTimestamp": "2023-11-14T22:13:20Z"},
    "spec": {"replicas": 3,
             "selector": {"matchLabels": {"app": "web"},
                          "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
             "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1"},
                                                  {"name": "side", "image": "envoy:2"}]}}},
    "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2, "replicas": 3}})";
  EXPECT_EQ(cells("deploy", deploy), json::parse(R"j(["web", "2/3", 3, 2, "5m", "app,side",
      "nginx:1,envoy:2", "app=web,tier in (be,fe)"])j"));
  EXPECT_EQ(cells("rs", deploy), json::parse(R"j(["web", 3, 3, 2, "5m", "app,side",
      "nginx:1,envoy:2", "app=web,tier in (be,fe)"])j"));
  EXPECT_EQ(cells("deploy", R"({"metadata": {"name": "x"}, "spec": {"replicas": 0}})"),
            json::parse(R"(["x", "0/0", 0, 0, "<unknown>", "", "", ""])"));
}

TEST(PrintersTest, OddObjectsDoNotThrow) {
  for (const auto& k : allKinds()) {
    for (const char* doc :
         {"null", "[]", R"({"metadata": 1, "spec": [], "status": "x"})",
          R"({"spec": {"containers": [1, null]}, "status": {"containerStatuses": [1]}})"}) {
      json c;
      EXPECT_NO_THROW(c = tableCells(k, json::parse(doc), kNow)) << k.kind << " " << doc;
      EXPECT_EQ(c.size(), tableColumns(k).size()) << k.kind << " " << doc;
    }
  }
}

}  // namespace
}  // namespace ep::api
