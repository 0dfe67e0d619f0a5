// App releases through an authenticated registry, end to end with real components: cloudcore,
// an edgecore on a private containerd (scripts/cri-env.sh) and a docker-registry set up as Harbor
// is for this purpose (TLS with its own CA, which containerd trusts for that host, and htpasswd
// authentication). Images are pulled with imagePullSecrets (kubernetes.io/dockerconfigjson from
// `edgectl create secret docker-registry`); a missing or wrong secret shows ErrImagePull with
// the registry's reason; a Deployment moves from one image version to the next with
// `edgectl set image` and `edgectl rollout status`. Skips when not root or containerd is missing
// (CI runs it as root).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "tests/integration/cri_edge_fixture.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

class RegistryTest : public WithCri<EdgeFixture> {
 protected:
  void SetUp() override {
    WithCri::SetUp();
    if (stopped()) return;
    // Models pulled from the registry trust its CA the way containerd does (certs.d).
    std::string cfg =
        writeFile("edge.yaml",
                  "labels:\n  e2e: \"yes\"\nmodelRegistryCertsDir: " + cri_->dir() + "/certs.d\n");
    startEdge("edge-a", {"--config", cfg});
    ASSERT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }, 30s));
  }

  std::string secureImage(const std::string& nameTag) {
    return cri_->secureRegistry() + "/edgeplane/" + nameTag;
  }
  std::string podYaml(const std::string& name, const std::string& image,
                      const std::string& secret) {
    std::string y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name +
                    "\nspec:\n  nodeSelector:\n    e2e: \"yes\"\n"
                    "  terminationGracePeriodSeconds: 1\n";
    if (!secret.empty()) y += "  imagePullSecrets:\n  - name: " + secret + "\n";
    // Always: with the image already on the node (IfNotPresent, the default for a tag) a pod
    // would start without asking the registry, credentials or not.
    return y + "  containers:\n  - name: web\n    image: " + image +
           "\n    imagePullPolicy: Always\n";
  }
  // Messages of the Warning events about `pod`, newest last.
  std::string warnings(const std::string& pod) {
    Json list = getJson("/api/v1/namespaces/default/events");
    std::string out;
    for (const auto& e : list.value("items", Json::array())) {
      if (e["involvedObject"].value("name", "") != pod || e.value("type", "") != "Warning") {
        continue;
      }
      out += e.value("message", "") + "\n";
    }
    return out;
  }
  std::string waitingReason(const std::string& pod) {
    Json p = getJson("/api/v1/namespaces/default/pods/" + pod);
    const Json* cs = p.is_object() ? &p["status"]["containerStatuses"] : nullptr;
    if (cs == nullptr || !cs->is_array() || cs->empty()) return "";
    return (*cs)[0]["state"]["waiting"].value("reason", "");
  }
  Json pod(const std::string& name) { return getJson("/api/v1/namespaces/default/pods/" + name); }
  static std::string httpGet(const Json& pod, const std::string& path) {
    std::string ip = pod["status"].value("podIP", "");
    if (ip.empty()) return "";
    auto r = runCommand({"curl", "-fsS", "--max-time", "3", "http://" + ip + ":8080" + path});
    return r.exitCode == 0 ? r.out : "";
  }
  Json readyPodOf(const std::string& app) {
    Json list = getJson("/api/v1/namespaces/default/pods?labelSelector=app%3D" + app);
    for (const auto& p : list.value("items", Json::array())) {
      if (p["metadata"].contains("deletionTimestamp")) continue;
      for (const auto& c : p["status"].value("conditions", Json::array())) {
        if (c.value("type", "") == "Ready" && c.value("status", "") == "True") return p;
      }
    }
    return Json();
  }
};

TEST_F(RegistryTest, PullsWithImagePullSecretsAndReportsTheRegistrysReason) {
  // The registry really refuses anonymous pulls (so the pods below test credentials, not luck).
  auto anon = runCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                          cri_->secureRegistryCa(),
                          "https://" + cri_->secureRegistry() + "/v2/edgeplane/httpd/tags/list"});
  ASSERT_EQ(anon.out, "401");

  // No secret: the registry's 401 reaches the pod's events; the pod waits in ErrImagePull.
  auto r = edgectl({"apply", "-f", "-"}, podYaml("anonymous", secureImage("httpd:1"), ""));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually(
      [&] { return warnings("anonymous").find("401 Unauthorized") != std::string::npos; }, 60s))
      << warnings("anonymous");
  EXPECT_TRUE(eventually([&] {
    std::string w = waitingReason("anonymous");
    return w == "ErrImagePull" || w == "ImagePullBackOff";
  }));
  EXPECT_NE(warnings("anonymous").find("Failed to pull image \"" + secureImage("httpd:1")),
            std::string::npos);

  // A secret with the wrong password: the same, with the registry's reason.
  r = edgectl({"create", "secret", "docker-registry", "wrongcred", "--docker-server",
               cri_->secureRegistry(), "--docker-username", CriEnv::secureUser(),
               "--docker-password", "not-the-password"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "secret/wrongcred created\n");
  r = edgectl({"apply", "-f", "-"}, podYaml("wrong", secureImage("httpd:1"), "wrongcred"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually(
      [&] { return warnings("wrong").find("401 Unauthorized") != std::string::npos; }, 60s))
      << warnings("wrong");

  // The right credentials (an https:// server URL, as docker login writes it): the pod runs
  // the image it pulled over TLS.
  r = edgectl({"create", "secret", "docker-registry", "regcred", "--docker-server",
               "https://" + cri_->secureRegistry(), "--docker-username", CriEnv::secureUser(),
               "--docker-password", cri_->securePassword()});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = edgectl({"apply", "-f", "-"}, podYaml("authorized", secureImage("httpd:1"), "regcred"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(
      eventually([&] { return pod("authorized")["status"].value("phase", "") == "Running"; }, 60s))
      << warnings("authorized");
  EXPECT_TRUE(
      eventually([&] { return httpGet(pod("authorized"), "/") == "hello from edgeplane\n"; }));
  EXPECT_EQ(warnings("authorized"), "");
  // The image is on the node now, yet the pods without valid credentials still cannot have it
  // (each start asks the registry, as pullPolicy Always says).
  EXPECT_NE(pod("wrong")["status"].value("phase", ""), "Running");
  EXPECT_NE(pod("anonymous")["status"].value("phase", ""), "Running");
}

TEST_F(RegistryTest, DeploymentUpgradesFromOneImageVersionToTheNext) {
  auto r = edgectl({"create", "secret", "docker-registry", "regcred", "--docker-server",
                    cri_->secureRegistry(), "--docker-username", CriEnv::secureUser(),
                    "--docker-password", cri_->securePassword()});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = edgectl({"apply", "-f", "-"},
              "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n"
              "  replicas: 1\n  selector:\n    matchLabels:\n      app: app\n"
              "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n"
              "      maxUnavailable: 0\n      maxSurge: 1\n"
              "  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n"
              "      terminationGracePeriodSeconds: 1\n"
              "      nodeSelector:\n        e2e: \"yes\"\n"
              "      imagePullSecrets:\n      - name: regcred\n"
              "      containers:\n      - name: web\n        image: " +
                  secureImage("httpd:1") +
                  "\n        readinessProbe:\n          httpGet:\n            path: /\n"
                  "            port: 8080\n          periodSeconds: 1\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = edgectl({"rollout", "status", "deployment/app", "--timeout", "90s"});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  Json v1 = readyPodOf("app");
  ASSERT_TRUE(v1.is_object());
  EXPECT_EQ(httpGet(v1, "/"), "hello from edgeplane\n");

  // The release: one image change, rolled out as any Deployment change is.
  r = edgectl({"set", "image", "deployment/app", "web=" + secureImage("httpd:2")});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "deployment.apps/app image updated\n");
  r = edgectl({"rollout", "status", "deployment/app", "--timeout", "90s"});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("successfully rolled out"), std::string::npos) << r.out;
  ASSERT_TRUE(eventually(
      [&] {
        Json p = readyPodOf("app");
        return p.is_object() &&
               p["spec"]["containers"][0].value("image", "") == secureImage("httpd:2") &&
               httpGet(p, "/") == "hello from edgeplane v2\n";
      },
      60s));
  EXPECT_NE(readyPodOf("app")["metadata"].value("name", ""), v1["metadata"].value("name", ""));
  Json d = getJson("/apis/apps/v1/namespaces/default/deployments/app");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0].value("image", ""),
            secureImage("httpd:2"));
  EXPECT_EQ(d["spec"]["template"]["spec"]["imagePullSecrets"][0].value("name", ""), "regcred");
  auto history = edgectl({"rollout", "history", "deployment/app"});
  EXPECT_NE(history.out.find("2 "), std::string::npos) << history.out;
}

// A Model naming an OCI artifact (docs/models.md, "Models from an OCI registry"): the node pulls
// it from the authenticated registry with the Secret the Model's spec.credentialName names,
// checks its digest, and the pod's volume serves it; a moved url switches the volume in place; a
// missing artifact or refused credentials show on the Model and the pod keeps its version.
TEST_F(RegistryTest, ModelsComeFromAnOciArtifactWithThePullSecretTheModelNames) {
  auto model = [&](size_t size, uint32_t seed) {
    std::string s(size, '\0');
    for (auto& c : s) c = static_cast<char>((seed = seed * 1103515245u + 12345u) >> 16);
    return s;
  };
  const std::string v1 = model(300 * 1024, 1), v2 = model(1500 * 1024, 2);
  std::filesystem::create_directories(dir_.path() + "/v1");
  std::filesystem::create_directories(dir_.path() + "/v2");
  const std::string f1 = writeFile("v1/digits.onnx", v1), f2 = writeFile("v2/digits.onnx", v2);
  auto push = [&](const std::string& file, const std::string& tag) {
    auto r = runCommand({std::string(EP_SOURCE_DIR) + "/scripts/oci-push.sh", file,
                         cri_->secureRegistry() + "/models/digits:" + tag, "--ca",
                         cri_->secureRegistryCa(), "--user",
                         CriEnv::secureUser() + ":" + cri_->securePassword()});
    EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
    std::string d = r.out;
    while (!d.empty() && d.back() == '\n') d.pop_back();
    return d;
  };
  const std::string manifest1 = push(f1, "v1");
  ASSERT_EQ(manifest1.size(), 71u) << manifest1;
  push(f2, "v2");
  const std::string url = "oci://" + cri_->secureRegistry() + "/models/digits";
  auto applyModel = [&](const std::string& u, const std::string& cred) {
    std::string y =
        "apiVersion: sedna.io/v1alpha1\nkind: Model\nmetadata:\n  name: digits\n"
        "spec:\n  url: " +
        u + "\n  format: onnx\n";
    if (!cred.empty()) y += "  credentialName: " + cred + "\n";
    auto r = edgectl({"apply", "-f", "-"}, y);
    ASSERT_EQ(r.exitCode, 0) << r.err;
  };
  auto nodeState = [&]() -> Json {
    Json j = getJson("/apis/sedna.io/v1alpha1/namespaces/default/models/digits");
    if (!j.is_object() || !j["status"].is_object() || !j["status"]["nodes"].is_object()) {
      return Json::object();
    }
    return j["status"]["nodes"].value("edge-a", Json::object());
  };
  auto volumeInfo = [&]() -> Json {
    auto ex = edgectl({"exec", "app", "--", "cat", "/models/model.json"});
    Json j = ex.exitCode == 0 ? Json::parse(ex.out, nullptr, false) : Json();
    return j.is_object() ? j : Json::object();
  };

  // No credentials: the registry's 401 shows on the Model; the pod cannot start its volume.
  applyModel(url + ":v1", "");
  auto r = edgectl({"apply", "-f", "-"},
                   "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n"
                   "  nodeName: edge-a\n  terminationGracePeriodSeconds: 1\n"
                   "  containers:\n  - name: app\n    image: " +
                       cri_->registry() +
                       "/busybox:1.36\n    command: [\"sleep\", \"3600\"]\n"
                       "    volumeMounts:\n    - name: model\n      mountPath: /models\n"
                       "  volumes:\n  - name: model\n    csi:\n      driver: models.edgeplane.io\n"
                       "      volumeAttributes:\n        model: digits\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually(
      [&] {
        Json e = nodeState();
        return e.value("state", "") == "Failed" &&
               e.value("error", "").find("401 Unauthorized") != std::string::npos;
      },
      60s))
      << nodeState().dump();
  EXPECT_NE(pod("app")["status"].value("phase", ""), "Running");

  // The pull secret named on the Model: the node pulls, verifies and serves the file under its
  // title, with the artifact's digest; the version is the tag.
  r = edgectl({"create", "secret", "docker-registry", "modelcred", "--docker-server",
               cri_->secureRegistry(), "--docker-username", CriEnv::secureUser(),
               "--docker-password", cri_->securePassword()});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  applyModel(url + ":v1", "modelcred");
  const std::string d1 = "sha256:" + runCommand({"sha256sum", f1}).out.substr(0, 64);
  const std::string d2 = "sha256:" + runCommand({"sha256sum", f2}).out.substr(0, 64);
  ASSERT_TRUE(eventually([&] { return volumeInfo().value("digest", "") == d1; }, 90s))
      << nodeState().dump() << edgectl({"describe", "pod", "app"}).out;
  Json info = volumeInfo();
  EXPECT_EQ(info.value("version", ""), "v1");
  EXPECT_EQ(info.value("url", ""), url + ":v1");
  EXPECT_EQ(info.value("size", 0), 300 * 1024);
  auto ex = edgectl({"exec", "app", "--", "sh", "-c", "sha256sum /models/digits.onnx"});
  EXPECT_EQ(ex.out.substr(0, 64), d1.substr(7)) << ex.err;
  EXPECT_TRUE(eventually([&] { return nodeState().value("state", "") == "Ready"; }))
      << nodeState().dump();
  const std::string uid = pod("app")["metadata"].value("uid", "");

  // Another url: the same pod sees the new file in place.
  applyModel(url + ":v2", "modelcred");
  ASSERT_TRUE(eventually([&] { return volumeInfo().value("digest", "") == d2; }, 60s))
      << nodeState().dump();
  ex = edgectl({"exec", "app", "--", "sh", "-c", "wc -c < /models/digits.onnx"});
  EXPECT_EQ(ex.out, std::to_string(1500 * 1024) + "\n");

  // Pinned by the manifest's digest: back to v1 (still on the node).
  applyModel(url + "@" + manifest1, "modelcred");
  ASSERT_TRUE(eventually([&] { return volumeInfo().value("digest", "") == d1; }, 60s))
      << nodeState().dump();
  EXPECT_EQ(volumeInfo().value("version", ""), manifest1);

  // A missing artifact: the registry's reason on the Model; the pod keeps serving v1.
  applyModel(url + ":v9", "modelcred");
  ASSERT_TRUE(eventually(
      [&] {
        Json e = nodeState();
        return e.value("state", "") == "Failed" &&
               e.value("error", "").find("MANIFEST_UNKNOWN") != std::string::npos;
      },
      60s))
      << nodeState().dump();
  EXPECT_EQ(volumeInfo().value("digest", ""), d1);
  EXPECT_EQ(pod("app")["metadata"].value("uid", ""), uid);  // never restarted
  EXPECT_EQ(pod("app")["status"]["containerStatuses"][0].value("restartCount", -1), 0);
}

}  // namespace
}  // namespace ep::testing
