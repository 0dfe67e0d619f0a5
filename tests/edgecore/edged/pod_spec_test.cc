#include "edgecore/edged/pod_spec.h"

#include <gtest/gtest.h>

#include "common/api/base64.h"

namespace ep::edged {
namespace {

Json pod() {
  return Json{{"metadata",
               {{"name", "web"},
                {"namespace", "prod"},
                {"uid", "u-1"},
                {"labels", {{"app", "web"}}},
                {"annotations", {{"team", "edge"}}}}},
              {"spec", {{"containers", Json::array()}}}};
}

ObjectLookup lookupFrom(std::map<std::string, Json> objects) {
  return [objects](const std::string& r, const std::string& ns, const std::string& n) {
    auto it = objects.find(r + "/" + ns + "/" + n);
    return it == objects.end() ? std::optional<Json>() : std::optional<Json>(it->second);
  };
}

TEST(PodSpec, Defaults) {
  Json p = pod();
  EXPECT_EQ(restartPolicyOf(p), "Always");
  EXPECT_EQ(terminationGraceSeconds(p), 30);
  p["spec"]["terminationGracePeriodSeconds"] = -5;
  EXPECT_EQ(terminationGraceSeconds(p), 0);
  EXPECT_TRUE(shouldRestart("Always", 0));
  EXPECT_TRUE(shouldRestart("OnFailure", 1));
  EXPECT_FALSE(shouldRestart("OnFailure", 0));
  EXPECT_FALSE(shouldRestart("Never", 1));
}

TEST(PodSpec, PullPolicyDefaultsLikeKubernetes) {
  EXPECT_EQ(imagePullPolicyOf({{"image", "busybox"}}), "Always");
  EXPECT_EQ(imagePullPolicyOf({{"image", "busybox:latest"}}), "Always");
  EXPECT_EQ(imagePullPolicyOf({{"image", "busybox:1.36"}}), "IfNotPresent");
  EXPECT_EQ(imagePullPolicyOf({{"image", "127.0.0.1:5000/app"}}), "Always");
  EXPECT_EQ(imagePullPolicyOf({{"image", "127.0.0.1:5000/app:2"}}), "IfNotPresent");
  EXPECT_EQ(imagePullPolicyOf({{"image", "app@sha256:abc"}}), "IfNotPresent");
  EXPECT_EQ(imagePullPolicyOf({{"image", "app:1"}, {"imagePullPolicy", "Never"}}), "Never");
}

TEST(PodSpec, RegistryHost) {
  EXPECT_EQ(registryHostOf("busybox"), "docker.io");
  EXPECT_EQ(registryHostOf("library/busybox:1"), "docker.io");
  EXPECT_EQ(registryHostOf("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
  EXPECT_EQ(registryHostOf("registry.example.com/a/b"), "registry.example.com");
  EXPECT_EQ(registryHostOf("localhost/app"), "localhost");
  // docker config keys as docker login and kubectl write them, Docker Hub under its other names.
  EXPECT_EQ(registryHostOfAuthKey("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(registryHostOfAuthKey("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(registryHostOfAuthKey("https://127.0.0.1:5443"), "127.0.0.1:5443");
  EXPECT_EQ(registryHostOfAuthKey("127.0.0.1:5443"), "127.0.0.1:5443");
  EXPECT_EQ(registryHostOfAuthKey("http://reg.example/some/path"), "reg.example");
}

TEST(PodSpec, PullAuthorizationFailures) {
  // containerd 1.6's messages for a registry that refuses the credentials.
  EXPECT_TRUE(isPullAuthorizationFailure(
      "failed to resolve reference \"r/a:1\": pulling from host r failed with status code "
      "[manifests 1]: 401 Unauthorized"));
  EXPECT_TRUE(isPullAuthorizationFailure("unexpected status: 403 Forbidden"));
  EXPECT_TRUE(isPullAuthorizationFailure("pull access denied, repository does not exist"));
  // Unreachable registries are not: the node keeps using what it has.
  EXPECT_FALSE(isPullAuthorizationFailure("dial tcp 127.0.0.1:5000: connect: connection refused"));
  EXPECT_FALSE(isPullAuthorizationFailure("failed to resolve reference: not found"));
}

TEST(PodSpec, NodeRuntimeVersion) {
  EXPECT_EQ(nodeRuntimeVersion("containerd 1.6.20~ds1 (CRI v1)"), "containerd://1.6.20~ds1");
  EXPECT_EQ(nodeRuntimeVersion("fake 0.0.1"), "fake://0.0.1");
  EXPECT_EQ(nodeRuntimeVersion(""), "");
}

TEST(PodSpec, SpecHashIsStableAndSensitive) {
  Json a = {{"name", "c"}, {"image", "x:1"}};
  Json b = {{"image", "x:1"}, {"name", "c"}};
  EXPECT_EQ(containerSpecHash(a), containerSpecHash(b));
  b["image"] = "x:2";
  EXPECT_NE(containerSpecHash(a), containerSpecHash(b));
}

TEST(PodSpec, Resources) {
  auto r = linuxResourcesOf(
      {{"resources",
        {{"requests", {{"cpu", "250m"}}}, {"limits", {{"cpu", "1"}, {"memory", "128Mi"}}}}}},
      "spec.containers[0]");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->cpuShares, 256);
  EXPECT_EQ(r->cpuPeriod, 100000);
  EXPECT_EQ(r->cpuQuota, 100000);
  EXPECT_EQ(r->memoryLimitBytes, 128 << 20);
  auto none = linuxResourcesOf(Json::object(), "spec.containers[0]");
  ASSERT_TRUE(none.isOk());
  EXPECT_EQ(none->cpuShares, 2);
  EXPECT_EQ(none->cpuQuota, 0);
  auto bad =
      linuxResourcesOf({{"resources", {{"limits", {{"memory", "lots"}}}}}}, "spec.containers[1]");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("spec.containers[1].resources.limits.memory"),
            std::string::npos)
      << bad.status().message();
}

TEST(PodSpec, ExpandVars) {
  std::map<std::string, std::string> v{{"A", "1"}, {"B", "two"}};
  EXPECT_EQ(expandVars("$(A)-$(B)", v), "1-two");
  EXPECT_EQ(expandVars("$(C) stays", v), "$(C) stays");
  EXPECT_EQ(expandVars("$$(A) escaped", v), "$(A) escaped");
  EXPECT_EQ(expandVars("$(A", v), "$(A");
  EXPECT_EQ(expandVars("cost $5", v), "cost $5");
}

TEST(PodSpec, ResolveEnv) {
  Json p = pod();
  auto lookup =
      lookupFrom({{"configmaps/prod/cfg", {{"data", {{"mode", "fast"}, {"level", "3"}}}}},
                  {"secrets/prod/sec", {{"data", {{"pw", api::base64Encode("hunter2")}}}}}});
  Json c = {
      {"name", "c"},
      {"envFrom", {{{"configMapRef", {{"name", "cfg"}}}, {"prefix", "CFG_"}}}},
      {"env",
       {{{"name", "MODE"},
         {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "mode"}}}}}},
        {{"name", "PW"}, {"valueFrom", {{"secretKeyRef", {{"name", "sec"}, {"key", "pw"}}}}}},
        {{"name", "NS"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}},
        {{"name", "APP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.labels['app']"}}}}}},
        {{"name", "IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
        {{"name", "URL"}, {"value", "http://$(IP):80/$(MODE)"}},
        {{"name", "OPT"},
         {"valueFrom",
          {{"configMapKeyRef", {{"name", "missing"}, {"key", "k"}, {"optional", true}}}}}}}}};
  EnvContext ctx{&p, "edge-1", "10.0.0.7", "192.0.2.1", lookup};
  auto env = resolveEnv(c, ctx, "spec.containers[0]");
  ASSERT_TRUE(env.isOk()) << env.status().message();
  std::map<std::string, std::string> m(env->begin(), env->end());
  EXPECT_EQ(m["CFG_mode"], "fast");
  EXPECT_EQ(m["CFG_level"], "3");
  EXPECT_EQ(m["MODE"], "fast");
  EXPECT_EQ(m["PW"], "hunter2");
  EXPECT_EQ(m["NS"], "prod");
  EXPECT_EQ(m["APP"], "web");
  EXPECT_EQ(m["URL"], "http://10.0.0.7:80/fast");
  EXPECT_EQ(m.count("OPT"), 0u);

  Json missingKey = {
      {"env",
       {{{"name", "X"},
         {"valueFrom", {{"configMapKeyRef", {{"name", "cfg"}, {"key", "nope"}}}}}}}}};
  auto e = resolveEnv(missingKey, ctx, "spec.containers[0]");
  ASSERT_FALSE(e.isOk());
  EXPECT_EQ(e.status().message(), "couldn't find key nope in ConfigMap prod/cfg");
  Json badField = {
      {"env", {{{"name", "X"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "spec.bogus"}}}}}}}}};
  e = resolveEnv(badField, ctx, "spec.containers[2]");
  ASSERT_FALSE(e.isOk());
  EXPECT_NE(e.status().message().find("spec.containers[2].env[0]"), std::string::npos);
}

TEST(PodSpec, SandboxConfig) {
  Json p = pod();
  p["spec"]["containers"] = {
      {{"name", "c"},
       {"ports", {{{"containerPort", 80}, {"hostPort", 8080}}, {{"containerPort", 81}}}}}};
  auto c = sandboxConfigOf(p, 2, "/logs/x");
  EXPECT_EQ(c.attempt, 2u);
  EXPECT_EQ(c.hostname, "web");
  EXPECT_EQ(c.logDirectory, "/logs/x");
  ASSERT_EQ(c.portMappings.size(), 1u);  // only published ports
  EXPECT_EQ(c.portMappings[0].hostPort, 8080);
  EXPECT_EQ(c.labels[kLabelPodUid], "u-1");
  EXPECT_EQ(c.labels["app"], "web");
  EXPECT_EQ(c.annotations["team"], "edge");
  p["spec"]["hostNetwork"] = true;
  c = sandboxConfigOf(p, 0, "/logs/x");
  EXPECT_TRUE(c.hostNetwork);
  EXPECT_EQ(c.hostname, "");  // containerd on these machines refuses a hostname here
  EXPECT_EQ(c.portMappings.size(), 2u);
}

}  // namespace
}  // namespace ep::edged
