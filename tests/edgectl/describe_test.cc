#include "edgectl/describe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ep::edgectl {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const api::KindInfo& kind(std::string_view name) {
  return *api::findByUserName(name);
}

// 2024-01-01T00:10:00Z
constexpr int64_t kNow = 1704067800000;

json samplePod() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
      "name": "web-1", "namespace": "default", "uid": "u-1",
      "creationTimestamp": "2024-01-01T00:00:00Z",
      "labels": {"app": "web", "tier": "front"},
      "annotations": {"note": "hello",
                      "kubectl.kubernetes.io/last-applied-configuration": "{}"},
      "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d8", "controller": true}]
    },
    "spec": {
      "nodeName": "edge-1",
      "containers": [{
        "name": "nginx", "image": "nginx:1.25",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "env": [{"name": "MODE", "value": "prod"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]
      }],
      "volumes": [{"name": "data", "emptyDir": {}}],
      "nodeSelector": {"zone": "a"},
      "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                       "effect": "NoExecute", "tolerationSeconds": 300}]
    },
    "status": {
      "phase": "Running", "hostIP": "192.168.1.10", "podIP": "10.1.0.4",
      "podIPs": [{"ip": "10.1.0.4"}],
      "startTime": "2024-01-01T00:00:05Z",
      "conditions": [{"type": "Initialized", "status": "True"},
                     {"type": "Ready", "status": "True"}],
      "containerStatuses": [{
        "name": "nginx", "ready": true, "restartCount": 2,
        "image": "nginx:1.25", "imageID": "sha256:abc", "containerID": "containerd://c1",
        "state": {"running": {"startedAt": "2024-01-01T00:00:07Z"}}
      }]
    }
  })");
}

json sampleEvents() {
  return json::parse(R"([
    {"type": "Normal", "reason": "Started", "message": "Started container nginx",
     "source": {"component": "edged", "host": "edge-1"},
     "lastTimestamp": "2024-01-01T00:09:00Z", "count": 1},
    {"type": "Normal", "reason": "Scheduled", "message": "Assigned default/web-1 to edge-1",
     "source": {"component": "edge-scheduler"},
     "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:05:00Z",
     "count": 3}
  ])");
}

TEST(DescribePodTest, KubectlLayout) {
  std::string out = describeObject(kind("pod"), samplePod(), sampleEvents(), kNow);
  EXPECT_EQ(out,
            "Name:         web-1\n"
            "Namespace:    default\n"
            "Node:         edge-1/192.168.1.10\n"
            "Start Time:   Mon, 01 Jan 2024 00:00:05 +0000\n"
            "Labels:       app=web\n"
            "              tier=front\n"
            "Annotations:  note: hello\n"
            "Status:       Running\n"
            "IP:           10.1.0.4\n"
            "IPs:\n"
            "  IP:           10.1.0.4\n"
            "Controlled By:  ReplicaSet/web-5d8\n"
            "Containers:\n"
            "  nginx:\n"
            "    Container ID:   containerd://c1\n"
            "    Image:          nginx:1.25\n"
            "    Image ID:       sha256:abc\n"
            "    Port:           80/TCP\n"
            "    Host Port:      0/TCP\n"
            "    State:          Running\n"
            "      Started:      Mon, 01 Jan 2024 00:00:07 +0000\n"
            "    Ready:          True\n"
            "    Restart Count:  2\n"
            "    Environment:\n"
            "      MODE:  prod\n"
            "      POD:    (v1:metadata.name)\n"
            "    Mounts:\n"
            "      /data from data (ro)\n"
            "Conditions:\n"
            "  Type         Status\n"
            "  Initialized  True\n"
            "  Ready        True\n"
            "Volumes:\n"
            "  data:\n"
            "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)\n"
            "    Medium:      \n"
            "    SizeLimit:   <unset>\n"
            "Node-Selectors:  zone=a\n"
            "Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n"
            "Events:\n"
            "  Type    Reason     Age               From            Message\n"
            "  ----    ------     ----              ----            -------\n"
            "  Normal  Scheduled  5m (x3 over 10m)  edge-scheduler  Assigned default/web-1 to "
            "edge-1\n"
            "  Normal  Started    60s               edged, edge-1   Started container nginx\n");
}

TEST(DescribePodTest, NoEventsAndEmptyFields) {
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "default"}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
  std::string out = describeObject(kind("pod"), pod, json::array(), kNow);
  EXPECT_THAT(out, HasSubstr("Labels:       <none>\n"));
  EXPECT_THAT(out, HasSubstr("Annotations:  <none>\n"));
  EXPECT_THAT(out, HasSubstr("Node:         <none>\n"));
  EXPECT_THAT(out, HasSubstr("    Port:           <none>\n"));
  EXPECT_THAT(out, HasSubstr("    Environment:    <none>\n"));
  EXPECT_THAT(out, HasSubstr("    Mounts:         <none>\n"));
  EXPECT_THAT(out, HasSubstr("Volumes:            <none>\n"));
  EXPECT_THAT(out, HasSubstr("Events:             <none>\n"));
}

TEST(DescribeDeploymentTest, ReplicasLine) {
  json d = json::parse(R"({
    "metadata": {"name": "web", "namespace": "default",
                 "creationTimestamp": "2024-01-01T00:00:00Z"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
    "status": {"replicas": 3, "updatedReplicas": 2, "availableReplicas": 1,
               "unavailableReplicas": 2,
               "conditions": [{"type": "Available", "status": "False",
                               "reason": "MinimumReplicasUnavailable"}]}
  })");
  std::string out = describeObject(kind("deploy"), d, json(), kNow);
  EXPECT_THAT(out, HasSubstr("Selector:               app=web\n"));
  EXPECT_THAT(out,
              HasSubstr("Replicas:               3 desired | 2 updated | 3 total | 1 available | "
                        "2 unavailable\n"));
  EXPECT_THAT(out, HasSubstr("StrategyType:           RollingUpdate\n"));
  EXPECT_THAT(out, HasSubstr("RollingUpdateStrategy:  25% max unavailable, 25% max surge\n"));
  EXPECT_THAT(out, HasSubstr("Pod Template:\n  Labels:  app=web\n  Containers:\n   nginx:\n"));
  EXPECT_THAT(out, HasSubstr("    Image:         nginx\n"));
  EXPECT_THAT(out, HasSubstr("  Available  False   MinimumReplicasUnavailable\n"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("Events")));
}

TEST(DescribeConfigMapTest, DataSection) {
  json cm = {{"metadata", {{"name", "cfg"}, {"namespace", "default"}}},
             {"data", {{"app.conf", "port=80\nmode=prod"}, {"level", "debug"}}}};
  EXPECT_EQ(describeObject(kind("cm"), cm, json::array(), kNow),
            "Name:         cfg\n"
            "Namespace:    default\n"
            "Labels:       <none>\n"
            "Annotations:  <none>\n"
            "\n"
            "Data\n"
            "====\n"
            "app.conf:\n"
            "----\n"
            "port=80\n"
            "mode=prod\n"
            "\n"
            "level:\n"
            "----\n"
            "debug\n"
            "\n"
            "\n"
            "BinaryData\n"
            "====\n"
            "\n"
            "Events:  <none>\n");
}

TEST(DescribeSecretTest, ByteCounts) {
  json s = {{"metadata", {{"name", "creds"}, {"namespace", "default"}}},
            {"type", "Opaque"},
            {"data", {{"password", "c2VjcmV0"}, {"user", "YWRtaW4="}}}};
  std::string out = describeObject(kind("secret"), s, json(), kNow);
  EXPECT_THAT(out, HasSubstr("Type:  Opaque\n"));
  EXPECT_THAT(out, HasSubstr("password:  6 bytes\nuser:      5 bytes\n"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("c2VjcmV0")));
}

TEST(DescribeNodeTest, RolesConditionsAndInfo) {
  json n = json::parse(R"({
    "metadata": {"name": "edge-1", "creationTimestamp": "2024-01-01T00:00:00Z",
                 "labels": {"node-role.kubernetes.io/edge": "", "node-role.kubernetes.io/agent": ""}},
    "status": {
      "conditions": [{"type": "Ready", "status": "True", "reason": "EdgeReady",
                      "message": "edge is posting ready status",
                      "lastHeartbeatTime": "2024-01-01T00:09:00Z",
                      "lastTransitionTime": "2024-01-01T00:00:00Z"}],
      "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                    {"type": "Hostname", "address": "edge-1"}],
      "capacity": {"cpu": "4", "memory": "8Gi"},
      "nodeInfo": {"kernelVersion": "6.1.0", "architecture": "arm64"}
    }
  })");
  std::string out = describeObject(kind("node"), n, json::array(), kNow);
  EXPECT_THAT(out, HasSubstr("Roles:              agent,edge\n"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("Namespace:")));
  EXPECT_THAT(out, HasSubstr("  Type   Status  LastHeartbeatTime"));
  EXPECT_THAT(out, HasSubstr("Addresses:\n  InternalIP:  192.168.1.10\n  Hostname:    edge-1\n"));
  EXPECT_THAT(out, HasSubstr("Capacity:\n  cpu:     4\n  memory:  8Gi\n"));
  EXPECT_THAT(out, HasSubstr("  Kernel Version:             6.1.0\n"));
}

TEST(DescribeGenericTest, SpecAndStatusAsKeyValueLines) {
  json dev = json::parse(R"({
    "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
    "metadata": {"name": "thermo", "namespace": "default", "resourceVersion": "12",
                 "creationTimestamp": "2024-01-01T00:00:00Z"},
    "spec": {"deviceModelRef": {"name": "thermo-model"}, "nodeName": "edge-1",
             "properties": [{"name": "temp", "reportCycle": 1000}]},
    "status": {"twins": []}
  })");
  std::string out = describeObject(kind("device"), dev, json::array(), kNow);
  EXPECT_EQ(out,
            "Name:         thermo\n"
            "Namespace:    default\n"
            "Labels:       <none>\n"
            "Annotations:  <none>\n"
            "API Version:  devices.kubeedge.io/v1beta1\n"
            "Kind:         Device\n"
            "Metadata:\n"
            "  Creation Timestamp:  2024-01-01T00:00:00Z\n"
            "  Resource Version:    12\n"
            "Spec:\n"
            "  Device Model Ref:\n"
            "    Name:     thermo-model\n"
            "  Node Name:  edge-1\n"
            "  Properties:\n"
            "    Name:          temp\n"
            "    Report Cycle:  1000\n"
            "Events:            <none>\n");
}

TEST(FormatRfc1123Test, Utc) {
  EXPECT_EQ(formatRfc1123(0), "Thu, 01 Jan 1970 00:00:00 +0000");
}

}  // namespace
}  // namespace ep::edgectl
