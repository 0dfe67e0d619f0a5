#include "cloudcore/cloudhub/refs.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::cloudhub {
namespace {

using nlohmann::json;

std::vector<std::string> names(const Placement& p) {
  std::vector<std::string> out;
  for (const auto& r : p.refs) out.push_back(r.resource + " " + r.namespace_ + "/" + r.name);
  return out;
}

TEST(PlacementTest, PodReferencesEveryConfigMapAndSecretSource) {
  json pod = json::parse(R"({
    "spec": {
      "nodeName": "edge-1",
      "volumes": [
        {"name": "a", "configMap": {"name": "cm-vol"}},
        {"name": "b", "secret": {"secretName": "s-vol"}},
        {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm-proj"}},
                                                {"secret": {"name": "s-proj"}}]}},
        {"name": "d", "emptyDir": {}}
      ],
      "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s-envfrom"}}]}],
      "containers": [{"name": "c", "env": [
          {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
          {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}},
          {"name": "Z", "value": "plain"}],
        "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}]}],
      "imagePullSecrets": [{"name": "pull"}]
    }})");
  Placement p = placementOf(kPods, "ns", pod);
  EXPECT_EQ(p.nodes, std::vector<std::string>{"edge-1"});
  EXPECT_EQ(names(p),
            (std::vector<std::string>{"configmaps ns/cm-env", "configmaps ns/cm-envfrom",
                                      "configmaps ns/cm-proj", "configmaps ns/cm-vol",
                                      "secrets ns/pull", "secrets ns/s-env", "secrets ns/s-envfrom",
                                      "secrets ns/s-proj", "secrets ns/s-vol"}));
}

TEST(PlacementTest, UnboundPodAndMalformedFieldsYieldNothing) {
  EXPECT_TRUE(placementOf(kPods, "ns", json::parse(R"({"spec": {"volumes": [
      {"configMap": {"name": "x"}}]}})"))
                  .nodes.empty());
  Placement p = placementOf(kPods, "ns", json::parse(R"({"spec": {"nodeName": "n",
      "volumes": 7, "containers": [{"env": [{"valueFrom": {"configMapKeyRef": {"name": 3}}}]}],
      "imagePullSecrets": "x"}})"));
  EXPECT_EQ(p.nodes.size(), 1u);
  EXPECT_TRUE(p.refs.empty());
  EXPECT_TRUE(placementOf(kPods, "ns", json::array()).nodes.empty());
}

TEST(PlacementTest, DevicesRulesAndModels) {
  Placement d = placementOf(kDevices, "ns", json::parse(R"({"spec": {"nodeName": "e",
      "deviceModelRef": {"name": "thermo"}}})"));
  EXPECT_EQ(d.nodes, std::vector<std::string>{"e"});
  EXPECT_EQ(names(d), std::vector<std::string>{std::string(kDeviceModels) + " ns/thermo"});

  Placement r = placementOf(kRules, "ns", json::parse(R"({"spec": {"source": "src",
      "target": "dst", "sourceResource": {"node_name": "e1"},
      "targetResource": {"node_name": "e2"}}})"));
  EXPECT_EQ(r.nodes, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(names(r), (std::vector<std::string>{std::string(kRuleEndpoints) + " ns/dst",
                                                std::string(kRuleEndpoints) + " ns/src"}));

  Placement m = placementOf(kModels, "ns", json::parse(R"({"spec": {"nodeName": "e"}})"));
  EXPECT_EQ(m.nodes, std::vector<std::string>{"e"});
  EXPECT_TRUE(placementOf(kConfigMaps, "ns", json::parse(R"({"data": {}})")).nodes.empty());
}

TEST(PlacementTest, EndpointSlicesGoToTheirEndpointsNodesWithTheirService) {
  Placement s = placementOf(kEndpointSlices, "ns", json::parse(R"({
      "metadata": {"labels": {"kubernetes.io/service-name": "web"}},
      "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "e1"},
                    {"addresses": ["10.0.0.2"], "nodeName": "e2"},
                    {"addresses": ["10.0.0.3"], "nodeName": "e1"},
                    {"addresses": ["10.0.0.4"]}]})"));
  EXPECT_EQ(s.nodes, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(names(s), std::vector<std::string>{std::string(kServices) + " ns/web"});
  // No endpoint on any node (a placeholder slice): sent nowhere, pulls nothing.
  Placement empty = placementOf(kEndpointSlices, "ns", json::parse(R"({
      "metadata": {"labels": {"kubernetes.io/service-name": "web"}}, "endpoints": []})"));
  EXPECT_TRUE(empty.nodes.empty());
  EXPECT_TRUE(empty.refs.empty());
  // A Service is never a root of its own.
  EXPECT_TRUE(placementOf(kServices, "ns", json::parse(R"({"spec": {"clusterIP": "10.96.0.9"}})"))
                  .nodes.empty());
}

TEST(PlacementTest, UpgradeJobsGoToTheNodesTheyAreUpgradingWithTheirRelease) {
  Placement j = placementOf(kNodeUpgradeJobs, "", json::parse(R"({"spec": {"version": "2.0.0"},
      "status": {"nodeStatus": [{"nodeName": "e1", "state": "InProgress"},
                                {"nodeName": "e2", "state": "Init"},
                                {"nodeName": "e3", "state": "Completed"}]}})"));
  EXPECT_EQ(j.nodes, std::vector<std::string>{"e1"});
  EXPECT_EQ(names(j), std::vector<std::string>{std::string(kEdgecoreReleases) + " /2.0.0"});
  Placement none = placementOf(kNodeUpgradeJobs, "", json::parse(R"({"spec": {"version": "2"}})"));
  EXPECT_TRUE(none.nodes.empty());
  EXPECT_TRUE(none.refs.empty());
  EXPECT_TRUE(isTracked(kNodeUpgradeJobs));
  EXPECT_TRUE(isTracked(kEdgecoreReleases));
}

}  // namespace
}  // namespace ep::cloudhub
