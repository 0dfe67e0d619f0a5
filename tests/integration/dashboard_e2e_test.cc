// The dashboard in a real browser: headless Chromium (Debian's) driven by playwright-core through
// dashboard/e2e/dashboard.e2e.mjs, against this cloudcore serving /ui/, an edgecore running pods
// on a private containerd (CriEnv), and a DMI mapper playing a device. The script does what an
// operator does (log in, watch a node go Ready, create a Deployment from YAML, scale it, roll it
// back, set a device's desired value, create a Rule, push model versions, chart device data, a
// view-only user who can change nothing); this test then checks through the API that the clicks
// took effect. Screenshots of every page go to BUILD_DIR/artifacts/dashboard.
// Skips when not root or containerd is missing (CriEnv), or without Chromium.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/integration/cri_edge_fixture.h"
#include "tests/integration/thermometer_manifests.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kAdminToken = "dashboard-admin-token-0123456789";
constexpr const char* kViewToken = "dashboard-view-token-0123456789";

constexpr const char* kViewerBinding = R"(apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: dashboard-viewer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: viewer
)";

class DashboardE2eTest : public WithCri<EdgeFixture> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(chromium())) {
      GTEST_SKIP() << chromium() << " is missing (scripts/install-deps.sh installs chromium)";
    }
    const std::string tokens =
        writeFile("tokens.csv", std::string(kAdminToken) + ",admin,1,\"system:masters\"\n" +
                                    kViewToken + ",viewer,2,\"\"\n");
    extraCloudArgs_ = {"--token-auth-file", tokens};
    WithCri::SetUp();
  }
  void TearDown() override {
    if (HasFailure() && mapper_) std::cerr << "---- mapper ----\n" << tail(mapper_->log(), 2000);
    mapper_.reset();
    WithCri::TearDown();
  }
  static std::string chromium() {
    const char* c = std::getenv("EP_CHROMIUM");
    return c ? c : "/usr/bin/chromium";
  }
  std::string image(const std::string& nameTag) { return cri_->registry() + "/" + nameTag; }

  std::unique_ptr<Process> mapper_;
};

TEST_F(DashboardE2eTest, AnOperatorManagesNodesAppsDevicesRoutesModelsAndDataInTheBrowser) {
  if (stopped()) return;
  const std::string script = std::string(EP_SOURCE_DIR) + "/dashboard/e2e/dashboard.e2e.mjs";
  ASSERT_TRUE(std::filesystem::exists(std::string(EP_SOURCE_DIR) +
                                      "/dashboard/node_modules/playwright-core"))
      << "dashboard/node_modules is missing: scripts/build-dashboard.sh installs it";
  // The files are served: the login page loads without a token.
  {
    auto c = client();
    auto r = c.request("GET", "/ui/login");
    ASSERT_TRUE(r.isOk());
    ASSERT_EQ(r->status, 200) << r->body << "\n(scripts/build-dashboard.sh builds the files)";
  }

  auto r = edgectl(
      {"apply", "-f",
       writeFile("devices.yaml", std::string(kThermometerManifests) + "---\n" + kViewerBinding)});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string dmi = dir_.path() + "/dmi.sock";
  startEdge("edge-1", {"--dmi-socket", dmi});
  mapper_ = std::make_unique<Process>(
      std::vector<std::string>{buildPath("mappers/ep-thermometer-mapper"), "--dmi-socket", dmi,
                               "--socket", dir_.path() + "/simthermo.sock", "--report-cycle-ms",
                               "500"},
      dir_.path() + "/mapper.log");
  ASSERT_TRUE(mapper_->start());
  const std::string model = writeFile("digits.onnx", std::string(4096, 'm'));

  const std::string artifacts = buildPath("artifacts/dashboard");
  auto run = runCommand(
      {"/usr/bin/env", "EP_UI_URL=" + server(), std::string("EP_ADMIN_TOKEN=") + kAdminToken,
       std::string("EP_VIEW_TOKEN=") + kViewToken, "EP_NODE=edge-1", "EP_IMAGE=" + image("httpd:1"),
       "EP_IMAGE2=" + image("busybox:1.36"), "EP_DEVICE=default/thermo-1", "EP_MODEL_FILE=" + model,
       "EP_ARTIFACTS=" + artifacts, "EP_CHROMIUM=" + chromium(), "node", script},
      "", std::chrono::minutes(8));
  std::cerr << run.out << run.err;
  ASSERT_EQ(run.exitCode, 0) << "the browser steps failed (above); screenshots in " << artifacts;

  // What the clicks did, as the API sees it.
  Json web = getJson("/apis/apps/v1/namespaces/default/deployments/web");
  EXPECT_EQ(web["spec"].value("replicas", 0), 2);
  EXPECT_EQ(web["spec"]["template"]["spec"]["containers"][0].value("image", ""), image("httpd:1"));
  getJson("/apis/apps/v1/namespaces/default/deployments/live-check", 404);
  Json device = getJson("/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1");
  EXPECT_EQ(device["spec"]["properties"][1]["desired"].value("value", ""), "42");
  getJson("/apis/rules.kubeedge.io/v1/namespaces/default/rules/my-rule");
  Json digits = getJson("/apis/sedna.io/v1alpha1/namespaces/default/models/digits");
  EXPECT_EQ(digits["metadata"]["annotations"].value("models.edgeplane.io/version", ""), "v1");
  Json history = Json::parse(
      digits["metadata"]["annotations"].value("models.edgeplane.io/history", "[]"), nullptr, false);
  ASSERT_TRUE(history.is_array());
  EXPECT_EQ(history.size(), 2u);
  EXPECT_FALSE(getJson("/api/v1/nodes/edge-1")["spec"].value("unschedulable", false));
  for (const char* page : {"login", "nodes", "nodes-tablet", "node", "app", "apps", "device",
                           "routes", "model", "data", "view-only"}) {
    EXPECT_TRUE(std::filesystem::exists(artifacts + "/" + page + ".png")) << page;
  }
}

// cloudcore serves the built files next to it (BUILD_DIR/cloudcore/dashboard) without a token,
// and nothing at all with --dashboard=false.
class DashboardServingTest : public CloudFixture {
 protected:
  http::HttpClient anonymous() {
    http::ClientOptions o;
    o.insecureSkipVerify = true;
    return http::HttpClient(server(), o);
  }
};

TEST_F(DashboardServingTest, ServesThePagesAnonymouslyAndNothingWhenTurnedOff) {
  auto c = anonymous();
  auto page = c.request("GET", "/ui/nodes/edge-1.example.com");
  ASSERT_TRUE(page.isOk());
  ASSERT_EQ(page->status, 200) << page->body << "\n(scripts/build-dashboard.sh builds the files)";
  EXPECT_NE(page->body.find("<div id=\"app\">"), std::string::npos);
  EXPECT_NE(page->header("content-security-policy").find("default-src 'self'"), std::string::npos);
  // The API itself still wants credentials.
  auto api = c.request("GET", "/api/v1/nodes");
  ASSERT_TRUE(api.isOk());
  EXPECT_EQ(api->status, 401);

  cloud_.reset();
  startCloud({"--dashboard=false"});
  auto off = c.request("GET", "/ui/");
  ASSERT_TRUE(off.isOk());
  EXPECT_EQ(off->status, 401) << "with the dashboard off, /ui/ is an API path like any other";
  getJson("/api/v1/nodes");
}

}  // namespace
}  // namespace ep::testing
