#include "cloudcore/apiserver/api_handler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "cloudcore/apiserver/device_data.h"
#include "cloudcore/apiserver/eviction.h"
#include "cloudcore/apiserver/scale_subresource.h"
#include "common/api/kinds.h"
#include "common/http/server.h"
#include "tests/testing/server_request.h"
#include "tests/testing/store_fixture.h"
#include "tests/testing/temp_dir.h"

namespace ep::apiserver {
namespace {

using nlohmann::json;

class ApiHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    handler_ = std::make_unique<ApiHandler>(*env_.registry, env_.clock);
  }
  void TearDown() override { env_.stop(); }

  ServerResponse call(const std::string& method, const std::string& target,
                      const std::string& body = "", const std::string& contentType = "",
                      const std::string& accept = "application/json") {
    ServerRequest r = testing::serverRequest(method, target, body, contentType, accept);
    return handler_->handle(r);
  }
  json callJson(const std::string& method, const std::string& target, const std::string& body = "",
                int expectStatus = 200, const std::string& contentType = "application/json") {
    auto r = call(method, target, body, contentType);
    EXPECT_EQ(r.status, expectStatus) << method << " " << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  static std::string pod(const std::string& name, const std::string& image = "busybox:1.36",
                         const std::string& extraLabels = "") {
    return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
           R"(","labels":{"app":"web")" + extraLabels +
           R"(}},"spec":{"containers":[{"name":"c","image":")" + image + R"("}]}})";
  }

  testing::StoreFixture env_;
  std::unique_ptr<ApiHandler> handler_;
};

// devices/NAME/data serves the device's time series with its filters; errors name the
// parameter; a missing device is a 404 like any missing object.
TEST_F(ApiHandlerTest, DeviceDataIsServedAsASubresourceOfDevices) {
  testing::TempDir dir;
  devicedata::SqliteDeviceDataStore data({.path = dir.path() + "/devicedata.db"}, env_.clock);
  ASSERT_TRUE(data.start().isOk());
  installDeviceData(*handler_, *env_.registry, data, env_.clock);
  const std::string base = "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices";
  callJson("POST", base,
           R"({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"Device",
               "metadata":{"name":"thermo-1"},"spec":{"deviceModelRef":{"name":"m"}}})",
           201);
  const int64_t now = env_.clock.nowMillis();
  ASSERT_TRUE(data.append(1, {{"default",
                               "thermo-1",
                               {{"temperature", now - 120'000, "19"},
                                {"temperature", now - 1000, "20"},
                                {"humidity", now - 500, "40"}}}})
                  .isOk());
  json all = callJson("GET", base + "/thermo-1/data");
  EXPECT_EQ(all["kind"], "DeviceData");
  ASSERT_EQ(all["items"].size(), 3u);
  EXPECT_EQ(all["items"][0]["value"], "19");
  EXPECT_EQ(all["items"][0]["timestamp"], formatRfc3339Millis(now - 120'000));
  EXPECT_EQ(all["items"][2]["property"], "humidity");
  json temps = callJson("GET", base + "/thermo-1/data?property=temperature&sinceSeconds=60");
  ASSERT_EQ(temps["items"].size(), 1u);
  EXPECT_EQ(temps["items"][0]["value"], "20");
  json newest = callJson("GET", base + "/thermo-1/data?limit=1");
  ASSERT_EQ(newest["items"].size(), 1u);
  EXPECT_EQ(newest["items"][0]["property"], "humidity");
  json since = callJson("GET", base + "/thermo-1/data?sinceTime=" + formatRfc3339(now + 60'000));
  EXPECT_TRUE(since["items"].empty());
  for (const char* bad :
       {"?limit=0", "?limit=x", "?limit=10001", "?sinceSeconds=-1", "?sinceTime=yesterday",
        "?sinceSeconds=1&sinceTime=2026-01-01T00:00:00Z"}) {
    json e = callJson("GET", base + "/thermo-1/data" + bad, "", 400);
    EXPECT_EQ(e["kind"], "Status") << bad;
  }
  json missing = callJson("GET", base + "/ghost/data", "", 404);
  EXPECT_EQ(missing["reason"], "NotFound");
  EXPECT_EQ(call("DELETE", base + "/thermo-1/data").status, 405);
  EXPECT_EQ(formatRfc3339Millis(1'700'000'000'005), "2023-11-14T22:13:20.005Z");
}

// Issue 14: a body nested far too deep is refused before it is parsed (it used to cost 130 MB
// for a 3 MB body), for writes and for patches, naming the limit.
TEST_F(ApiHandlerTest, DeeplyNestedBodiesAreRefusedBeforeParsing) {
  const std::string hostile(3 << 20, '[');
  auto r = call("POST", "/api/v1/namespaces/default/configmaps", hostile, "application/json");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nested deeper than 512 levels"), std::string::npos) << r.body;
  ASSERT_EQ(call("POST", "/api/v1/namespaces/default/configmaps",
                 R"({"metadata":{"name":"cm"},"data":{"a":"b"}})", "application/json")
                .status,
            201);
  r = call("PATCH", "/api/v1/namespaces/default/configmaps/cm", hostile,
           "application/merge-patch+json");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nested deeper than 512 levels"), std::string::npos) << r.body;
}

// /readyz asks the readiness check (cloudcore: can the store still write?) once ready.
TEST_F(ApiHandlerTest, ReadyzAnswersNotReadyWhileTheReadinessCheckFails) {
  Status check = Status::ok();
  ApiHandlerOptions o;
  o.readinessCheck = [&check] { return check; };
  handler_ = std::make_unique<ApiHandler>(*env_.registry, env_.clock, o);
  EXPECT_EQ(call("GET", "/readyz").status, 503);  // not ready yet
  handler_->setReady(true);
  EXPECT_EQ(call("GET", "/readyz").status, 200);
  check = unavailableError("store write failed: database or disk is full");
  auto r = call("GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("disk is full"), std::string::npos) << r.body;
  EXPECT_EQ(call("GET", "/livez").status, 200);  // alive all the same
  check = Status::ok();
  EXPECT_EQ(call("GET", "/readyz").status, 200);
}

TEST_F(ApiHandlerTest, ExtraRoutesAreServedBeforeApiPaths) {
  handler_->addRoute("/metrics", [](ServerRequest&) {
    ServerResponse r;
    r.contentType = "text/plain; version=0.0.4";
    r.body = "up 1\n";
    return r;
  });
  auto r = call("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "up 1\n");
  EXPECT_EQ(r.contentType, "text/plain; version=0.0.4");
  EXPECT_EQ(call("GET", "/metricsx").status, 404);
}

TEST_F(ApiHandlerTest, DiscoveryListsKindsWithShortNamesAndCategories) {
  auto core = callJson("GET", "/api/v1");
  ASSERT_EQ(core["kind"], "APIResourceList");
  bool sawPods = false;
  for (const auto& r : core["resources"]) {
    if (r["name"] == "pods") {
      sawPods = true;
      EXPECT_EQ(r["shortNames"], json({"po"}));
      EXPECT_EQ(r["categories"], json({"all"}));
      EXPECT_TRUE(r["namespaced"].get<bool>());
    }
  }
  EXPECT_TRUE(sawPods);
  auto groups = callJson("GET", "/apis");
  std::vector<std::string> names;
  for (const auto& g : groups["groups"]) names.push_back(g["name"]);
  EXPECT_NE(std::find(names.begin(), names.end(), "devices.kubeedge.io"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "apps"), names.end());
  auto dev = callJson("GET", "/apis/devices.kubeedge.io/v1beta1");
  EXPECT_EQ(dev["groupVersion"], "devices.kubeedge.io/v1beta1");
  EXPECT_EQ(callJson("GET", "/version")["major"], "1");
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  EXPECT_EQ(call("GET", "/apis/nope/v1").status, 404);
}

// Defaults the apiserver applies that clients and the edge rely on (issue 12): container ports
// are TCP unless set, and every namespace carries kubernetes.io/metadata.name.
TEST_F(ApiHandlerTest, PortProtocolAndNamespaceNameLabelAreDefaulted) {
  json p = json::parse(pod("web-ports"));
  p["spec"]["containers"][0]["ports"] = json::parse(R"([{"containerPort": 80},
      {"containerPort": 53, "protocol": "UDP"}])");
  auto created = callJson("POST", "/api/v1/namespaces/default/pods", p.dump(), 201);
  EXPECT_EQ(created["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
  EXPECT_EQ(created["spec"]["containers"][0]["ports"][1]["protocol"], "UDP");
  auto ns = callJson(
      "POST", "/api/v1/namespaces",
      R"({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "x"}}})", 201);
  EXPECT_EQ(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
  auto selected =
      callJson("GET", "/api/v1/namespaces?labelSelector=kubernetes.io/metadata.name%3Dteam");
  ASSERT_EQ(selected["items"].size(), 1u);
  EXPECT_EQ(selected["items"][0]["metadata"]["name"], "team");
}

// pods/eviction (kubectl drain): an Eviction deletes the pod as its deleteOptions say.
TEST_F(ApiHandlerTest, EvictionDeletesThePodAsDeleteOptionsSay) {
  installEviction(*handler_, *env_.registry);
  auto resources = callJson("GET", "/api/v1");
  bool listed = false;
  for (const auto& r : resources["resources"]) {
    listed = listed || (r["name"] == "pods/eviction" && r["group"] == "policy" &&
                        r["kind"] == "Eviction" && r["verbs"] == json::array({"create"}));
  }
  EXPECT_TRUE(listed) << resources.dump();
  callJson("POST", "/api/v1/namespaces/default/pods", pod("victim"), 201);
  const std::string path = "/api/v1/namespaces/default/pods/victim/eviction";
  auto eviction = [](const std::string& name, const std::string& deleteOptions) {
    return R"({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": ")" + name +
           R"("}, "deleteOptions": )" + deleteOptions + "}";
  };
  EXPECT_EQ(call("GET", path).status, 405);
  EXPECT_EQ(call("POST", path, eviction("other", "{}")).status, 400);
  EXPECT_EQ(call("POST", path, eviction("victim", R"({"preconditions": {"uid": "nope"}})")).status,
            409);
  EXPECT_EQ(call("POST", path, eviction("victim", R"({"dryRun": ["All"]})")).status, 201);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/pods/victim").status, 200);
  auto done = callJson("POST", path, eviction("victim", R"({"gracePeriodSeconds": 0})"), 201);
  EXPECT_EQ(done["kind"], "Status");
  EXPECT_EQ(done["status"], "Success");
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/pods/victim").status, 404);
  EXPECT_EQ(call("POST", path, eviction("victim", "{}")).status, 404);
}

TEST_F(ApiHandlerTest, CreateGetListDeletePod) {
  auto created = callJson("POST", "/api/v1/namespaces/default/pods", pod("web-1"), 201);
  EXPECT_EQ(created["metadata"]["namespace"], "default");
  EXPECT_FALSE(created["metadata"]["uid"].get<std::string>().empty());
  EXPECT_FALSE(created["metadata"].contains("generation"));  // pods have none in 1.32
  EXPECT_EQ(created["status"]["phase"], "Pending");
  EXPECT_EQ(created["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
  std::string rv = created["metadata"]["resourceVersion"];
  EXPECT_FALSE(rv.empty());

  auto got = callJson("GET", "/api/v1/namespaces/default/pods/web-1");
  EXPECT_EQ(got, created);

  auto list = callJson("GET", "/api/v1/namespaces/default/pods");
  EXPECT_EQ(list["kind"], "PodList");
  EXPECT_EQ(list["items"].size(), 1u);
  EXPECT_FALSE(list["metadata"]["resourceVersion"].get<std::string>().empty());

  auto dup = callJson("POST", "/api/v1/namespaces/default/pods", pod("web-1"), 409);
  EXPECT_EQ(dup["reason"], "AlreadyExists");
  EXPECT_EQ(dup["details"]["name"], "web-1");

  callJson("DELETE", "/api/v1/namespaces/default/pods/web-1");
  auto missing = callJson("GET", "/api/v1/namespaces/default/pods/web-1", "", 404);
  EXPECT_EQ(missing["kind"], "Status");
  EXPECT_EQ(missing["message"], "pods \"web-1\" not found");
  EXPECT_EQ(missing["details"]["kind"], "pods");
}

TEST_F(ApiHandlerTest, InvalidObjectNamesTheField) {
  std::string bad = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},
                        "spec":{"containers":[{"name":"c"}]}})";
  auto r = callJson("POST", "/api/v1/namespaces/default/pods", bad, 422);
  EXPECT_EQ(r["reason"], "Invalid");
  ASSERT_TRUE(r["details"]["causes"].is_array());
  EXPECT_EQ(r["details"]["causes"][0]["field"], "spec.containers[0].image");
  EXPECT_NE(r["message"].get<std::string>().find("spec.containers[0].image"), std::string::npos);

  auto badName = callJson("POST", "/api/v1/namespaces/default/configmaps",
                          R"({"metadata":{"name":"Bad_Name"}})", 422);
  EXPECT_EQ(badName["details"]["causes"][0]["field"], "metadata.name");

  auto wrongType = callJson("POST", "/apis/apps/v1/namespaces/default/deployments",
                            R"({"metadata":{"name":"d"},"spec":{"replicas":"three"}})", 422);
  bool sawReplicas = false;
  for (const auto& c : wrongType["details"]["causes"]) sawReplicas |= c["field"] == "spec.replicas";
  EXPECT_TRUE(sawReplicas) << wrongType.dump();

  EXPECT_EQ(callJson("POST", "/api/v1/namespaces/default/pods", "{not json", 400)["reason"],
            "BadRequest");
  EXPECT_EQ(callJson("POST", "/api/v1/namespaces/nope/configmaps", R"({"metadata":{"name":"a"}})",
                     404)["message"],
            "namespaces \"nope\" not found");
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/widgets").status, 404);
  // Nothing invalid was written.
  EXPECT_EQ(callJson("GET", "/api/v1/pods")["items"].size(), 0u);
}

TEST_F(ApiHandlerTest, DeeplyNestedBodyIsRefused) {
  std::string deep = R"({"metadata":{"name":"deep"},"data":)" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  auto r = callJson("POST", "/api/v1/namespaces/default/configmaps", deep, 400);
  EXPECT_NE(r["message"].get<std::string>().find("nested"), std::string::npos);
  std::string deepPatch = R"({"data":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  callJson("POST", "/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"p"}})", 201);
  EXPECT_EQ(call("PATCH", "/api/v1/namespaces/default/configmaps/p", deepPatch,
                 "application/merge-patch+json")
                .status,
            400);
}

TEST_F(ApiHandlerTest, UpdateWithStaleResourceVersionConflicts) {
  auto created = callJson("POST", "/api/v1/namespaces/default/configmaps",
                          R"({"metadata":{"name":"cfg"},"data":{"a":"1"}})", 201);
  json v1 = created;
  v1["data"]["a"] = "2";
  auto updated = callJson("PUT", "/api/v1/namespaces/default/configmaps/cfg", v1.dump());
  EXPECT_EQ(updated["data"]["a"], "2");
  EXPECT_NE(updated["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
  EXPECT_EQ(updated["metadata"]["uid"], created["metadata"]["uid"]);
  // v1 still carries the old resourceVersion.
  v1["data"]["a"] = "3";
  auto conflict = callJson("PUT", "/api/v1/namespaces/default/configmaps/cfg", v1.dump(), 409);
  EXPECT_EQ(conflict["reason"], "Conflict");
  EXPECT_EQ(callJson("GET", "/api/v1/namespaces/default/configmaps/cfg")["data"]["a"], "2");
}

// Server-side apply as kubectl uses it: create from nothing (201), reapply unchanged (no write),
// a field another manager changed is a 409 naming it and that manager, --force-conflicts
// takes it, and fields dropped from the configuration go.
TEST_F(ApiHandlerTest, ServerSideApplyTracksFieldOwnership) {
  const std::string item = "/apis/apps/v1/namespaces/default/deployments/web";
  const std::string apply = "application/apply-patch+yaml";
  auto config = [](int replicas, const std::string& extraLabel) {
    return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web")" +
           extraLabel + R"(}},"spec":{"replicas":)" + std::to_string(replicas) +
           R"(,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
           "spec":{"containers":[{"name":"c","image":"busybox:1","ports":[{"containerPort":80}]}]}}}})";
  };
  EXPECT_EQ(call("PATCH", item, config(2, ""), apply).status, 422);  // fieldManager required
  auto created = callJson("PATCH", item + "?fieldManager=kubectl&force=false",
                          config(2, R"(,"tier":"front")"), 201, apply);
  ASSERT_EQ(created["metadata"]["managedFields"].size(), 1u);
  EXPECT_EQ(created["metadata"]["managedFields"][0]["manager"], "kubectl");
  EXPECT_EQ(created["metadata"]["managedFields"][0]["operation"], "Apply");
  EXPECT_EQ(created["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
  auto again = callJson("PATCH", item + "?fieldManager=kubectl", config(2, R"(,"tier":"front")"),
                        200, apply);
  EXPECT_EQ(again["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);

  // YAML bodies work too; kubectl scale-like updates record their manager from the query, and
  // other writers from their User-Agent.
  auto scaled = callJson("PATCH", item + "?fieldManager=kubectl-edit", R"({"spec":{"replicas":5}})",
                         200, "application/merge-patch+json");
  bool editOwnsReplicas = false;
  for (const auto& e : scaled["metadata"]["managedFields"]) {
    if (e["manager"] == "kubectl-edit") {
      editOwnsReplicas = e["operation"] == "Update" && e["apiVersion"] == "apps/v1" &&
                         e["fieldsV1"]["f:spec"].contains("f:replicas");
    }
  }
  EXPECT_TRUE(editOwnsReplicas) << scaled["metadata"]["managedFields"].dump();

  auto conflict = call("PATCH", item + "?fieldManager=kubectl&force=false",
                       config(2, R"(,"tier":"front")"), apply);
  ASSERT_EQ(conflict.status, 409) << conflict.body;
  json status = json::parse(conflict.body);
  EXPECT_EQ(status["reason"], "Conflict");
  EXPECT_EQ(status["message"],
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: "
            ".spec.replicas");
  EXPECT_EQ(status["details"]["causes"][0]["reason"], "FieldManagerConflict");
  EXPECT_EQ(status["details"]["causes"][0]["field"], ".spec.replicas");

  // Forced, without the tier label: kubectl owns replicas again and the label is gone.
  auto forced =
      callJson("PATCH", item + "?fieldManager=kubectl&force=true", config(3, ""), 200, apply);
  EXPECT_EQ(forced["spec"]["replicas"], 3);
  EXPECT_FALSE(forced["metadata"]["labels"].contains("tier"));
  for (const auto& e : forced["metadata"]["managedFields"]) {
    if (e["manager"] == "kubectl-edit") {
      EXPECT_FALSE(e["fieldsV1"].contains("f:spec")) << e.dump();
    }
  }
  auto yamlApplied = call("PATCH", item + "?fieldManager=kubectl",
                          "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                          "  labels: {app: web}\nspec:\n  replicas: 4\n"
                          "  selector: {matchLabels: {app: web}}\n"
                          "  template:\n    metadata: {labels: {app: web}}\n"
                          "    spec:\n      containers:\n      - name: c\n"
                          "        image: busybox:1\n        ports: [{containerPort: 80}]\n",
                          apply);
  ASSERT_EQ(yamlApplied.status, 200) << yamlApplied.body;
  EXPECT_EQ(json::parse(yamlApplied.body)["spec"]["replicas"], 4);

  // Bad bodies are clear 400s; force belongs to apply only.
  EXPECT_EQ(call("PATCH", item + "?fieldManager=kubectl", "[1, 2", apply).status, 400);
  EXPECT_EQ(call("PATCH", item + "?fieldManager=kubectl", "- a\n- b\n", apply).status, 400);
  EXPECT_EQ(call("PATCH", item + "?fieldManager=kubectl", R"({"kind":"Deployment"})", apply).status,
            400);
  EXPECT_EQ(call("PATCH", item + "?force=true", "{}", "application/merge-patch+json").status, 422);
  // Deep bodies are refused whichever parser reads them (a byte-order mark sends JSON to YAML).
  std::string deep = "\xEF\xBB\xBF";
  for (int i = 0; i < 600; ++i) deep += "{\"a\":";
  deep += "1" + std::string(600, '}');
  auto deepAnswer = call("PATCH", item + "?fieldManager=kubectl", deep, apply);
  EXPECT_EQ(deepAnswer.status, 400) << deepAnswer.body;
  EXPECT_NE(deepAnswer.body.find("nested deeper than 512 levels"), std::string::npos);

  // /scale writes are recorded too; without fieldManager the User-Agent names the manager.
  installScaleSubresource(*handler_, *env_.registry);
  ServerRequest scaleReq = testing::serverRequest(
      "PATCH", item + "/scale", R"({"spec":{"replicas":7}})", "application/merge-patch+json");
  scaleReq.headers["user-agent"] = "kubectl/v1.32.3 (linux/amd64) kubernetes/32cc146";
  ASSERT_EQ(handler_->handle(scaleReq).status, 200);
  json afterScale = callJson("GET", item);
  bool scaleOwnsReplicas = false;
  for (const auto& e : afterScale["metadata"]["managedFields"]) {
    scaleOwnsReplicas =
        scaleOwnsReplicas || (e["manager"] == "kubectl" && e["operation"] == "Update" &&
                              e["fieldsV1"]["f:spec"].contains("f:replicas"));
  }
  EXPECT_TRUE(scaleOwnsReplicas) << afterScale["metadata"]["managedFields"].dump();
  yamlApplied.body = afterScale.dump();

  // A writer that leaves managedFields out keeps the stored ones.
  auto put = json::parse(yamlApplied.body);
  put["metadata"].erase("managedFields");
  put["metadata"]["labels"]["x"] = "y";
  auto replaced = callJson("PUT", item, put.dump());
  EXPECT_EQ(replaced["metadata"]["managedFields"], afterScale["metadata"]["managedFields"]);

  // Apply to a subresource is refused; a dry-run apply stores nothing.
  EXPECT_EQ(call("PATCH", item + "/status?fieldManager=kubectl", config(2, ""), apply).status, 405);
  json dryConfig = json::parse(config(2, ""));
  dryConfig["metadata"]["name"] = "dry";
  auto dry = callJson("PATCH",
                      "/apis/apps/v1/namespaces/default/deployments/dry?fieldManager=kubectl&"
                      "dryRun=All",
                      dryConfig.dump(), 201, apply);
  EXPECT_EQ(dry["metadata"]["name"], "dry");
  EXPECT_EQ(call("GET", "/apis/apps/v1/namespaces/default/deployments/dry").status, 404);
}

TEST_F(ApiHandlerTest, GenerationBumpsOnSpecChangeOnly) {
  const std::string base = "/apis/apps/v1/namespaces/default/deployments";
  auto created = callJson("POST", base, R"({"metadata":{"name":"p"},"spec":{
    "selector":{"matchLabels":{"app":"p"}},"template":{"metadata":{"labels":{"app":"p"}},
    "spec":{"containers":[{"name":"c","image":"busybox:1"}]}}}})",
                          201);
  EXPECT_EQ(created["metadata"]["generation"], 1);
  auto labelled = callJson("PATCH", base + "/p", R"({"metadata":{"labels":{"x":"y"}}})", 200,
                           "application/merge-patch+json");
  EXPECT_EQ(labelled["metadata"]["generation"], 1);
  EXPECT_EQ(labelled["metadata"]["labels"]["x"], "y");
  auto imaged = callJson(
      "PATCH", base + "/p",
      R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}})", 200,
      "application/strategic-merge-patch+json");
  EXPECT_EQ(imaged["metadata"]["generation"], 2);
  EXPECT_EQ(imaged["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:2");
  // Kinds without a spec-generation in Kubernetes have none (ConfigMap, Pod).
  auto cm = callJson("POST", "/api/v1/namespaces/default/configmaps",
                     R"({"metadata":{"name":"g"},"data":{"a":"1"}})", 201);
  EXPECT_FALSE(cm["metadata"].contains("generation"));
  EXPECT_FALSE(
      callJson("POST", "/api/v1/namespaces/default/pods", pod("p"), 201)["metadata"].contains(
          "generation"));
  // A no-op patch writes nothing.
  auto same = callJson("PATCH", base + "/p", R"({})", 200, "application/merge-patch+json");
  EXPECT_EQ(same["metadata"]["resourceVersion"], imaged["metadata"]["resourceVersion"]);
  EXPECT_EQ(call("PATCH", "/api/v1/namespaces/default/pods/p", "{}", "text/plain").status, 415);
}

TEST_F(ApiHandlerTest, StatusSubresourceOnlyTouchesStatus) {
  callJson("POST", "/api/v1/namespaces/default/pods", pod("p"), 201);
  // The main resource ignores status.
  auto main = callJson("PATCH", "/api/v1/namespaces/default/pods/p",
                       R"({"status":{"phase":"Running"}})", 200, "application/merge-patch+json");
  EXPECT_EQ(main["status"]["phase"], "Pending");
  auto st = callJson("PATCH", "/api/v1/namespaces/default/pods/p/status",
                     R"({"status":{"phase":"Running"},"metadata":{"labels":{"z":"1"}}})", 200,
                     "application/merge-patch+json");
  EXPECT_EQ(st["status"]["phase"], "Running");
  EXPECT_FALSE(st["metadata"]["labels"].contains("z"));
}

TEST_F(ApiHandlerTest, FinalizersDelayDeletion) {
  callJson("POST", "/api/v1/namespaces/default/configmaps",
           R"({"metadata":{"name":"f","finalizers":["example.com/hold"]}})", 201);
  auto deleting = callJson("DELETE", "/api/v1/namespaces/default/configmaps/f");
  EXPECT_TRUE(deleting["metadata"].contains("deletionTimestamp"));
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/f").status, 200);
  callJson("PATCH", "/api/v1/namespaces/default/configmaps/f",
           R"({"metadata":{"finalizers":null}})", 200, "application/merge-patch+json");
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/configmaps/f").status, 404);
}

TEST_F(ApiHandlerTest, LabelAndFieldSelectors) {
  callJson("POST", "/api/v1/namespaces/default/pods", pod("a", "busybox:1", R"(,"tier":"front")"),
           201);
  callJson("POST", "/api/v1/namespaces/default/pods", pod("b", "busybox:1", R"(,"tier":"back")"),
           201);
  callJson("POST", "/api/v1/namespaces/default/pods", pod("c"), 201);
  auto count = [&](const std::string& q) {
    return callJson("GET", "/api/v1/namespaces/default/pods?" + q)["items"].size();
  };
  EXPECT_EQ(count("labelSelector=tier%3Dfront"), 1u);
  EXPECT_EQ(count("labelSelector=tier%21%3Dfront"), 2u);
  EXPECT_EQ(count("labelSelector=tier+in+%28front%2Cback%29"), 2u);
  EXPECT_EQ(count("labelSelector=%21tier"), 1u);
  EXPECT_EQ(count("labelSelector=tier"), 2u);
  EXPECT_EQ(count("fieldSelector=metadata.name%3Db"), 1u);
  EXPECT_EQ(count("fieldSelector=metadata.name%21%3Db"), 2u);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/pods?fieldSelector=spec.bogus%3D1").status,
            400);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/default/pods?labelSelector=a+in+b").status, 400);
}

TEST_F(ApiHandlerTest, PaginationWithLimitAndContinue) {
  for (int i = 0; i < 5; ++i) {
    callJson("POST", "/api/v1/namespaces/default/configmaps",
             R"({"metadata":{"name":"c)" + std::to_string(i) + R"("}})", 201);
  }
  auto first = callJson("GET", "/api/v1/namespaces/default/configmaps?limit=2");
  EXPECT_EQ(first["items"].size(), 2u);
  std::string cont = first["metadata"]["continue"];
  auto second = callJson("GET", "/api/v1/namespaces/default/configmaps?limit=2&continue=" + cont);
  EXPECT_EQ(second["items"][0]["metadata"]["name"], "c2");
}

TEST_F(ApiHandlerTest, TableFormat) {
  callJson("POST", "/api/v1/namespaces/default/pods", pod("t"), 201);
  auto r = call("GET", "/api/v1/namespaces/default/pods", "", "",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
  ASSERT_EQ(r.status, 200);
  auto t = json::parse(r.body);
  EXPECT_EQ(t["kind"], "Table");
  EXPECT_EQ(t["columnDefinitions"][0]["name"], "Name");
  ASSERT_EQ(t["rows"].size(), 1u);
  EXPECT_EQ(t["rows"][0]["cells"][0], "t");
  EXPECT_EQ(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

TEST_F(ApiHandlerTest, WatchStreamsEventsAfterResourceVersion) {
  auto created = callJson("POST", "/api/v1/namespaces/default/pods", pod("w"), 201);
  std::string rv = created["metadata"]["resourceVersion"];
  auto r = call("GET", "/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv);
  ASSERT_TRUE(r.stream);
  callJson("PATCH", "/api/v1/namespaces/default/pods/w", R"({"metadata":{"labels":{"n":"1"}}})",
           200, "application/merge-patch+json");
  callJson("DELETE", "/api/v1/namespaces/default/pods/w");
  std::string out;
  bool finished = false;
  for (int i = 0; i < 200 && std::count(out.begin(), out.end(), '\n') < 2; ++i) {
    out += r.stream->next(finished);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.stream->close();
  auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos) << out;
  auto e1 = json::parse(out.substr(0, nl));
  auto e2 = json::parse(out.substr(nl + 1, out.find('\n', nl + 1) - nl - 1));
  EXPECT_EQ(e1["type"], "MODIFIED");
  EXPECT_EQ(e2["type"], "DELETED");

  // resourceVersion=0 starts with synthetic ADDED events for what exists.
  callJson("POST", "/api/v1/namespaces/default/pods", pod("w2"), 201);
  auto r0 = call("GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=0");
  ASSERT_TRUE(r0.stream);
  std::string first = r0.stream->next(finished);
  EXPECT_NE(first.find("\"ADDED\""), std::string::npos);
  EXPECT_NE(first.find("\"w2\""), std::string::npos);
  r0.stream->close();
}

// Reads a watch body until a line satisfies `want` (or 10 s pass); returns every line read.
std::vector<json> readEventsUntil(BodyStream& stream,
                                  const std::function<bool(const json&)>& want) {
  std::vector<json> lines;
  std::string buffered;
  bool finished = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline && !finished) {
    buffered += stream.next(finished);
    bool found = false;
    for (size_t nl; (nl = buffered.find('\n')) != std::string::npos;) {
      lines.push_back(json::parse(buffered.substr(0, nl)));
      buffered.erase(0, nl + 1);
      found = found || want(lines.back());
    }
    if (found) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return lines;
}

// allowWatchBookmarks=true: a quiet watch gets a BOOKMARK of its kind carrying the revision it is
// complete through, past writes of other kinds, and not twice for the same revision. Without
// the parameter, or in a Table stream, no bookmark is ever sent.
TEST_F(ApiHandlerTest, QuietWatchGetsBookmarksOnlyWhenItAskedForThem) {
  // The shortest interval served (100 ms).
  handler_ = std::make_unique<ApiHandler>(
      *env_.registry, env_.clock,
      ApiHandlerOptions{.watchBookmarkInterval = std::chrono::milliseconds(0)});
  auto created = callJson("POST", "/api/v1/namespaces/default/pods", pod("w"), 201);
  const std::string rv = created["metadata"]["resourceVersion"];
  const std::string base = "/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv;
  auto asked = call("GET", base + "&allowWatchBookmarks=true");
  auto plain = call("GET", base);
  auto table = call("GET", base + "&allowWatchBookmarks=true", "", "",
                    "application/json;as=Table;v=v1;g=meta.k8s.io");
  ASSERT_TRUE(asked.stream && plain.stream && table.stream);
  EXPECT_NE(asked.stream->nextCall(), std::chrono::steady_clock::time_point::max());
  EXPECT_EQ(plain.stream->nextCall(), std::chrono::steady_clock::time_point::max());

  auto cm = callJson("POST", "/api/v1/namespaces/default/configmaps",
                     R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}})", 201);
  const std::string cmRv = cm["metadata"]["resourceVersion"];
  auto events = readEventsUntil(*asked.stream, [&](const json& e) {
    return e["type"] == "BOOKMARK" && e["object"]["metadata"]["resourceVersion"] == cmRv;
  });
  ASSERT_FALSE(events.empty());
  const json& bookmark = events.back();
  EXPECT_EQ(bookmark["type"], "BOOKMARK") << bookmark.dump();
  EXPECT_EQ(bookmark["object"]["kind"], "Pod");
  EXPECT_EQ(bookmark["object"]["apiVersion"], "v1");
  EXPECT_EQ(bookmark["object"]["metadata"]["resourceVersion"], cmRv);
  bool finished = false;
  EXPECT_EQ(asked.stream->next(finished), "");  // nothing newer: no second bookmark

  // A pod event afterwards reaches all three; the two that did not ask saw no bookmark first.
  callJson("POST", "/api/v1/namespaces/default/pods", pod("w2"), 201);
  for (auto* stream : {plain.stream.get(), table.stream.get()}) {
    auto seen = readEventsUntil(*stream, [](const json& e) { return e["type"] == "ADDED"; });
    ASSERT_FALSE(seen.empty());
    for (const auto& e : seen) EXPECT_NE(e["type"], "BOOKMARK") << e.dump();
    EXPECT_EQ(seen.back()["type"], "ADDED");
  }
  auto after = readEventsUntil(*asked.stream, [](const json& e) { return e["type"] == "ADDED"; });
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.front()["type"], "ADDED");
  for (auto* stream : {asked.stream.get(), plain.stream.get(), table.stream.get()}) {
    stream->close();
  }
}

// A selector watch whose store batch matched nothing polls on instead of returning empty: the
// store notifies only when its buffer turns non-empty, so the consumer (the HTTP server polls
// again only after a notification) would otherwise stall until the watch's timeout.
TEST_F(ApiHandlerTest, SelectorWatchIsNotStalledByABatchThatMatchedNothing) {
  const api::KindInfo* kind = api::findByResource("", "v1", "configmaps");
  ASSERT_NE(kind, nullptr);
  registry::ListQuery query;
  query.labelSelector = "app=wanted";
  auto w =
      env_.registry->watch(*kind, "default", query, std::to_string(env_.store->currentRevision()));
  ASSERT_TRUE(w.isOk());
  std::atomic<int> notified{0};
  (*w)->setNotify([&] { ++notified; });
  const std::string base = "/api/v1/namespaces/default/configmaps";
  for (int i = 0; i < 300; ++i) {
    callJson("POST", base,
             R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c)" + std::to_string(i) +
                 R"("}})",
             201);
  }
  callJson(
      "POST", base,
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"hit","labels":{"app":"wanted"}}})",
      201);
  bool found = false;
  int polledAfter = 0;  // notifications already answered by a poll
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!found && std::chrono::steady_clock::now() < deadline) {
    if (notified.load() == polledAfter) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    polledAfter = notified.load();
    for (const auto& e : (*w)->poll(256)) {
      found = found || (*e.object)["metadata"]["name"] == "hit";
    }
  }
  EXPECT_TRUE(found) << "the matching event never came after " << polledAfter << " notifications";
  (*w)->stop();
}

// A watch asked for as the Python client asks (watch=True) is a watch, not a list.
TEST_F(ApiHandlerTest, WatchParameterIsReadAsKubernetesReadsBooleans) {
  callJson("POST", "/api/v1/namespaces/default/pods", pod("py"), 201);
  auto r = call("GET", "/api/v1/namespaces/default/pods?watch=True");
  ASSERT_TRUE(r.stream) << r.body;
  r.stream->close();
  auto list = call("GET", "/api/v1/namespaces/default/pods?watch=False");
  EXPECT_FALSE(list.stream);
  EXPECT_EQ(json::parse(list.body)["kind"], "PodList");
}

std::vector<std::string> warningsOf(const ServerResponse& r) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers) {
    if (k == "Warning") out.push_back(v);
  }
  return out;
}

// fieldValidation as the apiserver does it: Strict refuses unknown and duplicate fields naming
// them all, Warn (the default) stores without them and answers one Warning each, Ignore drops
// them silently; the same for updates and for what a patch produces.
TEST_F(ApiHandlerTest, FieldValidationStrictWarnAndIgnore) {
  const std::string base = "/apis/apps/v1/namespaces/default/deployments";
  const std::string body = R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"web"},
    "spec":{"replica":2,"replicas":1,"selector":{"matchLabels":{"app":"web"}},
      "template":{"metadata":{"labels":{"app":"web"}},
        "spec":{"containers":[{"name":"c","image":"x","imagee":"y"}]}},"replicas":3}})";

  auto strict = callJson("POST", base + "?fieldValidation=Strict", body, 400);
  EXPECT_EQ(strict["reason"], "BadRequest");
  EXPECT_EQ(strict["message"],
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding "
            "error: unknown field \"spec.replica\", unknown field "
            "\"spec.template.spec.containers[0].imagee\", duplicate field \"spec.replicas\"");
  EXPECT_EQ(call("GET", base + "/web").status, 404);  // nothing written

  EXPECT_EQ(callJson("POST", base + "?fieldValidation=strict", body, 422)["message"],
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: "
            "\"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"");

  auto warned = call("POST", base, body, "application/json");
  ASSERT_EQ(warned.status, 201) << warned.body;
  EXPECT_EQ(warningsOf(warned),
            (std::vector<std::string>{
                R"(299 - "unknown field \"spec.replica\"")",
                R"(299 - "unknown field \"spec.template.spec.containers[0].imagee\"")",
                R"(299 - "duplicate field \"spec.replicas\"")"}));
  auto stored = callJson("GET", base + "/web");
  EXPECT_FALSE(stored["spec"].contains("replica"));
  EXPECT_FALSE(stored["spec"]["template"]["spec"]["containers"][0].contains("imagee"));
  EXPECT_EQ(stored["spec"]["replicas"], 3);  // the last of the duplicates

  // A merge patch adding an unknown field: refused (Strict), dropped with a warning (Warn).
  auto patchStrict =
      callJson("PATCH", base + "/web?fieldValidation=Strict",
               R"({"spec":{"paused":true,"replicass":5}})", 400, "application/merge-patch+json");
  EXPECT_NE(patchStrict["message"].get<std::string>().find("unknown field \"spec.replicass\""),
            std::string::npos);
  EXPECT_FALSE(callJson("GET", base + "/web")["spec"].contains("paused"));
  auto patched = call("PATCH", base + "/web", R"({"spec":{"paused":true,"replicass":5}})",
                      "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(warningsOf(patched),
            std::vector<std::string>{R"(299 - "unknown field \"spec.replicass\"")"});
  EXPECT_EQ(json::parse(patched.body)["spec"]["paused"], true);
  EXPECT_FALSE(json::parse(patched.body)["spec"].contains("replicass"));

  // Update (PUT) with Ignore: dropped, no warning.
  stored = callJson("GET", base + "/web");
  stored["spec"]["minReadySecond"] = 4;
  auto ignored =
      call("PUT", base + "/web?fieldValidation=Ignore", stored.dump(), "application/json");
  ASSERT_EQ(ignored.status, 200) << ignored.body;
  EXPECT_TRUE(warningsOf(ignored).empty());
  EXPECT_FALSE(json::parse(ignored.body)["spec"].contains("minReadySecond"));
}

// A field the platform's own writers stored (no field check for them) and a client echoes back
// is not the client's typo: Strict accepts the write, Warn says nothing.
TEST_F(ApiHandlerTest, FieldsAlreadyStoredAreNotReportedAsUnknown) {
  const auto* kind = api::findByApiVersionKind("v1", "ConfigMap");
  ASSERT_TRUE(env_.registry
                  ->create(*kind, "default",
                           json::parse(R"({"metadata":{"name":"c"},"data":{"a":"1"},"legacy":1})"),
                           {})
                  .isOk());
  auto stored = callJson("GET", "/api/v1/namespaces/default/configmaps/c");
  ASSERT_EQ(stored["legacy"], 1);
  stored["data"]["a"] = "2";
  auto r = call("PUT", "/api/v1/namespaces/default/configmaps/c?fieldValidation=Strict",
                stored.dump(), "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(warningsOf(r).empty());
  EXPECT_EQ(json::parse(r.body)["data"]["a"], "2");
  EXPECT_FALSE(json::parse(r.body).contains("legacy"));  // dropped from what is stored
}

// Warnings from hostile keys: a CR LF never ends the header, a long key is cut at 256 bytes,
// and at most 100 unknown fields are reported (all are dropped).
TEST_F(ApiHandlerTest, WarningsAreSanitizedAndBounded) {
  json body = {
      {"metadata", {{"name", "h"}}}, {"bad\r\nX-Injected: 1", 1}, {std::string(70000, 'k'), 1}};
  for (int i = 0; i < 300; ++i) body["u" + std::to_string(i)] = i;
  auto r = call("POST", "/api/v1/namespaces/default/configmaps", body.dump(), "application/json");
  ASSERT_EQ(r.status, 201) << r.body;
  auto warnings = warningsOf(r);
  EXPECT_EQ(warnings.size(), 100u);
  size_t longest = 0;
  for (const auto& w : warnings) {
    EXPECT_EQ(w.find_first_of("\r\n"), std::string::npos) << w;
    longest = std::max(longest, w.size());
  }
  EXPECT_LT(longest, 300u);
  EXPECT_EQ(json::parse(r.body).size(), 3u) << r.body;  // apiVersion, kind, metadata
}

TEST_F(ApiHandlerTest, UnknownPropagationPolicyIsRefusedNamingIt) {
  callJson("POST", "/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"c"}})", 201);
  auto q = callJson("DELETE", "/api/v1/namespaces/default/configmaps/c?propagationPolicy=Sideways",
                    "", 422);
  EXPECT_NE(
      q["message"].get<std::string>().find("propagationPolicy: Unsupported value: \"Sideways\""),
      std::string::npos)
      << q.dump();
  auto b =
      callJson("DELETE", "/api/v1/namespaces/default/configmaps/c",
               R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"orphan"})", 422);
  EXPECT_EQ(b["reason"], "Invalid");
  callJson("DELETE", "/api/v1/namespaces/default/configmaps/c?propagationPolicy=", "", 422);
  callJson("DELETE", "/api/v1/namespaces/default/configmaps/c",
           R"({"orphanDependents":true,"propagationPolicy":"Orphan"})", 422);
  callJson("GET", "/api/v1/namespaces/default/configmaps/c");  // still there
  callJson("DELETE", "/api/v1/namespaces/default/configmaps/c?propagationPolicy=Orphan");
}

TEST_F(ApiHandlerTest, WatchFromCompactedRevisionIsGone) {
  for (int i = 0; i < 5; ++i) {
    callJson("POST", "/api/v1/namespaces/default/configmaps",
             R"({"metadata":{"name":"c)" + std::to_string(i) + R"("}})", 201);
  }
  ASSERT_TRUE(env_.store->compact(env_.store->currentRevision()).isOk());
  auto r =
      callJson("GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2", "", 410);
  EXPECT_EQ(r["reason"], "Expired");
  EXPECT_EQ(r["code"], 410);
}

TEST_F(ApiHandlerTest, NamespaceDeletionRemovesContents) {
  callJson("POST", "/api/v1/namespaces", R"({"metadata":{"name":"team"}})", 201);
  callJson("POST", "/api/v1/namespaces/team/configmaps", R"({"metadata":{"name":"a"}})", 201);
  callJson("DELETE", "/api/v1/namespaces/team");
  EXPECT_EQ(call("GET", "/api/v1/namespaces/team/configmaps/a").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/namespaces/team").status, 404);
  EXPECT_EQ(callJson("DELETE", "/api/v1/namespaces/default", "", 403)["reason"], "Forbidden");
}

TEST_F(ApiHandlerTest, KubeEdgeKindsRoundTrip) {
  std::string model = R"({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"DeviceModel",
    "metadata":{"name":"thermo"},"spec":{"properties":[{"name":"temp","type":"INT",
    "accessMode":"ReadOnly"}],"futureField":{"kept":true}}})";
  auto m = callJson("POST", "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devicemodels",
                    model, 201);
  EXPECT_EQ(m["spec"]["futureField"]["kept"], true);  // unknown fields are kept
  auto strategic =
      call("PATCH", "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devicemodels/thermo",
           "{}", "application/strategic-merge-patch+json");
  EXPECT_EQ(strategic.status, 415);
  auto cluster = callJson("GET", "/api/v1/namespaces/default");
  EXPECT_EQ(cluster["kind"], "Namespace");
  EXPECT_EQ(cluster["status"]["phase"], "Active");
}

}  // namespace
}  // namespace ep::apiserver
