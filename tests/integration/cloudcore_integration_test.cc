// cloudcore as a real process, driven by edgectl and plain HTTP.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <thread>

#include "tests/integration/cloud_fixture.h"
#include "tests/testing/eventually.h"

namespace ep::testing {
namespace {

using nlohmann::json;

const char* kManifest = R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  labels:
    app: web
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
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
      nodeSelector:
        node-role.kubernetes.io/edge: ""
      containers:
      - name: web
        image: 127.0.0.1:5000/edgeplane/http:1
        ports:
        - containerPort: 8080
---
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermometer
spec:
  properties:
  - name: temperature
    type: INT
    accessMode: ReadOnly
)";

class CloudcoreIntegrationTest : public CloudFixture {};

TEST_F(CloudcoreIntegrationTest, EdgectlApplyGetDescribeDelete) {
  std::string file = writeFile("app.yaml", kManifest);
  auto applied = edgectl({"apply", "-f", file});
  ASSERT_EQ(applied.exitCode, 0) << applied.out << applied.err;
  EXPECT_NE(applied.out.find("configmap/app-config created"), std::string::npos) << applied.out;
  EXPECT_NE(applied.out.find("deployment.apps/web created"), std::string::npos) << applied.out;
  EXPECT_NE(applied.out.find("devicemodel.devices.kubeedge.io/thermometer created"),
            std::string::npos)
      << applied.out;

  auto again = edgectl({"apply", "-f", file});
  ASSERT_EQ(again.exitCode, 0) << again.err;
  EXPECT_NE(again.out.find("configmap/app-config unchanged"), std::string::npos) << again.out;

  std::string changed = kManifest;
  changed.replace(changed.find("greeting: hello"), 15, "greeting: howdy");
  auto reapplied = edgectl({"apply", "-f", writeFile("app2.yaml", changed)});
  ASSERT_EQ(reapplied.exitCode, 0) << reapplied.err;
  EXPECT_NE(reapplied.out.find("configmap/app-config configured"), std::string::npos)
      << reapplied.out;
  EXPECT_EQ(getJson("/api/v1/namespaces/default/configmaps/app-config")["data"]["greeting"],
            "howdy");

  auto get = edgectl({"get", "deploy"});
  ASSERT_EQ(get.exitCode, 0) << get.err;
  EXPECT_NE(get.out.find("NAME"), std::string::npos);
  EXPECT_NE(get.out.find("UP-TO-DATE"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("web"), std::string::npos);

  auto yaml = edgectl({"get", "cm", "app-config", "-o", "yaml"});
  ASSERT_EQ(yaml.exitCode, 0) << yaml.err;
  EXPECT_NE(yaml.out.find("greeting: howdy"), std::string::npos) << yaml.out;
  EXPECT_NE(yaml.out.find("resourceVersion:"), std::string::npos);

  auto js = edgectl({"get", "dm", "-o", "json"});
  ASSERT_EQ(js.exitCode, 0) << js.err;
  EXPECT_EQ(json::parse(js.out)["items"][0]["metadata"]["name"], "thermometer");

  auto describe = edgectl({"describe", "deployment", "web"});
  ASSERT_EQ(describe.exitCode, 0) << describe.err;
  EXPECT_NE(describe.out.find("Name:"), std::string::npos) << describe.out;
  EXPECT_NE(describe.out.find("web"), std::string::npos);

  auto del = edgectl({"delete", "-f", file});
  ASSERT_EQ(del.exitCode, 0) << del.out << del.err;
  EXPECT_NE(del.out.find("deleted"), std::string::npos) << del.out;
  auto gone = edgectl({"get", "cm", "app-config"});
  EXPECT_NE(gone.exitCode, 0);
  EXPECT_NE(gone.err.find("NotFound"), std::string::npos) << gone.err;
}

TEST_F(CloudcoreIntegrationTest, EdgectlReportsEachBadDocumentAndAppliesTheRest) {
  std::string manifest = R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: good
---
apiVersion: v1
kind: Pod
metadata:
  name: bad-pod
spec:
  containers:
  - name: c
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
)";
  auto r = edgectl({"apply", "-f", writeFile("mixed.yaml", manifest)});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.out.find("configmap/good created"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("document 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("spec.containers[0].image"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Widget"), std::string::npos) << r.err;
  EXPECT_EQ(getJson("/api/v1/namespaces/default/pods/bad-pod", 404)["reason"], "NotFound");

  auto malformed = edgectl({"apply", "-f", "-"}, "kind: ConfigMap\nmetadata: [oops\n");
  EXPECT_NE(malformed.exitCode, 0);
  EXPECT_FALSE(malformed.err.empty());
}

TEST_F(CloudcoreIntegrationTest, EdgectlWatchSeesChanges) {
  auto before = edgectl({"apply", "-f", "-"},
                        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: listed-cm\n");
  ASSERT_EQ(before.exitCode, 0) << before.err;
  Process watch({buildPath("edgectl/edgectl"), "--kubeconfig", kubeconfig(), "get", "cm", "-w"},
                dir_.path() + "/watch.log");
  ASSERT_TRUE(watch.start());
  // Created only after the initial list was printed: it can only arrive through the watch.
  ASSERT_TRUE(eventually([&] { return watch.log().find("listed-cm") != std::string::npos; }))
      << watch.log();
  auto created = edgectl({"apply", "-f", "-"},
                         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched-cm\n");
  ASSERT_EQ(created.exitCode, 0) << created.err;
  EXPECT_TRUE(eventually([&] { return watch.log().find("watched-cm") != std::string::npos; }))
      << watch.log();
  EXPECT_TRUE(watch.running()) << watch.log();
  watch.stop(SIGINT);
}

TEST_F(CloudcoreIntegrationTest, AcknowledgedWritesSurviveKill9AndRestart) {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acked;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      http::ClientOptions o = adminOptions();
      o.timeout = std::chrono::seconds(5);
      http::HttpClient c(server(), o);
      for (int i = 0; !stop; ++i) {
        std::string name = "cm-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = c.request("POST", "/api/v1/namespaces/default/configmaps",
                           R"({"metadata":{"name":")" + name + R"("},"data":{"k":"v"}})",
                           "application/json");
        if (!r.isOk()) return;  // the server died mid-request: not acknowledged
        if (r->status == 201) {
          std::lock_guard lock(mu);
          acked.push_back(name);
        }
      }
    });
  }
  // Killed while the writers are busy, once enough has been acknowledged.
  const bool busy = eventually([&] {
    std::lock_guard lock(mu);
    return acked.size() > 40;
  });
  cloud_->stop(SIGKILL);
  stop = true;
  for (auto& w : writers) w.join();
  ASSERT_TRUE(busy);

  startCloud();
  auto list = getJson("/api/v1/namespaces/default/configmaps");
  std::set<std::string> present;
  for (const auto& item : list["items"]) present.insert(item["metadata"]["name"]);
  for (const auto& name : acked) EXPECT_TRUE(present.count(name)) << name << " was acknowledged";
}

TEST_F(CloudcoreIntegrationTest, OversizedBodyIsRefusedWith413) {
  cloud_.reset();
  startCloud({"--max-body-bytes", "4096"});
  std::string big(8000, 'x');
  auto c = client();
  auto r =
      c.request("POST", "/api/v1/namespaces/default/configmaps",
                R"({"metadata":{"name":"big"},"data":{"k":")" + big + R"("}})", "application/json");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(json::parse(r->body)["reason"], "RequestEntityTooLarge");
  // The server keeps serving.
  EXPECT_EQ(getJson("/api/v1/namespaces/default")["metadata"]["name"], "default");
}

TEST_F(CloudcoreIntegrationTest, WatchFromCompactedRevisionGets410) {
  cloud_.reset();
  std::string cfg = writeFile("cloudcore.yaml", "historyWindow: 1s\ncompactionInterval: 1s\n");
  startCloud({"--config", cfg});
  auto c = client();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(c.request("POST", "/api/v1/namespaces/default/configmaps",
                          R"({"metadata":{"name":"c)" + std::to_string(i) + R"("}})",
                          "application/json")
                    .isOk());
  }
  // Once the history window has passed and compaction ran, revision 1 is gone.
  int status = 0;
  int late = 0;
  EXPECT_TRUE(eventually(
      [&] {
        EXPECT_TRUE(c.request("POST", "/api/v1/namespaces/default/configmaps",
                              R"({"metadata":{"name":"late-)" + std::to_string(late++) + R"("}})",
                              "application/json")
                        .isOk());
        auto r =
            c.request("GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1");
        status = r.isOk() ? r->status : 0;
        return status == 410;
      },
      std::chrono::seconds(15), std::chrono::milliseconds(250)));
  EXPECT_EQ(status, 410);
}

TEST_F(CloudcoreIntegrationTest, InvalidConfigurationIsRefusedNamingTheKey) {
  std::string cfg = writeFile("bad.yaml", "apiListen: 127.0.0.1:1\nbogusKey: 1\n");
  auto r = runCommand(
      {buildPath("cloudcore/cloudcore"), "--config", cfg, "--data-dir", dir_.path() + "/other"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.err.find("bogusKey"), std::string::npos) << r.err;
  auto badListen = runCommand({buildPath("cloudcore/cloudcore"), "--api-listen", "nonsense",
                               "--data-dir", dir_.path() + "/other"});
  EXPECT_EQ(badListen.exitCode, 2);
  EXPECT_NE(badListen.err.find("apiListen"), std::string::npos) << badListen.err;
}

// The tunnel port is bound exclusively: a second cloudcore (another data dir) on the same port
// must fail to start instead of sharing the port and splitting the nodes (issue 14).
TEST_F(CloudcoreIntegrationTest, SecondCloudcoreCannotShareTheTunnelPort) {
  auto r = runCommand({buildPath("cloudcore/cloudcore"), "--data-dir", dir_.path() + "/second",
                       "--api-listen", "127.0.0.1:" + std::to_string(freePort()), "--tunnel-listen",
                       "127.0.0.1:" + std::to_string(tunnelPort_)},
                      "", std::chrono::seconds(20));
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.exitCode, -1) << "the second cloudcore kept running";
  EXPECT_NE(r.err.find("tunnelListen: cannot listen on 127.0.0.1:" + std::to_string(tunnelPort_)),
            std::string::npos)
      << r.err;
}

TEST_F(CloudcoreIntegrationTest, UnreachableServerGivesClearMessage) {
  auto r = runCommand({buildPath("edgectl/edgectl"), "--server",
                       "http://127.0.0.1:" + std::to_string(freePort()), "get", "pods"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.err.find("cannot reach"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ep::testing
