#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/api/patch.h"

namespace ep::api {
namespace {

using nlohmann::json;

json smp(const json& original, const json& patch) {
  auto r = applyStrategicMergePatch(original, patch);
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  return r.isOk() ? *r : json();
}

json smp(const char* original, const char* patch) {
  return smp(json::parse(original), json::parse(patch));
}

bool hasDirective(const json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.key().empty() && it.key()[0] == '$') return true;
      if (hasDirective(it.value())) return true;
    }
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (hasDirective(e)) return true;
    }
  }
  return false;
}

const char* kDeployment = R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
               "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
  "spec": {
    "replicas": 2,
    "selector": {"matchLabels": {"app": "web"}},
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {
        "containers": [
          {"name": "app", "image": "busybox:1", "command": ["sleep", "3600"],
           "env": [{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "1"}],
           "ports": [{"containerPort": 80, "protocol": "TCP"}],
           "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
          {"name": "side", "image": "envoy:1"}
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "a", "operator": "Exists"}]
      }
    }
  }
})";

TEST(StrategicMergePatchTest, KubectlApplyImageChange) {
  json out = smp(kDeployment, R"({
    "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"v\":2}"}},
    "spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
      "containers": [{"image": "busybox:2", "name": "app"}]}}}})");
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0]["name"], "app");
  EXPECT_EQ(cs[0]["image"], "busybox:2");
  EXPECT_EQ(cs[0]["command"], json::parse(R"(["sleep","3600"])"));  // untouched fields kept
  EXPECT_EQ(cs[0]["env"].size(), 2u);
  EXPECT_EQ(cs[1]["image"], "envoy:1");
  EXPECT_EQ(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{\"v\":2}");
  EXPECT_EQ(out["spec"]["replicas"], 2);
  EXPECT_FALSE(hasDirective(out));
}

TEST(StrategicMergePatchTest, KubectlApplyAddsAndRemovesContainers) {
  // "side" removed, "logger" added before "app".
  json out = smp(kDeployment, R"({"spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "logger"}, {"name": "app"}],
      "containers": [{"image": "fluentbit:3", "name": "logger"},
                     {"$patch": "delete", "name": "side"}]}}}})");
  const json& cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0], json::parse(R"({"name": "logger", "image": "fluentbit:3"})"));
  EXPECT_EQ(cs[1]["name"], "app");
  EXPECT_EQ(cs[1]["image"], "busybox:1");
  EXPECT_FALSE(hasDirective(out));
}

TEST(StrategicMergePatchTest, KubectlApplyRemovesEnvVarAndChangesPort) {
  json out = smp(kDeployment, R"({"spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
      "containers": [{
        "name": "app",
        "$setElementOrder/env": [{"name": "MODE"}, {"name": "LEVEL"}],
        "env": [{"name": "LEVEL", "value": "info"}, {"$patch": "delete", "name": "DEBUG"}],
        "$setElementOrder/ports": [{"containerPort": 8080}],
        "ports": [{"containerPort": 8080}, {"$patch": "delete", "containerPort": 80}]
      }]}}}})");
  const json& app = out["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(app["env"], json::parse(R"([{"name": "MODE", "value": "prod"},
                                         {"name": "LEVEL", "value": "info"}])"));
  EXPECT_EQ(app["ports"], json::parse(R"([{"containerPort": 8080}])"));
  EXPECT_FALSE(hasDirective(out));
}

TEST(StrategicMergePatchTest, EnvValueChangedInPlace) {
  json out = smp(kDeployment, R"({"spec": {"template": {"spec": {"containers": [
      {"name": "app", "env": [{"name": "DEBUG", "value": "0"}]}]}}}})");
  const json& env = out["spec"]["template"]["spec"]["containers"][0]["env"];
  EXPECT_EQ(env,
            json::parse(R"([{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "0"}])"));
}

TEST(StrategicMergePatchTest, ReplacedListsAndMergedVolumeMounts) {
  json out = smp(kDeployment, R"({"spec": {"template": {"spec": {
      "containers": [{"name": "app", "command": ["sh"],
                      "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                                       {"mountPath": "/data", "readOnly": true}]}],
      "tolerations": [{"key": "b", "operator": "Exists"}],
      "volumes": [{"name": "cache", "emptyDir": {"medium": "Memory"}}]}}}})");
  const json& spec = out["spec"]["template"]["spec"];
  EXPECT_EQ(spec["containers"][0]["command"], json::parse(R"(["sh"])"));
  EXPECT_EQ(spec["containers"][0]["volumeMounts"],
            json::parse(R"([{"name": "data", "mountPath": "/data", "readOnly": true},
                            {"name": "cache", "mountPath": "/cache"}])"));
  EXPECT_EQ(spec["tolerations"], json::parse(R"([{"key": "b", "operator": "Exists"}])"));
  EXPECT_EQ(spec["volumes"].size(), 2u);
}

TEST(StrategicMergePatchTest, RetainKeysWhenSwitchingStrategy) {
  json out = smp(kDeployment, R"({"spec": {"strategy": {
      "$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}})");
  EXPECT_EQ(out["spec"]["strategy"], json::parse(R"({"type": "Recreate"})"));

  // $retainKeys alone also drops unlisted keys.
  out = smp(kDeployment, R"({"spec": {"strategy": {"$retainKeys": ["type"]}}})");
  EXPECT_EQ(out["spec"]["strategy"], json::parse(R"({"type": "RollingUpdate"})"));

  auto bad = applyStrategicMergePatch(json::parse(kDeployment), json::parse(R"(
      {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}})"));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInvalid);
}

const char* kPod = R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "p", "labels": {"app": "p", "old": "x"}, "finalizers": ["a.io/one", "b.io/two"],
               "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "rs"}]},
  "spec": {"nodeSelector": {"zone": "a", "disk": "ssd"},
           "containers": [{"name": "app", "image": "nginx:1",
                           "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}]},
  "status": {"phase": "Running",
             "conditions": [{"type": "Ready", "status": "False"},
                            {"type": "PodScheduled", "status": "True"}]}
})";

TEST(StrategicMergePatchTest, PodLabelsAndResources) {
  json out = smp(kPod, R"({"metadata": {"labels": {"old": null, "new": "y"}},
      "spec": {"containers": [{"name": "app", "image": "nginx:2",
                               "resources": {"limits": {"memory": null, "cpu": "2"}}}]}})");
  EXPECT_EQ(out["metadata"]["labels"], json::parse(R"({"app": "p", "new": "y"})"));
  EXPECT_EQ(out["spec"]["containers"][0]["image"], "nginx:2");
  EXPECT_EQ(out["spec"]["containers"][0]["resources"], json::parse(R"({"limits": {"cpu": "2"}})"));
}

TEST(StrategicMergePatchTest, ConditionsMergeByType) {
  json out = smp(kPod, R"({"status": {"conditions": [
      {"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}})");
  EXPECT_EQ(out["status"]["conditions"], json::parse(R"([
      {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"},
      {"type": "Initialized", "status": "True"}])"));
}

TEST(StrategicMergePatchTest, FinalizersAndOwnerReferences) {
  json out = smp(kPod, R"({"metadata": {"finalizers": ["c.io/three", "a.io/one"],
                                        "ownerReferences": [{"uid": "u2", "kind": "Node", "name": "n"}]}})");
  EXPECT_EQ(out["metadata"]["finalizers"],
            json::parse(R"(["a.io/one", "b.io/two", "c.io/three"])"));
  EXPECT_EQ(out["metadata"]["ownerReferences"].size(), 2u);

  out = smp(kPod, R"({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/one"]}})");
  EXPECT_EQ(out["metadata"]["finalizers"], json::parse(R"(["b.io/two"])"));

  out = smp(kPod, R"({"metadata": {"$setElementOrder/finalizers": ["b.io/two", "a.io/one"]}})");
  EXPECT_EQ(out["metadata"]["finalizers"], json::parse(R"(["b.io/two", "a.io/one"])"));

  out = smp(kPod, R"({"metadata": {"ownerReferences": [{"uid": "u1", "$patch": "delete"}]}})");
  EXPECT_EQ(out["metadata"]["ownerReferences"], json::array());
}

TEST(StrategicMergePatchTest, ReplaceAndDeleteDirectives) {
  json out = smp(kPod, R"({"spec": {"nodeSelector": {"$patch": "replace", "zone": "b"}}})");
  EXPECT_EQ(out["spec"]["nodeSelector"], json::parse(R"({"zone": "b"})"));

  out = smp(kPod,
            R"({"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}})");
  EXPECT_EQ(out["spec"]["containers"], json::parse(R"([{"name": "only", "image": "x"}])"));

  out = smp(kPod, R"({"spec": {"nodeSelector": {"$patch": "delete"}}})");
  EXPECT_EQ(out["spec"]["nodeSelector"], json::object());

  out = smp(kPod, R"({"spec": {"$patch": "merge", "hostNetwork": true}})");
  EXPECT_EQ(out["spec"]["hostNetwork"], true);
  EXPECT_EQ(out["spec"]["nodeSelector"]["zone"], "a");

  // Top-level replace.
  out = smp(kPod, R"({"$patch": "replace", "kind": "Pod", "metadata": {"name": "q"}})");
  EXPECT_EQ(out, json::parse(R"({"kind": "Pod", "metadata": {"name": "q"}})"));
}

TEST(StrategicMergePatchTest, SetElementOrderKeepsUnmentionedAfter) {
  json original = json::parse(R"({"spec": {"containers": [
      {"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]}})");
  json out = smp(original, json::parse(R"({"spec": {
      "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}})"));
  std::vector<std::string> names;
  for (const auto& c : out["spec"]["containers"]) names.push_back(c["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"c", "a", "b", "d"}));
}

TEST(StrategicMergePatchTest, NewValuesAreCleaned) {
  json out = smp(R"({"spec": {}})", R"({"spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "x"}],
      "containers": [{"name": "x", "image": "i", "env": [{"name": "A", "$patch": "delete"}],
                      "args": null}],
      "affinity": {"$patch": "replace", "nodeAffinity": {"x": null}}}}}})");
  EXPECT_EQ(out, json::parse(R"({"spec": {"template": {"spec": {
      "containers": [{"name": "x", "image": "i", "env": []}],
      "affinity": {"nodeAffinity": {}}}}}})"));
  EXPECT_FALSE(hasDirective(out));
}

TEST(StrategicMergePatchTest, Errors) {
  json pod = json::parse(kPod);
  auto notObject = applyStrategicMergePatch(pod, json::array());
  ASSERT_FALSE(notObject.isOk());
  EXPECT_EQ(notObject.status().code(), Code::kBadRequest);

  auto noKey =
      applyStrategicMergePatch(pod, json::parse(R"({"spec": {"containers": [{"image": "x"}]}})"));
  ASSERT_FALSE(noKey.isOk());
  EXPECT_EQ(noKey.status().code(), Code::kInvalid);
  EXPECT_NE(noKey.status().message().find("does not contain declared merge key: name"),
            std::string::npos);

  for (const char* p :
       {R"({"spec": {"$patch": "frob"}})", R"({"spec": {"$patch": 3}})",
        R"({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}})",
        R"({"spec": {"$setElementOrder/containers": {}}})", R"({"spec": {"$retainKeys": "x"}})"}) {
    auto r = applyStrategicMergePatch(pod, json::parse(p));
    ASSERT_FALSE(r.isOk()) << p;
    EXPECT_EQ(r.status().code(), Code::kBadRequest) << p;
  }
}

TEST(StrategicMergePatchTest, TypeChangesReplace) {
  json out = smp(R"({"a": {"b": 1}, "c": [1, 2], "d": "x"})",
                 R"({"a": [1], "c": {"k": "v"}, "d": {"e": null, "f": 1}})");
  EXPECT_EQ(out, json::parse(R"({"a": [1], "c": {"k": "v"}, "d": {"f": 1}})"));
}

TEST(StrategicMergePatchTest, MergeKeys) {
  EXPECT_EQ(strategicMergeKey("containers"), "name");
  EXPECT_EQ(strategicMergeKey("hostAliases"), "ip");
  EXPECT_EQ(strategicMergeKey("volumeMounts"), "mountPath");
  EXPECT_EQ(strategicMergeKey("ports"), "containerPort");
  EXPECT_EQ(strategicMergeKey("topologySpreadConstraints"), "topologyKey");
  EXPECT_EQ(strategicMergeKey("envFrom"), "");
  EXPECT_EQ(strategicMergeKey("tolerations"), "");
}

}  // namespace
}  // namespace ep::api

namespace ep::api {
namespace {

// A Service's ports merge by port (a container's by containerPort): kubectl apply of a changed
// Service used to fail with "does not contain declared merge key: containerPort".
TEST(StrategicMergePatchServicePortsTest, ServicePortsMergeByPort) {
  auto r = applyStrategicMergePatch(
      nlohmann::json::parse(R"({"spec":{"ports":[{"port":80,"targetPort":8080,"nodePort":30080},
                                                  {"port":443,"targetPort":8443}]}})"),
      nlohmann::json::parse(R"({"spec":{"ports":[{"port":80,"targetPort":9090}]}})"));
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  ASSERT_EQ((*r)["spec"]["ports"].size(), 2u);
  EXPECT_EQ((*r)["spec"]["ports"][0]["targetPort"], 9090);
  EXPECT_EQ((*r)["spec"]["ports"][0]["nodePort"], 30080);
  EXPECT_EQ(strategicMergeKey("ports", nlohmann::json::parse(R"([{"port":1}])")), "port");
  EXPECT_EQ(strategicMergeKey("ports", nlohmann::json::parse(R"([{"containerPort":1}])")),
            "containerPort");
}

}  // namespace
}  // namespace ep::api
