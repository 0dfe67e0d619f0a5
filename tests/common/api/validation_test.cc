#include "common/api/validation.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ep::api {
namespace {

using nlohmann::json;

const KindInfo& kind(std::string_view name) {
  const KindInfo* k = findByUserName(name);
  EXPECT_NE(k, nullptr) << name;
  return *k;
}

std::string dump(const std::vector<FieldError>& errs) {
  std::string s;
  for (const auto& e : errs) s += "\n  " + e.reason + " | " + e.message;
  return s;
}

// Applies a merge patch to a base object, then validates it.
std::vector<FieldError> check(std::string_view k, const json& base, const char* mergePatch = "{}") {
  json obj = base;
  obj.merge_patch(json::parse(mergePatch));
  return validateObject(kind(k), obj);
}

bool hasError(const std::vector<FieldError>& errs, std::string_view reason,
              std::string_view message) {
  for (const auto& e : errs) {
    if (e.reason == reason && e.message == message) return true;
  }
  return false;
}

bool hasField(const std::vector<FieldError>& errs, std::string_view reason,
              std::string_view field) {
  for (const auto& e : errs) {
    if (e.reason == reason && e.field == field) return true;
  }
  return false;
}

#define EXPECT_ERROR(errs, reason, message) \
  EXPECT_TRUE(hasError(errs, reason, message)) << "missing: " << (message) << dump(errs)
#define EXPECT_FIELD(errs, reason, field) \
  EXPECT_TRUE(hasField(errs, reason, field)) << "missing: " << (field) << dump(errs)
#define EXPECT_VALID(errs) EXPECT_TRUE((errs).empty()) << dump(errs)

const json kPod = json::parse(R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
               "annotations": {"example.com/note": "hi"}},
  "spec": {
    "restartPolicy": "Always",
    "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
    "containers": [{
      "name": "app", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
      "args": ["--port", "8080"],
      "env": [{"name": "MODE", "value": "prod"},
              {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
              {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}}],
      "envFrom": [{"configMapRef": {"name": "cfg"}}],
      "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"containerPort": 9090, "hostPort": 19090}],
      "volumeMounts": [{"name": "data", "mountPath": "/data"}],
      "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "0.5", "memory": "128974848"}},
      "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
      "readinessProbe": {"tcpSocket": {"port": "http"}}
    }],
    "volumes": [{"name": "data", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg"}}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                     "effect": "NoExecute", "tolerationSeconds": 300},
                    {"operator": "Exists"},
                    {"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}]
  }
})");

TEST(ValidatePodTest, ValidPod) {
  EXPECT_VALID(check("pod", kPod));
}

TEST(ValidatePodTest, NotAnObject) {
  auto errs = validateObject(kind("pod"), json::array());
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].reason, "FieldValueTypeInvalid");
}

TEST(ValidateMetaTest, Name) {
  auto errs = check("pod", kPod, R"({"metadata": {"name": "Bad_Name"}})");
  ASSERT_EQ(errs.size(), 1u) << dump(errs);
  EXPECT_EQ(errs[0].reason, "FieldValueInvalid");
  EXPECT_EQ(errs[0].message.rfind("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC "
                                  "1123 subdomain must consist of",
                                  0),
            0u)
      << errs[0].message;

  errs = check("pod", kPod, R"({"metadata": {"name": null}})");
  EXPECT_ERROR(errs, "FieldValueRequired",
               "metadata.name: Required value: name or generateName is required");
  errs = check("pod", kPod, R"({"metadata": {"name": 7}})");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid", "metadata.name: Invalid value: 7: must be a string");
  errs = validateObject(kind("pod"), json::parse(R"({"spec": {"containers": []}})"));
  EXPECT_FIELD(errs, "FieldValueRequired", "metadata.name");
  EXPECT_FIELD(errs, "FieldValueRequired", "spec.containers");

  // Subdomains with dots are fine for most kinds, not for namespaces (DNS labels).
  EXPECT_VALID(check("pod", kPod, R"({"metadata": {"name": "web.v1"}})"));
  json ns = json::parse(R"({"metadata": {"name": "team.a"}})");
  EXPECT_FIELD(validateObject(kind("namespace"), ns), "FieldValueInvalid", "metadata.name");
  ns["metadata"]["name"] = "team-a";
  EXPECT_VALID(validateObject(kind("namespace"), ns));
  ns["metadata"]["name"] = std::string(64, 'a');
  EXPECT_FIELD(validateObject(kind("namespace"), ns), "FieldValueInvalid", "metadata.name");
  json cm = json::parse(R"({"metadata": {"name": ""}})");
  cm["metadata"]["name"] = std::string(254, 'a');
  EXPECT_ERROR(validateObject(kind("configmap"), cm), "FieldValueInvalid",
               "metadata.name: Invalid value: \"" + std::string(254, 'a') +
                   "\": must be no more than 253 characters");
}

TEST(ValidateMetaTest, NamespaceLabelsAnnotations) {
  auto errs = check("pod", kPod, R"({"metadata": {"namespace": 5}})");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid",
               "metadata.namespace: Invalid value: 5: must be a string");
  errs = check("pod", kPod, R"({"metadata": {"namespace": "Bad NS"}})");
  EXPECT_FIELD(errs, "FieldValueInvalid", "metadata.namespace");

  errs = check("pod", kPod,
               R"({"metadata": {"labels": {"bad key": "v", "ok": "bad value!", "n": 1}}})");
  EXPECT_EQ(errs.size(), 3u) << dump(errs);
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "metadata.labels[n]");
  bool keyErr = false;
  bool valueErr = false;
  for (const auto& e : errs) {
    if (e.message.rfind("metadata.labels: Invalid value: \"bad key\": name part must consist of",
                        0) == 0)
      keyErr = true;
    if (e.message.rfind("metadata.labels: Invalid value: \"bad value!\": a valid label must be",
                        0) == 0)
      valueErr = true;
  }
  EXPECT_TRUE(keyErr) << dump(errs);
  EXPECT_TRUE(valueErr) << dump(errs);

  errs = check("pod", kPod, R"({"metadata": {"labels": ["a"]}})");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid",
               "metadata.labels: Invalid value: [\"a\"]: must be an object");

  json big = kPod;
  big["metadata"]["annotations"]["example.com/blob"] = std::string(256 * 1024, 'x');
  errs = validateObject(kind("pod"), big);
  EXPECT_ERROR(errs, "FieldValueTooLong",
               "metadata.annotations: Too long: may not be more than 262144 bytes");
  big["metadata"]["annotations"]["example.com/blob"] = std::string(200 * 1024, 'x');
  EXPECT_VALID(validateObject(kind("pod"), big));

  errs = check("pod", kPod, R"({"metadata": {"annotations": {"a/b/c": "x", "n": 1}}})");
  EXPECT_FIELD(errs, "FieldValueInvalid", "metadata.annotations");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "metadata.annotations[n]");

  errs = check("pod", kPod, R"({"metadata": {"finalizers": ["example.com/x", 3, "bad fin"],
                                              "ownerReferences": [{"kind": "ReplicaSet"}]}})");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "metadata.finalizers[1]");
  EXPECT_FIELD(errs, "FieldValueInvalid", "metadata.finalizers[2]");
  EXPECT_FIELD(errs, "FieldValueRequired", "metadata.ownerReferences[0].uid");
  EXPECT_FIELD(errs, "FieldValueRequired", "metadata.ownerReferences[0].name");
}

TEST(ValidatePodTest, Containers) {
  auto errs = check("pod", kPod, R"({"spec": {"containers": []}})");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.containers: Required value");
  errs = check("pod", kPod, R"({"spec": {"containers": "x"}})");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid",
               "spec.containers: Invalid value: \"x\": must be an array");

  json pod = kPod;
  pod["spec"]["containers"][0].erase("image");
  EXPECT_ERROR(validateObject(kind("pod"), pod), "FieldValueRequired",
               "spec.containers[0].image: Required value");
  pod["spec"]["containers"][0]["image"] = "";
  EXPECT_ERROR(validateObject(kind("pod"), pod), "FieldValueRequired",
               "spec.containers[0].image: Required value");
  pod["spec"]["containers"][0]["image"] = " nginx";
  EXPECT_FIELD(validateObject(kind("pod"), pod), "FieldValueInvalid", "spec.containers[0].image");

  pod = kPod;
  pod["spec"]["containers"][0]["name"] = "App_1";
  EXPECT_FIELD(validateObject(kind("pod"), pod), "FieldValueInvalid", "spec.containers[0].name");
  pod["spec"]["containers"][0]["name"] = "init";  // clashes with the init container
  EXPECT_ERROR(validateObject(kind("pod"), pod), "FieldValueDuplicate",
               "spec.initContainers[0].name: Duplicate value: \"init\"");
  pod = kPod;
  pod["spec"]["containers"].push_back(pod["spec"]["containers"][0]);
  EXPECT_ERROR(validateObject(kind("pod"), pod), "FieldValueDuplicate",
               "spec.containers[1].name: Duplicate value: \"app\"");

  pod = kPod;
  pod["spec"]["containers"][0]["command"] = json::parse(R"(["sh", 1])");
  pod["spec"]["containers"][0]["args"] = "--x";
  auto e2 = validateObject(kind("pod"), pod);
  EXPECT_ERROR(e2, "FieldValueTypeInvalid",
               "spec.containers[0].command[1]: Invalid value: 1: must be a string");
  EXPECT_ERROR(e2, "FieldValueTypeInvalid",
               "spec.containers[0].args: Invalid value: \"--x\": must be an array");

  pod = kPod;
  pod["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes";
  EXPECT_ERROR(validateObject(kind("pod"), pod), "FieldValueNotSupported",
               "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported "
               "values: \"Always\", \"IfNotPresent\", \"Never\"");
}

TEST(ValidatePodTest, Env) {
  json pod = kPod;
  json& env = pod["spec"]["containers"][0]["env"];
  env = json::parse(R"([
    {"value": "x"},
    {"name": "A=B", "value": "x"},
    {"name": "V", "value": 5},
    {"name": "NONE", "valueFrom": {}},
    {"name": "TWO", "valueFrom": {"fieldRef": {"fieldPath": "a"}, "configMapKeyRef": {"name": "c", "key": "k"}}},
    {"name": "BOTH", "value": "x", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    {"name": "NOKEY", "valueFrom": {"configMapKeyRef": {"name": "c"}}},
    {"name": "OK", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}
  ])");
  auto errs = validateObject(kind("pod"), pod);
  const std::string p = "spec.containers[0].env";
  EXPECT_ERROR(errs, "FieldValueRequired", p + "[0].name: Required value");
  EXPECT_FIELD(errs, "FieldValueInvalid", p + "[1].name");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid", p + "[2].value: Invalid value: 5: must be a string");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               p + "[3].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, "
                   "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               p + "[4].valueFrom: Invalid value: \"\": may not have more than one field "
                   "specified at a time");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               p + "[5].valueFrom: Invalid value: \"\": may not be specified when `value` is not "
                   "empty");
  EXPECT_ERROR(errs, "FieldValueRequired", p + "[6].valueFrom.configMapKeyRef.key: Required value");
  EXPECT_EQ(errs.size(), 7u) << dump(errs);

  pod = kPod;
  pod["spec"]["containers"][0]["envFrom"] = json::parse(
      R"([{"prefix": "X_"}, {"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}])");
  errs = validateObject(kind("pod"), pod);
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.containers[0].envFrom[0]");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.containers[0].envFrom[1]");
}

TEST(ValidatePodTest, Ports) {
  json pod = kPod;
  pod["spec"]["containers"][0]["ports"] = json::parse(R"([
    {"containerPort": 0}, {"containerPort": 70000}, {"containerPort": "80"},
    {"containerPort": 80, "hostPort": 70000}, {"containerPort": 81, "protocol": "HTTP"},
    {"protocol": "UDP"}, {"containerPort": 82, "name": "web"}, {"containerPort": 83, "name": "web"},
    {"containerPort": 84, "name": "Bad_Name"}
  ])");
  auto errs = validateObject(kind("pod"), pod);
  const std::string p = "spec.containers[0].ports";
  EXPECT_ERROR(errs, "FieldValueInvalid",
               p + "[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive");
  EXPECT_ERROR(
      errs, "FieldValueInvalid",
      p + "[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid",
               p + "[2].containerPort: Invalid value: \"80\": must be an integer");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               p + "[3].hostPort: Invalid value: 70000: must be between 0 and 65535, inclusive");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               p + "[4].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", "
                   "\"TCP\", \"UDP\"");
  EXPECT_ERROR(errs, "FieldValueRequired", p + "[5].containerPort: Required value");
  EXPECT_ERROR(errs, "FieldValueDuplicate", p + "[7].name: Duplicate value: \"web\"");
  EXPECT_FIELD(errs, "FieldValueInvalid", p + "[8].name");
}

TEST(ValidatePodTest, VolumesAndMounts) {
  json pod = kPod;
  pod["spec"]["volumes"] = json::parse(R"([
    {"name": "data", "emptyDir": {}},
    {"name": "data", "hostPath": {"path": "/x"}},
    {"name": "none"},
    {"name": "two", "emptyDir": {}, "hostPath": {"path": "/y"}},
    {"name": "Bad_Vol", "secret": {"secretName": "s"}},
    {"name": "cm", "configMap": {}},
    {"name": "pvc", "persistentVolumeClaim": {"claimName": ""}},
    {"name": "ed", "emptyDir": {"medium": "Disk", "sizeLimit": "1Gx"}}
  ])");
  pod["spec"]["containers"][0]["volumeMounts"] = json::parse(R"([
    {"name": "data", "mountPath": "/data"}, {"name": "missing", "mountPath": "/m"},
    {"name": "data", "mountPath": "/data"}, {"name": "data"},
    {"name": "data", "mountPath": "/s", "subPath": "../etc"}
  ])");
  auto errs = validateObject(kind("pod"), pod);
  EXPECT_ERROR(errs, "FieldValueDuplicate", "spec.volumes[1].name: Duplicate value: \"data\"");
  EXPECT_ERROR(errs, "FieldValueRequired",
               "spec.volumes[2]: Required value: must specify a volume type");
  EXPECT_ERROR(errs, "FieldValueForbidden",
               "spec.volumes[3].hostPath: Forbidden: may not specify more than 1 volume type");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.volumes[4].name");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.volumes[5].configMap.name: Required value");
  EXPECT_ERROR(errs, "FieldValueRequired",
               "spec.volumes[6].persistentVolumeClaim.claimName: Required value");
  EXPECT_FIELD(errs, "FieldValueNotSupported", "spec.volumes[7].emptyDir.medium");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.volumes[7].emptyDir.sizeLimit");
  const std::string m = "spec.containers[0].volumeMounts";
  EXPECT_ERROR(errs, "FieldValueNotFound", m + "[1].name: Not found: \"missing\"");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               m + "[2].mountPath: Invalid value: \"/data\": must be unique");
  EXPECT_ERROR(errs, "FieldValueRequired", m + "[3].mountPath: Required value");
  EXPECT_FIELD(errs, "FieldValueInvalid", m + "[4].subPath");
}

TEST(ValidatePodTest, Resources) {
  json pod = kPod;
  json& res = pod["spec"]["containers"][0]["resources"];
  res = json::parse(R"({"limits": {"cpu": "500m", "memory": "1G", "nvidia.com/gpu": 1},
                        "requests": {"cpu": 0.25, "memory": "1e3", "ephemeral-storage": "2Gi"}})");
  EXPECT_VALID(validateObject(kind("pod"), pod));

  res = json::parse(R"({"limits": {"cpu": "1", "memory": "abc"},
                        "requests": {"cpu": "2", "memory": "-1"}, "claims": []})");
  auto errs = validateObject(kind("pod"), pod);
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.containers[0].resources.limits[memory]: Invalid value: \"abc\": quantities "
               "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or "
               "equal to cpu limit of 1");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be "
               "greater than or equal to 0");
  res = json::parse(R"({"limits": {"cpu": true}})");
  EXPECT_FIELD(validateObject(kind("pod"), pod), "FieldValueTypeInvalid",
               "spec.containers[0].resources.limits[cpu]");
}

TEST(ValidatePodTest, Probes) {
  json pod = kPod;
  json& c = pod["spec"]["containers"][0];
  c["livenessProbe"] = json::parse(R"({"periodSeconds": 5})");
  c["readinessProbe"] = json::parse(R"({"exec": {"command": ["true"]}, "httpGet": {"port": 80}})");
  c["startupProbe"] =
      json::parse(R"({"tcpSocket": {}, "successThreshold": 2, "timeoutSeconds": -1})");
  auto errs = validateObject(kind("pod"), pod);
  EXPECT_ERROR(errs, "FieldValueRequired",
               "spec.containers[0].livenessProbe: Required value: must specify a handler type");
  EXPECT_ERROR(errs, "FieldValueForbidden",
               "spec.containers[0].readinessProbe.httpGet: Forbidden: may not specify more than 1 "
               "handler type");
  EXPECT_ERROR(errs, "FieldValueRequired",
               "spec.containers[0].startupProbe.tcpSocket.port: Required value");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.containers[0].startupProbe.timeoutSeconds");

  pod = kPod;
  pod["spec"]["initContainers"][0]["livenessProbe"] =
      json::parse(R"({"exec": {"command": ["true"]}})");
  EXPECT_FIELD(validateObject(kind("pod"), pod), "FieldValueForbidden",
               "spec.initContainers[0].livenessProbe");
  pod["spec"]["initContainers"][0]["restartPolicy"] = "Always";  // a sidecar may have probes
  EXPECT_VALID(validateObject(kind("pod"), pod));
  pod["spec"]["containers"][0]["restartPolicy"] = "Always";
  EXPECT_FIELD(validateObject(kind("pod"), pod), "FieldValueForbidden",
               "spec.containers[0].restartPolicy");
}

TEST(ValidatePodTest, PolicyFields) {
  auto errs = check("pod", kPod, R"({"spec": {"restartPolicy": "Sometimes", "dnsPolicy": "Bogus",
      "nodeSelector": {"zone": 1}, "nodeName": "Bad Node", "activeDeadlineSeconds": 0,
      "hostNetwork": "yes"}})");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: "
               "\"Always\", \"Never\", \"OnFailure\"");
  EXPECT_FIELD(errs, "FieldValueNotSupported", "spec.dnsPolicy");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.nodeSelector[zone]");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.nodeName");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.activeDeadlineSeconds: Invalid value: 0: must be greater than or equal to 1");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid",
               "spec.hostNetwork: Invalid value: \"yes\": must be a boolean");
}

TEST(ValidatePodTest, Tolerations) {
  json pod = kPod;
  pod["spec"]["tolerations"] = json::parse(R"([
    {"key": "a", "operator": "In"},
    {"key": "b", "operator": "Exists", "value": "x"},
    {"operator": "Equal", "value": "x"},
    {"key": "c", "effect": "NoRun"},
    {"key": "d", "effect": "NoSchedule", "tolerationSeconds": 10},
    {"key": "e", "value": "bad value"},
    {"key": "f", "effect": "NoExecute", "tolerationSeconds": 10}
  ])");
  auto errs = validateObject(kind("pod"), pod);
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.tolerations[0].operator: Unsupported value: \"In\": supported values: "
               "\"Equal\", \"Exists\"");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.tolerations[1].operator: Invalid value: \"x\": value must be empty when "
               "`operator` is 'Exists'");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.tolerations[2].operator: Invalid value: \"Equal\": operator must be Exists "
               "when `key` is empty, which means \"match all values and all keys\"");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.tolerations[3].effect: Unsupported value: \"NoRun\": supported values: "
               "\"NoExecute\", \"NoSchedule\", \"PreferNoSchedule\"");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.tolerations[4].effect: Invalid value: \"NoSchedule\": effect must be "
               "'NoExecute' when `tolerationSeconds` is set");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.tolerations[5].value");
  EXPECT_EQ(errs.size(), 6u) << dump(errs);
}

const json kDeployment = json::parse(R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "default"},
  "spec": {
    "replicas": 3,
    "selector": {"matchLabels": {"app": "web"},
                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]},
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
    "template": {
      "metadata": {"labels": {"app": "web", "tier": "fe", "extra": "x"}},
      "spec": {"containers": [{"name": "app", "image": "nginx"}]}
    }
  }
})");

TEST(ValidateDeploymentTest, Valid) {
  EXPECT_VALID(check("deploy", kDeployment));
  json rs = kDeployment;
  rs["kind"] = "ReplicaSet";
  rs["spec"].erase("strategy");
  EXPECT_VALID(validateObject(kind("rs"), rs));
}

TEST(ValidateDeploymentTest, Replicas) {
  EXPECT_ERROR(check("deploy", kDeployment, R"({"spec": {"replicas": "three"}})"),
               "FieldValueTypeInvalid",
               "spec.replicas: Invalid value: \"three\": must be an integer");
  EXPECT_ERROR(check("deploy", kDeployment, R"({"spec": {"replicas": -1}})"), "FieldValueInvalid",
               "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
  EXPECT_ERROR(check("deploy", kDeployment, R"({"spec": {"replicas": 1.5}})"),
               "FieldValueTypeInvalid", "spec.replicas: Invalid value: 1.5: must be an integer");
  EXPECT_FIELD(check("deploy", kDeployment, R"({"spec": {"replicas": 3000000000}})"),
               "FieldValueInvalid", "spec.replicas");
  EXPECT_VALID(check("deploy", kDeployment, R"({"spec": {"replicas": 0}})"));
}

TEST(ValidateDeploymentTest, Selector) {
  auto errs = check("deploy", kDeployment, R"({"spec": {"selector": null}})");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.selector: Required value");
  errs = check("deploy", kDeployment,
               R"({"spec": {"selector": {"matchLabels": null, "matchExpressions": null}}})");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.selector: Invalid value: {}: empty selector is invalid for deployment");
  errs = check(
      "deploy", kDeployment,
      R"({"spec": {"selector": {"matchExpressions": [{"key": "tier", "operator": "Foo"}]}}})");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.selector.matchExpressions[0].operator: Unsupported value: \"Foo\": supported "
               "values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\"");
  errs = check("deploy", kDeployment,
               R"({"spec": {"template": {"metadata": {"labels": {"app": "db"}}}}})");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.template.metadata.labels: Invalid value: "
               "{\"app\":\"db\",\"extra\":\"x\",\"tier\":\"fe\"}: "
               "`selector` does not match template `labels`");
  errs = check("deploy", kDeployment, R"({"spec": {"template": {"metadata": null}}})");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.template.metadata.labels: Invalid value: {}: `selector` does not match "
               "template `labels`");
}

TEST(ValidateDeploymentTest, Template) {
  auto errs = check("deploy", kDeployment, R"({"spec": {"template": null}})");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.template: Required value");
  errs = check("deploy", kDeployment,
               R"({"spec": {"template": {"spec": {"containers": [{"name": "app"}],
      "restartPolicy": "Never", "activeDeadlineSeconds": 5}}}})");
  EXPECT_ERROR(errs, "FieldValueRequired",
               "spec.template.spec.containers[0].image: Required value");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: "
               "\"Always\"");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.template.spec.activeDeadlineSeconds");
  errs = check("deploy", kDeployment, R"({"spec": {"template": {"spec": null}}})");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.template.spec.containers: Required value");
  errs = check("deploy", kDeployment,
               R"({"spec": {"template": {"metadata": {"labels": {"bad key": "x"}}}}})");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.template.metadata.labels");
  EXPECT_ERROR(validateObject(kind("deploy"), json::parse(R"({"metadata": {"name": "x"}})")),
               "FieldValueRequired", "spec: Required value");
}

TEST(ValidateDeploymentTest, Strategy) {
  auto errs = check("deploy", kDeployment, R"({"spec": {"strategy": {"type": "BlueGreen"}}})");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: "
               "\"Recreate\", \"RollingUpdate\"");
  errs = check("deploy", kDeployment, R"({"spec": {"strategy": {"type": "Recreate"}}})");
  EXPECT_ERROR(errs, "FieldValueForbidden",
               "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` "
               "is 'Recreate'");
  errs = check(
      "deploy", kDeployment,
      R"({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}}})");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 "
               "when `maxSurge` is 0");
  errs = check(
      "deploy", kDeployment,
      R"({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "abc", "maxUnavailable": "150%"}}}})");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.strategy.rollingUpdate.maxSurge");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be "
               "greater than 100%");
  errs = check(
      "deploy", kDeployment,
      R"({"spec": {"strategy": {"rollingUpdate": {"maxSurge": -1, "maxUnavailable": true}}}})");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.strategy.rollingUpdate.maxSurge");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.strategy.rollingUpdate.maxUnavailable");
  EXPECT_VALID(check(
      "deploy", kDeployment,
      R"({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 1}}}})"));
  errs = check("deploy", kDeployment,
               R"({"spec": {"minReadySeconds": 10, "progressDeadlineSeconds": 5}})");
  EXPECT_ERROR(
      errs, "FieldValueInvalid",
      "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds");
}

TEST(ValidateConfigTest, ConfigMap) {
  json cm = json::parse(R"({"metadata": {"name": "cfg", "namespace": "default"},
      "data": {"app.conf": "x=1", "KEY_NAME": ""}, "binaryData": {"blob.bin": "AAEC"}})");
  EXPECT_VALID(validateObject(kind("cm"), cm));
  cm = json::parse(R"({"metadata": {"name": "cfg"},
      "data": {"bad key": "x", "n": 1, "dup": "a"}, "binaryData": {"dup": "AAEC", "bin": "not base64!"},
      "immutable": "yes"})");
  auto errs = validateObject(kind("cm"), cm);
  EXPECT_FIELD(errs, "FieldValueInvalid", "data[bad key]");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid", "data[n]: Invalid value: 1: must be a string");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "binaryData: Invalid value: \"dup\": duplicate of key present in data");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "binaryData[bin]: Invalid value: \"not base64!\": must be a base64-encoded string");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "immutable");
  EXPECT_EQ(errs.size(), 5u) << dump(errs);

  json big = json::parse(R"({"metadata": {"name": "big"}})");
  big["data"]["a"] = std::string(1024 * 1024 + 1, 'x');
  EXPECT_ERROR(validateObject(kind("cm"), big), "FieldValueTooLong",
               "data: Too long: may not be more than 1048576 bytes");
}

TEST(ValidateConfigTest, Secret) {
  json s = json::parse(R"({"metadata": {"name": "s"}, "type": "Opaque",
      "data": {"password": "cGFzcw==", "multi": "YWJj\nZGVm"}, "stringData": {"user": "admin"}})");
  EXPECT_VALID(validateObject(kind("secret"), s));
  s = json::parse(R"({"metadata": {"name": "s"}, "type": 3, "data": {"p": "abc", "q": "a===",
                      "r": 5}, "stringData": {"u": 1}})");
  auto errs = validateObject(kind("secret"), s);
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "type");
  EXPECT_FIELD(errs, "FieldValueInvalid", "data[p]");
  EXPECT_FIELD(errs, "FieldValueInvalid", "data[q]");
  EXPECT_ERROR(errs, "FieldValueTypeInvalid",
               "data[r]: Invalid value: 5: must be a base64-encoded string");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "stringData[u]");

  json tls = json::parse(
      R"({"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}})");
  EXPECT_ERROR(validateObject(kind("secret"), tls), "FieldValueRequired",
               "data[tls.key]: Required value");
  tls["stringData"]["tls.key"] = "k";
  EXPECT_VALID(validateObject(kind("secret"), tls));
  json docker =
      json::parse(R"({"metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson"})");
  EXPECT_FIELD(validateObject(kind("secret"), docker), "FieldValueRequired",
               "data[.dockerconfigjson]");
}

TEST(ValidateOtherKindsTest, Event) {
  json ev = json::parse(R"({"metadata": {"name": "web.17a", "namespace": "default"},
      "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
      "reason": "Scheduled", "message": "ok", "type": "Normal", "count": 1,
      "source": {"component": "scheduler"}})");
  EXPECT_VALID(validateObject(kind("event"), ev));
  ev["involvedObject"] = json::parse(R"({"namespace": "other"})");
  ev["count"] = "x";
  auto errs = validateObject(kind("event"), ev);
  EXPECT_ERROR(errs, "FieldValueRequired", "involvedObject.kind: Required value");
  EXPECT_ERROR(errs, "FieldValueRequired", "involvedObject.name: Required value");
  EXPECT_ERROR(
      errs, "FieldValueInvalid",
      "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "count");
  ev.erase("involvedObject");
  EXPECT_ERROR(validateObject(kind("event"), ev), "FieldValueRequired",
               "involvedObject: Required value");
}

TEST(ValidateOtherKindsTest, NodeAndNamespace) {
  json node = json::parse(
      R"({"metadata": {"name": "edge-1", "labels": {"node-role.kubernetes.io/edge": ""}},
      "spec": {"unschedulable": true, "taints": [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]}})");
  EXPECT_VALID(validateObject(kind("node"), node));
  node["spec"]["taints"] =
      json::parse(R"([{"key": "a", "effect": "NoRun"}, {"effect": "NoSchedule"},
      {"key": "b"}, {"key": "c", "effect": "NoExecute"}, {"key": "c", "effect": "NoExecute"}])");
  node["spec"]["unschedulable"] = "true";
  auto errs = validateObject(kind("node"), node);
  EXPECT_FIELD(errs, "FieldValueNotSupported", "spec.taints[0].effect");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.taints[1].key: Required value");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.taints[2].effect: Required value");
  EXPECT_FIELD(errs, "FieldValueDuplicate", "spec.taints[4]");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.unschedulable");
  EXPECT_EQ(errs.size(), 5u) << dump(errs);

  EXPECT_VALID(validateObject(kind("ns"), json::parse(R"({"metadata": {"name": "kube-system"}})")));
}

TEST(ValidateOtherKindsTest, DeviceModel) {
  json dm = json::parse(R"({"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
      "metadata": {"name": "thermometer", "namespace": "default"},
      "spec": {"protocol": "modbus", "properties": [
        {"name": "temperature", "type": "INT", "accessMode": "ReadOnly", "unit": "C"},
        {"name": "enabled", "type": "BOOLEAN", "accessMode": "ReadWrite"}]}})");
  EXPECT_VALID(validateObject(kind("devicemodel"), dm));
  dm["spec"]["properties"] = json::parse(R"([{"type": "INTEGER", "accessMode": "WriteOnly"},
      {"name": "a"}, {"name": "a"}, 3])");
  auto errs = validateObject(kind("devicemodel"), dm);
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.properties[0].name: Required value");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.properties[0].type: Unsupported value: \"INTEGER\": supported values: "
               "\"BOOLEAN\", \"BYTES\", \"DOUBLE\", \"FLOAT\", \"INT\", \"STREAM\", \"STRING\"");
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.properties[0].accessMode: Unsupported value: \"WriteOnly\": supported values: "
               "\"ReadOnly\", \"ReadWrite\"");
  EXPECT_ERROR(errs, "FieldValueDuplicate", "spec.properties[2].name: Duplicate value: \"a\"");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.properties[3]");
}

TEST(ValidateOtherKindsTest, Device) {
  json dev = json::parse(R"({"metadata": {"name": "thermo-1", "namespace": "default"},
      "spec": {"deviceModelRef": {"name": "thermometer"}, "nodeName": "edge-1",
               "protocol": {"protocolName": "modbus", "configData": {"slaveID": 1}},
               "properties": [{"name": "temperature", "reportCycle": 10000, "reportToCloud": true,
                               "desired": {"value": "20"},
                               "visitors": {"protocolName": "modbus", "configData": {"register": "HoldingRegister"}}}]}})");
  EXPECT_VALID(validateObject(kind("device"), dev));
  dev["spec"]["deviceModelRef"] = json::object();
  dev["spec"]["nodeName"] = 3;
  dev["spec"]["properties"] = json::parse(R"([{"reportCycle": "10s"}])");
  auto errs = validateObject(kind("device"), dev);
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.deviceModelRef.name: Required value");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.nodeName");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.properties[0].name: Required value");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.properties[0].reportCycle");
  dev["spec"].erase("deviceModelRef");
  EXPECT_FIELD(validateObject(kind("device"), dev), "FieldValueRequired",
               "spec.deviceModelRef.name");
  EXPECT_FIELD(validateObject(kind("device"), json::parse(R"({"metadata": {"name": "d"}})")),
               "FieldValueRequired", "spec.deviceModelRef.name");
}

TEST(ValidateOtherKindsTest, RulesAndModels) {
  json re = json::parse(
      R"({"metadata": {"name": "my-rest"}, "spec": {"ruleEndpointType": "rest", "properties": {}}})");
  EXPECT_VALID(validateObject(kind("ruleendpoint"), re));
  re["spec"]["ruleEndpointType"] = "mqtt";
  EXPECT_ERROR(validateObject(kind("ruleendpoint"), re), "FieldValueNotSupported",
               "spec.ruleEndpointType: Unsupported value: \"mqtt\": supported values: "
               "\"eventbus\", \"rest\", \"servicebus\"");
  re["spec"]["ruleEndpointType"] = "servicebus";
  EXPECT_FIELD(validateObject(kind("ruleendpoint"), re), "FieldValueRequired",
               "spec.properties[service_port]");
  re["spec"]["properties"]["service_port"] = "70000";
  EXPECT_FIELD(validateObject(kind("ruleendpoint"), re), "FieldValueInvalid",
               "spec.properties[service_port]");
  re["spec"]["properties"]["service_port"] = "8080";
  EXPECT_VALID(validateObject(kind("ruleendpoint"), re));
  re["spec"].erase("ruleEndpointType");
  EXPECT_FIELD(validateObject(kind("ruleendpoint"), re), "FieldValueRequired",
               "spec.ruleEndpointType");

  json rule = json::parse(
      R"({"metadata": {"name": "r"}, "spec": {"source": "my-rest", "target": "my-eventbus",
      "sourceResource": {"path": "/a"}, "targetResource": {"topic": "t"}}})");
  EXPECT_VALID(validateObject(kind("rule"), rule));
  rule["spec"] = json::parse(R"({"source": "", "sourceResource": {"path": 1}})");
  auto errs = validateObject(kind("rule"), rule);
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.source: Required value");
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.target: Required value");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.sourceResource[path]");

  json model = json::parse(
      R"({"metadata": {"name": "m"}, "spec": {"url": "s3://models/a.pb", "format": "pb"}})");
  EXPECT_VALID(validateObject(kind("models.sedna.io"), model));
  model["spec"] = json::parse(R"({"format": 1})");
  errs = validateObject(kind("models.sedna.io"), model);
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.url: Required value");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.format");
}

TEST(ValidateOtherKindsTest, NodeUpgradeJobAndEdgecoreRelease) {
  json job = json::parse(R"({"metadata": {"name": "j"}, "spec": {"version": "1.2.0",
      "nodeNames": ["edge-1"], "concurrency": 2, "timeoutSeconds": 60}})");
  EXPECT_VALID(validateObject(kind("nodeupgradejob"), job));
  job["spec"] = json::parse(R"({"labelSelector": {"matchLabels": {"a": "b"}}})");
  auto errs = validateObject(kind("nodeupgradejob"), job);
  EXPECT_ERROR(errs, "FieldValueRequired", "spec.version: Required value");
  EXPECT_EQ(errs.size(), 1u) << dump(errs);
  // One way to choose nodes: both, or neither, is refused naming spec.
  job["spec"] = json::parse(R"({"version": "1.2.0", "nodeNames": ["a"],
      "labelSelector": {"matchLabels": {"a": "b"}}})");
  EXPECT_ERROR(validateObject(kind("nodeupgradejob"), job), "FieldValueInvalid",
               "spec: Invalid value: {}: set nodeNames or labelSelector, not both");
  job["spec"] = json::parse(R"({"version": "1.2.0"})");
  EXPECT_ERROR(validateObject(kind("nodeupgradejob"), job), "FieldValueInvalid",
               "spec: Invalid value: {}: one of nodeNames and labelSelector is required");
  job["spec"] = json::parse(R"({"version": "V 2", "nodeNames": ["a", "a", 3],
      "concurrency": -1, "timeoutSeconds": "x"})");
  errs = validateObject(kind("nodeupgradejob"), job);
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.version");
  EXPECT_FIELD(errs, "FieldValueDuplicate", "spec.nodeNames[1]");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.nodeNames[2]");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.concurrency");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.timeoutSeconds");
  job["spec"] = json::parse(R"({"version": "1.2.0", "nodeNames": ["a"],
      "timeoutSeconds": 604801})");
  EXPECT_ERROR(
      validateObject(kind("nodeupgradejob"), job), "FieldValueInvalid",
      "spec.timeoutSeconds: Invalid value: 604801: must be between 0 and 604800, inclusive");
  job["spec"] = json::parse(R"({"version": "1.2.0",
      "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}})");
  EXPECT_FIELD(validateObject(kind("nodeupgradejob"), job), "FieldValueNotSupported",
               "spec.labelSelector.matchExpressions[0].operator");
  // spec.image with the annotation naming its pull Secret; failureTolerate a ratio.
  job = json::parse(R"({"metadata": {"name": "j", "annotations":
      {"upgrade.edgeplane.io/image-pull-secret": "kube-system/regcred"}},
      "spec": {"version": "1.2.0", "nodeNames": ["a"], "image": "r.example/edgecore",
      "failureTolerate": "0.25"}})");
  EXPECT_VALID(validateObject(kind("nodeupgradejob"), job));
  job["metadata"]["annotations"]["upgrade.edgeplane.io/image-pull-secret"] = "regcred";
  EXPECT_VALID(validateObject(kind("nodeupgradejob"), job));
  job["metadata"]["annotations"]["upgrade.edgeplane.io/image-pull-secret"] = "Bad/Name/x";
  job["spec"]["failureTolerate"] = "1.5";
  errs = validateObject(kind("nodeupgradejob"), job);
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "metadata.annotations[upgrade.edgeplane.io/image-pull-secret]: Invalid value: "
               "\"Bad/Name/x\": must be NAMESPACE/NAME or NAME of a Secret");
  EXPECT_ERROR(errs, "FieldValueInvalid",
               "spec.failureTolerate: Invalid value: \"1.5\": must be a decimal number from 0 "
               "to 1");
  job["spec"]["checkItems"] = json::array({"cpu", "gpu", 1});
  errs = validateObject(kind("nodeupgradejob"), job);
  EXPECT_ERROR(errs, "FieldValueNotSupported",
               "spec.checkItems[1]: Unsupported value: \"gpu\": supported values: \"cpu\", "
               "\"mem\", \"disk\"");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.checkItems[2]");
  job["spec"].erase("checkItems");
  job["spec"]["failureTolerate"] = "ten percent";
  EXPECT_FIELD(validateObject(kind("nodeupgradejob"), job), "FieldValueInvalid",
               "spec.failureTolerate");

  const std::string digest = "sha256:" + std::string(64, 'a');
  json rel = {{"metadata", {{"name", "1.2.0"}}},
              {"spec",
               {{"version", "1.2.0"},
                {"binaries", {{{"architecture", "amd64"}, {"digest", digest}, {"size", 10}}}}}}};
  EXPECT_VALID(validateObject(kind("edgecorerelease"), rel));
  rel["spec"]["version"] = "1.3.0";
  rel["spec"]["binaries"].push_back({{"architecture", "amd64"}, {"digest", "md5:x"}});
  rel["spec"]["binaries"].push_back("x");
  errs = validateObject(kind("edgecorerelease"), rel);
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.version");
  EXPECT_FIELD(errs, "FieldValueDuplicate", "spec.binaries[1].architecture");
  EXPECT_FIELD(errs, "FieldValueInvalid", "spec.binaries[1].digest");
  EXPECT_FIELD(errs, "FieldValueTypeInvalid", "spec.binaries[2]");
}

// ---- updates ----

TEST(ValidateUpdateTest, UpgradeJobSpecsAndReleaseBinariesAreImmutable) {
  json job = json::parse(R"({"spec": {"version": "1.2.0", "nodeNames": ["a"]}})");
  json edited = job;
  edited["spec"]["nodeNames"] = {"a", "b"};
  EXPECT_ERROR(validateUpdate(kind("nodeupgradejob"), job, edited), "FieldValueInvalid",
               "spec: Invalid value: \"<spec>\": field is immutable: delete the job and create "
               "another");
  json withStatus = job;
  withStatus["status"] = {{"state", "InProgress"}};
  EXPECT_VALID(validateUpdate(kind("nodeupgradejob"), job, withStatus));

  const std::string a = "sha256:" + std::string(64, 'a');
  const std::string b = "sha256:" + std::string(64, 'b');
  json rel = {
      {"spec", {{"version", "1"}, {"binaries", {{{"architecture", "amd64"}, {"digest", a}}}}}}};
  json added = rel;
  added["spec"]["binaries"].push_back({{"architecture", "arm64"}, {"digest", b}});
  EXPECT_VALID(validateUpdate(kind("edgecorerelease"), rel, added));
  json replaced = rel;
  replaced["spec"]["binaries"][0]["digest"] = b;
  EXPECT_FIELD(validateUpdate(kind("edgecorerelease"), rel, replaced), "FieldValueInvalid",
               "spec.binaries[0].digest");
}

TEST(ValidateUpdateTest, PodMutableFields) {
  json updated = kPod;
  updated["metadata"]["labels"]["new"] = "x";
  updated["spec"]["containers"][0]["image"] = "nginx:1.26";
  updated["spec"]["initContainers"][0]["image"] = "busybox:2";
  updated["spec"]["activeDeadlineSeconds"] = 600;
  updated["spec"]["tolerations"].push_back(json::parse(R"({"key": "k", "operator": "Exists"})"));
  updated["spec"]["nodeName"] = "edge-1";  // binding
  EXPECT_VALID(validateUpdate(kind("pod"), kPod, updated));

  json lower = updated;
  lower["spec"]["activeDeadlineSeconds"] = 300;
  EXPECT_VALID(validateUpdate(kind("pod"), updated, lower));
  EXPECT_ERROR(validateUpdate(kind("pod"), lower, updated), "FieldValueInvalid",
               "spec.activeDeadlineSeconds: Invalid value: 600: must be less than or equal to "
               "previous value");
  json unset = lower;
  unset["spec"].erase("activeDeadlineSeconds");
  EXPECT_FIELD(validateUpdate(kind("pod"), lower, unset), "FieldValueInvalid",
               "spec.activeDeadlineSeconds");
}

TEST(ValidateUpdateTest, PodImmutableFields) {
  json updated = kPod;
  updated["spec"]["restartPolicy"] = "Never";
  updated["spec"]["containers"][0]["args"] = json::array();
  auto errs = validateUpdate(kind("pod"), kPod, updated);
  ASSERT_EQ(errs.size(), 1u) << dump(errs);
  EXPECT_EQ(errs[0].reason, "FieldValueForbidden");
  EXPECT_EQ(errs[0].field, "spec");
  EXPECT_EQ(errs[0].message.rfind("spec: Forbidden: pod updates may not change fields other than "
                                  "`spec.containers[*].image`",
                                  0),
            0u);
  EXPECT_NE(errs[0].message.find("changed: spec.containers, spec.restartPolicy"), std::string::npos)
      << errs[0].message;

  json bound = kPod;
  bound["spec"]["nodeName"] = "edge-1";
  json moved = bound;
  moved["spec"]["nodeName"] = "edge-2";
  EXPECT_FIELD(validateUpdate(kind("pod"), bound, moved), "FieldValueForbidden", "spec");
  json unbound = bound;
  unbound["spec"].erase("nodeName");
  EXPECT_FIELD(validateUpdate(kind("pod"), bound, unbound), "FieldValueForbidden", "spec");

  json removedTol = kPod;
  removedTol["spec"]["tolerations"].erase(0);
  EXPECT_ERROR(validateUpdate(kind("pod"), kPod, removedTol), "FieldValueForbidden",
               "spec.tolerations: Forbidden: existing toleration can not be modified except its "
               "tolerationSeconds");

  json added = kPod;
  added["spec"]["containers"].push_back(json::parse(R"({"name": "side", "image": "envoy"})"));
  EXPECT_FIELD(validateUpdate(kind("pod"), kPod, added), "FieldValueForbidden", "spec");

  // Explicit nulls equal absent fields.
  json nulls = kPod;
  nulls["spec"]["hostNetwork"] = nullptr;
  EXPECT_VALID(validateUpdate(kind("pod"), kPod, nulls));
  // Only update rules are checked: an image change to "" is an allowed mutation here and is
  // caught by validateObject instead.
  json broken = kPod;
  broken["spec"]["containers"][0]["image"] = "";
  EXPECT_VALID(validateUpdate(kind("pod"), kPod, broken));
  EXPECT_ERROR(validateObject(kind("pod"), broken), "FieldValueRequired",
               "spec.containers[0].image: Required value");
  EXPECT_VALID(validateUpdate(kind("pod"), kPod, kPod));
}

TEST(ValidateUpdateTest, WorkloadSelectorImmutable) {
  json scaled = kDeployment;
  scaled["spec"]["replicas"] = 5;
  scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2";
  EXPECT_VALID(validateUpdate(kind("deploy"), kDeployment, scaled));
  json changed = kDeployment;
  changed["spec"]["selector"]["matchLabels"]["extra"] = "x";
  auto errs = validateUpdate(kind("deploy"), kDeployment, changed);
  ASSERT_EQ(errs.size(), 1u) << dump(errs);
  EXPECT_EQ(errs[0].field, "spec.selector");
  EXPECT_NE(errs[0].message.find("field is immutable"), std::string::npos);
  json rs = kDeployment;
  rs["spec"].erase("strategy");
  json rs2 = rs;
  rs2["spec"]["selector"].erase("matchExpressions");
  EXPECT_FIELD(validateUpdate(kind("rs"), rs, rs2), "FieldValueInvalid", "spec.selector");
}

TEST(ValidateUpdateTest, ImmutableConfigMapAndSecret) {
  json cm = json::parse(R"({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true})");
  json cm2 = cm;
  cm2["metadata"]["labels"]["x"] = "y";
  EXPECT_VALID(validateUpdate(kind("cm"), cm, cm2));
  cm2["data"]["a"] = "2";
  EXPECT_ERROR(validateUpdate(kind("cm"), cm, cm2), "FieldValueForbidden",
               "data: Forbidden: field is immutable when `immutable` is set");
  json cm3 = cm;
  cm3["immutable"] = false;
  EXPECT_ERROR(validateUpdate(kind("cm"), cm, cm3), "FieldValueForbidden",
               "immutable: Forbidden: field is immutable when `immutable` is set");
  json mutableCm = cm;
  mutableCm.erase("immutable");
  json changedCm = mutableCm;
  changedCm["data"]["a"] = "2";
  EXPECT_VALID(validateUpdate(kind("cm"), mutableCm, changedCm));

  json s = json::parse(
      R"({"metadata": {"name": "s"}, "data": {"user": "YWRtaW4="}, "immutable": true})");
  json same = s;
  same.erase("data");
  same["stringData"] = {{"user", "admin"}};  // folds into the same data
  EXPECT_VALID(validateUpdate(kind("secret"), s, same));
  same["stringData"]["user"] = "root";
  EXPECT_FIELD(validateUpdate(kind("secret"), s, same), "FieldValueForbidden", "data");

  json typed = json::parse(R"({"metadata": {"name": "s"}, "data": {"a": "YQ=="}})");
  json retyped = typed;
  retyped["type"] = "example.com/custom";
  EXPECT_ERROR(validateUpdate(kind("secret"), typed, retyped), "FieldValueInvalid",
               "type: Invalid value: \"example.com/custom\": field is immutable");
  json opaque = typed;
  opaque["type"] = "Opaque";  // the default, so unchanged
  EXPECT_VALID(validateUpdate(kind("secret"), typed, opaque));
}

TEST(ValidateTest, NeverThrowsOnOddInput) {
  for (const char* doc :
       {"null", "3", R"("x")", R"({"metadata": 5, "spec": 5})",
        R"({"metadata": {"name": "x"}, "spec": {"containers": [null, 1, []]}})",
        R"({"metadata": {"name": "\u00ff\u0000"}, "data": {"\u0000": "\u0001"}})"}) {
    json obj = json::parse(doc);
    for (const auto& k : allKinds()) {
      EXPECT_NO_THROW(validateObject(k, obj)) << doc;
      EXPECT_NO_THROW(validateUpdate(k, obj, obj)) << doc;
    }
  }
}

TEST(ValidateTest, DeeplyNestedObjectsAreRefusedNotRecursed) {
  std::string deep = "{\"metadata\": {\"name\": \"x\", \"labels\": ";
  for (int i = 0; i < 100000; ++i) deep += '[';
  for (int i = 0; i < 100000; ++i) deep += ']';
  deep += "}}";
  json obj = json::parse(deep);
  auto errs = validateObject(kind("pod"), obj);
  ASSERT_EQ(errs.size(), 1u) << dump(errs);
  EXPECT_EQ(errs[0].message, "Invalid value: \"<object>\": object is nested too deeply");
  EXPECT_EQ(validateUpdate(kind("pod"), obj, obj).size(), 1u);
}

TEST(ValidationTest, EndpointsAndEndpointSlicesNameTheField) {
  json ep = json::parse(R"({"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"web"},
      "subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80,"protocol":"TCP"}]}]})");
  EXPECT_TRUE(check("endpoints", ep).empty()) << dump(check("endpoints", ep));
  auto bad = check("endpoints", ep,
                   R"({"subsets":[{"addresses":[{"ip":"127.0.0.1"}],
                       "ports":[{"port":0,"protocol":"HTTP"},{"port":81,"protocol":"TCP"}]}]})");
  EXPECT_ERROR(bad, "FieldValueInvalid",
               "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the "
               "loopback range (127.0.0.0/8, ::1/128)");
  EXPECT_TRUE(hasField(bad, "FieldValueRequired", "subsets[0].ports[0].name")) << dump(bad);
  EXPECT_TRUE(hasField(bad, "FieldValueInvalid", "subsets[0].ports[0].port")) << dump(bad);
  EXPECT_TRUE(hasField(bad, "FieldValueNotSupported", "subsets[0].ports[0].protocol")) << dump(bad);
  EXPECT_TRUE(hasField(check("endpoints", ep, R"({"subsets":[{"addresses":null}]})"),
                       "FieldValueRequired", "subsets[0].addresses"));

  json slice = json::parse(R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
      "metadata":{"name":"web-abc"},"addressType":"IPv4",
      "endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true},"nodeName":"edge-1"}],
      "ports":[{"name":"http","port":8080,"protocol":"TCP"}]})");
  EXPECT_TRUE(check("endpointslices", slice).empty()) << dump(check("endpointslices", slice));
  auto badSlice = check("endpointslices", slice,
                        R"({"addressType":"IPv7","endpoints":[{"addresses":[],
                            "conditions":{"ready":"yes"}}]})");
  EXPECT_TRUE(hasField(badSlice, "FieldValueNotSupported", "addressType")) << dump(badSlice);
  EXPECT_TRUE(hasField(badSlice, "FieldValueRequired", "endpoints[0].addresses")) << dump(badSlice);
  EXPECT_TRUE(hasField(badSlice, "FieldValueTypeInvalid", "endpoints[0].conditions.ready"))
      << dump(badSlice);
  auto badIp = check("endpointslices", slice, R"({"endpoints":[{"addresses":["10.0.0"]}]})");
  EXPECT_TRUE(hasField(badIp, "FieldValueInvalid", "endpoints[0].addresses[0]")) << dump(badIp);
  // addressType never changes.
  json moved = slice;
  moved["addressType"] = "IPv6";
  EXPECT_TRUE(hasField(validateUpdate(kind("endpointslices"), slice, moved), "FieldValueInvalid",
                       "addressType"));
}

// coordination.k8s.io/v1 Lease, as Kubernetes' ValidateLeaseSpec.
TEST(ValidationTest, LeasesNameTheField) {
  json lease = json::parse(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
      "metadata":{"name":"edge-1","namespace":"kube-node-lease"},
      "spec":{"holderIdentity":"edge-1","leaseDurationSeconds":40,
              "renewTime":"2026-12-06T10:00:00.123456Z","leaseTransitions":0}})");
  EXPECT_VALID(check("leases", lease));
  auto bad = check("leases", lease,
                   R"({"spec":{"leaseDurationSeconds":0,"leaseTransitions":-1,
                       "renewTime":"yesterday","holderIdentity":7,"preferredHolder":"x"}})");
  EXPECT_ERROR(bad, "FieldValueInvalid",
               "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0");
  EXPECT_ERROR(bad, "FieldValueInvalid",
               "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0");
  EXPECT_FIELD(bad, "FieldValueInvalid", "spec.renewTime");
  EXPECT_FIELD(bad, "FieldValueTypeInvalid", "spec.holderIdentity");
  EXPECT_FIELD(bad, "FieldValueForbidden", "spec.preferredHolder");
  EXPECT_VALID(check("leases", lease,
                     R"({"spec":{"strategy":"OldestEmulationVersion","preferredHolder":"x"}})"));
  EXPECT_FIELD(check("leases", lease, R"({"spec":{"strategy":"Newest"}})"),
               "FieldValueNotSupported", "spec.strategy");
  EXPECT_VALID(check("leases", lease, R"({"spec":{"strategy":"example.com/newest"}})"));
}

TEST(ValidationTest, ServiceTypesAndIpFamilies) {
  json svc = json::parse(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
      "spec":{"selector":{"app":"web"},"ports":[{"port":80}]}})");
  EXPECT_TRUE(check("services", svc).empty()) << dump(check("services", svc));
  auto en = check("services", svc, R"({"spec":{"type":"ExternalName","clusterIP":"10.96.0.9"}})");
  EXPECT_TRUE(hasField(en, "FieldValueRequired", "spec.externalName")) << dump(en);
  EXPECT_TRUE(hasField(en, "FieldValueForbidden", "spec.clusterIP")) << dump(en);
  auto v6 = check("services", svc, R"({"spec":{"ipFamilies":["IPv6"],
                                        "ipFamilyPolicy":"RequireDualStack"}})");
  EXPECT_TRUE(hasField(v6, "FieldValueInvalid", "spec.ipFamilies[0]")) << dump(v6);
  EXPECT_TRUE(hasField(v6, "FieldValueInvalid", "spec.ipFamilyPolicy")) << dump(v6);
  auto dup = check("services", svc, R"({"spec":{"ports":[{"name":"a","port":80},
                                         {"name":"a","port":80}]}})");
  EXPECT_TRUE(hasField(dup, "FieldValueDuplicate", "spec.ports[1].name")) << dump(dup);
  EXPECT_TRUE(hasField(dup, "FieldValueDuplicate", "spec.ports[1]")) << dump(dup);
  auto policy = check("services", svc, R"({"spec":{"externalTrafficPolicy":"Local"}})");
  EXPECT_TRUE(hasField(policy, "FieldValueInvalid", "spec.externalTrafficPolicy")) << dump(policy);
}

}  // namespace
}  // namespace ep::api
