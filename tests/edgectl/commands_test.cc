// End-to-end tests of the edgectl commands against FakeApi (no server).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "edgectl/apply.h"
#include "edgectl/apply_patch.h"
#include "edgectl/delete.h"
#include "edgectl/describe.h"
#include "edgectl/discovery.h"
#include "edgectl/get.h"
#include "tests/edgectl/fake_api.h"

namespace ep::edgectl {
namespace {

using nlohmann::json;
using testing::FakeApi;
using ::testing::HasSubstr;

constexpr const char* kPodPath = "/api/v1/namespaces/default/pods";

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest() {
    ctx_.api = &api_;
    ctx_.out = &out_;
    ctx_.err = &err_;
    ctx_.in = &in_;
    ctx_.clock = &clock_;
  }

  int apply(const std::string& yamlText) {
    in_.clear();
    in_.str(yamlText);
    ApplyOptions o;
    o.files = {"-"};
    return runApply(ctx_, o);
  }
  void resetOutput() {
    out_.str("");
    err_.str("");
    api_.calls.clear();
  }

  FakeApi api_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::istringstream in_;
  FakeClock clock_{1704067800000};
  Context ctx_;
};

const char* kPodYaml = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: nginx
    image: nginx:1.25
)";

const char* kPodJsonForApply =
    R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},
        "spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}})";

TEST_F(CommandsTest, ApplyCreatesThenUnchangedThenConfigured) {
  ASSERT_EQ(apply(kPodYaml), 0) << err_.str();
  EXPECT_EQ(out_.str(), "pod/web created\n");
  const json* stored = api_.find(std::string(kPodPath) + "/web");
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ((*stored)["metadata"]["namespace"], "default");
  json la = json::parse(
      (*stored)["metadata"]["annotations"][std::string(kLastAppliedAnnotation)].get<std::string>());
  EXPECT_EQ(la["spec"]["containers"][0]["image"], "nginx:1.25");
  EXPECT_FALSE(la["metadata"].contains("annotations"));

  resetOutput();
  ASSERT_EQ(apply(kPodYaml), 0) << err_.str();
  EXPECT_EQ(out_.str(), "pod/web unchanged\n");
  EXPECT_EQ(api_.count("PATCH"), 0u);

  resetOutput();
  std::string changed = kPodYaml;
  changed.replace(changed.find("nginx:1.25"), 10, "nginx:1.26");
  changed.replace(changed.find("    app: web\n"), 13, "");
  changed.replace(changed.find("  labels:\n"), 10, "");
  ASSERT_EQ(apply(changed), 0) << err_.str();
  EXPECT_EQ(out_.str(), "pod/web configured\n");
  ASSERT_EQ(api_.count("PATCH"), 1u);
  const auto& patch = api_.calls.back();
  EXPECT_EQ(patch.contentType, "application/merge-patch+json");
  EXPECT_EQ(patch.body["spec"]["containers"][0]["image"], "nginx:1.26");
  EXPECT_TRUE(patch.body["metadata"]["labels"].is_null());
  stored = api_.find(std::string(kPodPath) + "/web");
  EXPECT_FALSE((*stored)["metadata"].contains("labels"));
  EXPECT_EQ((*stored)["status"]["phase"], "Pending");  // server field untouched
}

TEST_F(CommandsTest, ApplyGroupedAndClusterScopedKinds) {
  ASSERT_EQ(apply(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec: {replicas: 2}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: thermo}
---
apiVersion: v1
kind: Namespace
metadata: {name: prod}
)"),
            0)
      << err_.str();
  EXPECT_EQ(out_.str(),
            "deployment.apps/web created\n"
            "device.devices.kubeedge.io/thermo created\n"
            "namespace/prod created\n");
  EXPECT_NE(api_.find("/apis/apps/v1/namespaces/prod/deployments/web"), nullptr);
  EXPECT_NE(api_.find("/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo"),
            nullptr);
  EXPECT_NE(api_.find("/api/v1/namespaces/prod"), nullptr);
}

TEST_F(CommandsTest, ApplyContinuesPastBadDocumentsAndFails) {
  api_.overrides
      ["POST /api/v1/namespaces/default/configmaps?fieldManager=kubectl-client-side-apply"] =
      FakeApi::status(422, "Invalid", "ConfigMap \"bad\" is invalid",
                      json::array({{{"field", "data[x y]"},
                                    {"message",
                                     "a valid config key must consist of "
                                     "alphanumeric characters"}}}));
  int rc = apply(R"(apiVersion: v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: bad}
data: {"x y": "1"}
---
apiVersion: v1
kind: Pod
---
apiVersion: v1
kind: Pod
metadata: {name: good}
)");
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out_.str(), "pod/good created\n");
  EXPECT_EQ(err_.str(),
            "error: STDIN (document 0): no matches for kind \"Widget\" in version \"v1\"\n"
            "error: STDIN (document 1): ConfigMap \"bad\" is invalid: data[x y]: a valid config "
            "key must consist of alphanumeric characters\n"
            "error: STDIN (document 2): resource name may not be empty\n");
}

TEST_F(CommandsTest, ApplyParseErrorNamesDocument) {
  EXPECT_EQ(apply("a: 1\n---\nb: [1,\n"), 1);
  EXPECT_THAT(err_.str(), HasSubstr("error: error parsing STDIN: document 1: line"));
}

TEST_F(CommandsTest, ApplyNamespaceMismatch) {
  ctx_.ns = "other";
  ctx_.nsExplicit = true;
  EXPECT_EQ(apply("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: prod}\n"), 1);
  EXPECT_THAT(err_.str(), HasSubstr("does not match the namespace \"other\""));
}

TEST_F(CommandsTest, ApplyUnreachableServerStops) {
  api_.transportError =
      unavailableError("cannot reach cloudcore at http://x:1: Connection refused");
  EXPECT_EQ(apply(std::string(kPodYaml) + "---\n" + kPodYaml), 1);
  EXPECT_EQ(err_.str(), "error: cannot reach cloudcore at http://x:1: Connection refused\n");
}

TEST_F(CommandsTest, ApplyRecordsTheClientSideApplyFieldManager) {
  ASSERT_EQ(apply(kPodYaml), 0) << err_.str();
  ASSERT_FALSE(api_.calls.empty());
  EXPECT_EQ(api_.calls.back().method, "POST");
  EXPECT_EQ(api_.calls.back().path,
            std::string(kPodPath) + "?fieldManager=kubectl-client-side-apply");
}

TEST_F(CommandsTest, ApplyServerSideSendsAnApplyPatchAndReportsConflicts) {
  const std::string path = std::string(kPodPath) + "/web?fieldManager=kubectl&force=false";
  api_.overrides["PATCH " + path] = FakeApi::ok(json::parse(kPodJsonForApply));
  in_.str(kPodYaml);
  ApplyOptions o;
  o.files = {"-"};
  o.serverSide = true;
  ASSERT_EQ(runApply(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(), "pod/web serverside-applied\n");
  ASSERT_EQ(api_.calls.size(), 1u);  // no GET first: the server merges
  EXPECT_EQ(api_.calls[0].contentType, "application/apply-patch+yaml");
  EXPECT_EQ(api_.calls[0].body["spec"]["containers"][0]["image"], "nginx:1.25");
  EXPECT_EQ(api_.calls[0].body["metadata"]["namespace"], "default");

  resetOutput();
  api_.overrides["PATCH " + path] =
      FakeApi::status(409, "Conflict",
                      "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: "
                      ".spec.containers[name=\"nginx\"].image");
  in_.clear();
  in_.str(kPodYaml);
  EXPECT_EQ(runApply(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("conflict with \"kubectl-edit\" using v1"));
  EXPECT_THAT(err_.str(), HasSubstr("--force-conflicts"));

  resetOutput();
  o.forceConflicts = true;
  o.fieldManager = "ci";
  api_.overrides["PATCH " + std::string(kPodPath) + "/web?fieldManager=ci&force=true"] =
      FakeApi::ok(json::parse(kPodJsonForApply));
  in_.clear();
  in_.str(kPodYaml);
  ASSERT_EQ(runApply(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(), "pod/web serverside-applied\n");
}

TEST_F(CommandsTest, GetHidesManagedFieldsUnlessAsked) {
  json pod = json::parse(kPodJsonForApply);
  pod["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  api_.put(std::string(kPodPath) + "/web", pod);
  GetOptions g;
  g.args = {"pod", "web"};
  g.output = "json";
  ASSERT_EQ(runGet(ctx_, g), 0) << err_.str();
  EXPECT_FALSE(json::parse(out_.str())["metadata"].contains("managedFields"));
  resetOutput();
  g.showManagedFields = true;
  ASSERT_EQ(runGet(ctx_, g), 0) << err_.str();
  EXPECT_TRUE(json::parse(out_.str())["metadata"].contains("managedFields"));
}

json podTable(std::vector<std::string> names) {
  json rows = json::array();
  for (const auto& n : names) {
    rows.push_back({{"cells", {n, "Running", "1m"}},
                    {"object", {{"metadata", {{"name", n}, {"namespace", "default"}}}}}});
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", {{"resourceVersion", "50"}}},
          {"columnDefinitions",
           {{{"name", "Name"}, {"type", "string"}, {"priority", 0}},
            {{"name", "Status"}, {"type", "string"}, {"priority", 0}},
            {{"name", "Age"}, {"type", "string"}, {"priority", 0}}}},
          {"rows", rows}};
}

TEST_F(CommandsTest, GetTableAsksForServerTable) {
  api_.overrides
      ["GET /api/v1/namespaces/default/pods?labelSelector=app%3Dweb&includeObject="
       "Metadata"] = FakeApi::ok(podTable({"web-1", "web-22"}));
  GetOptions o;
  o.args = {"pods"};
  o.labelSelector = "app=web";
  ASSERT_EQ(runGet(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME     STATUS    AGE\n"
            "web-1    Running   1m\n"
            "web-22   Running   1m\n");
  EXPECT_EQ(api_.calls[0].accept, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
}

TEST_F(CommandsTest, GetEmptyListSaysNoResources) {
  api_.overrides["GET /api/v1/namespaces/default/pods?includeObject=Metadata"] =
      FakeApi::ok(podTable({}));
  GetOptions o;
  o.args = {"pods"};
  EXPECT_EQ(runGet(ctx_, o), 0);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "No resources found in default namespace.\n");

  resetOutput();
  ctx_.allNamespaces = true;
  api_.overrides["GET /api/v1/pods?includeObject=Metadata"] = FakeApi::ok(podTable({}));
  EXPECT_EQ(runGet(ctx_, o), 0);
  EXPECT_EQ(err_.str(), "No resources found\n");
}

TEST_F(CommandsTest, GetMissingNameIsNotFound) {
  GetOptions o;
  o.args = {"pod", "nope"};
  EXPECT_EQ(runGet(ctx_, o), 1);
  EXPECT_EQ(err_.str(), "Error from server (NotFound): pods \"nope\" not found\n");
  resetOutput();
  o.ignoreNotFound = true;
  EXPECT_EQ(runGet(ctx_, o), 0);
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CommandsTest, GetOutputFormats) {
  ASSERT_EQ(apply(kPodYaml), 0);
  resetOutput();
  GetOptions o;
  o.args = {"pod/web"};
  o.output = "name";
  ASSERT_EQ(runGet(ctx_, o), 0);
  EXPECT_EQ(out_.str(), "pod/web\n");

  resetOutput();
  o.output = "json";
  ASSERT_EQ(runGet(ctx_, o), 0);
  json one = json::parse(out_.str());
  EXPECT_EQ(one["kind"], "Pod");
  EXPECT_EQ(one["metadata"]["name"], "web");

  resetOutput();
  o.args = {"pods"};
  ASSERT_EQ(runGet(ctx_, o), 0);
  json list = json::parse(out_.str());
  EXPECT_EQ(list["kind"], "List");
  EXPECT_EQ(list["apiVersion"], "v1");
  EXPECT_EQ(list["metadata"]["resourceVersion"], "");
  ASSERT_EQ(list["items"].size(), 1u);

  resetOutput();
  o.output = "yaml";
  ASSERT_EQ(runGet(ctx_, o), 0);
  EXPECT_THAT(out_.str(), HasSubstr("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n"));
  EXPECT_THAT(out_.str(), HasSubstr("kind: List\nmetadata:\n  resourceVersion: \"\"\n"));

  resetOutput();
  o.output = "bogus";
  EXPECT_EQ(runGet(ctx_, o), 1);
  EXPECT_THAT(err_.str(),
              HasSubstr("allowed formats are: json,jsonpath,jsonpath-file,name,wide,yaml"));

  // -o jsonpath: the object itself for one name, a List otherwise; errors as kubectl's.
  resetOutput();
  o.output = "jsonpath={.items[*].kind}/{.kind}";
  ASSERT_EQ(runGet(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(), "Pod/List");
  resetOutput();
  std::string name = list["items"][0]["metadata"]["name"];
  GetOptions single = o;
  single.args = {"pod", name};
  single.output = "jsonpath={.metadata.name}";
  ASSERT_EQ(runGet(ctx_, single), 0) << err_.str();
  EXPECT_EQ(out_.str(), name);
  resetOutput();
  const std::string file = ::testing::TempDir() + "/edgectl-template.txt";
  std::ofstream(file) << "{.kind}{\"\\n\"}";
  single.output = "jsonpath-file=" + file;
  ASSERT_EQ(runGet(ctx_, single), 0) << err_.str();
  EXPECT_EQ(out_.str(), "Pod\n");
  resetOutput();
  single.output = "jsonpath={.metadata.name";
  EXPECT_EQ(runGet(ctx_, single), 1);
  EXPECT_THAT(err_.str(),
              HasSubstr("error: error parsing jsonpath {.metadata.name, unclosed action"));
  resetOutput();
  single.output = "jsonpath={.spec.containers[7]}";
  EXPECT_EQ(runGet(ctx_, single), 1);
  EXPECT_THAT(err_.str(),
              HasSubstr("Error executing template: array index out of bounds: index 7"));
}

TEST_F(CommandsTest, GetFallsBackToNameAgeWithoutTableSupport) {
  ASSERT_EQ(apply(kPodYaml), 0);
  resetOutput();
  GetOptions o;
  o.args = {"pods"};
  ASSERT_EQ(runGet(ctx_, o), 0);
  EXPECT_EQ(out_.str(), "NAME   AGE\nweb    <unknown>\n");
}

TEST_F(CommandsTest, WatchPrintsListThenEventsAndRelistsOnExpiry) {
  api_.overrides["GET /api/v1/namespaces/default/pods?includeObject=Metadata"] =
      FakeApi::ok(podTable({"a"}));
  json modified = podTable({"a"});
  modified["rows"][0]["cells"][1] = "Succeeded";
  modified["rows"][0]["object"]["metadata"]["resourceVersion"] = "51";
  api_.watchStreams[kPodPath] = {
      {{{"type", "MODIFIED"}, {"object", modified}},
       {{"type", "ERROR"}, {"object", {{"kind", "Status"}, {"code", 410}}}}},
      {{{"type", "ADDED"}, {"object", podTable({"b-longer-name"})}}}};
  GetOptions o;
  o.args = {"pods"};
  o.watch = true;
  o.maxWatchEvents = 2;
  ASSERT_EQ(runGet(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME   STATUS    AGE\n"
            "a      Running   1m\n"
            "a      Succeeded   1m\n"
            "a      Running     1m\n"
            "b-longer-name   Running     1m\n");
  std::vector<std::string> watches;
  for (const auto& c : api_.calls) {
    if (c.method == "WATCH") watches.push_back(c.path);
  }
  ASSERT_EQ(watches.size(), 2u);
  EXPECT_THAT(watches[0], HasSubstr("watch=1&resourceVersion=50"));
  EXPECT_THAT(watches[1], HasSubstr("resourceVersion=50"));  // relisted version
}

TEST_F(CommandsTest, WatchReusesColumnDefinitionsSentOnce) {
  api_.overrides["GET /api/v1/namespaces/default/pods?includeObject=Metadata"] =
      FakeApi::ok(podTable({}));
  json first = podTable({"a"});
  json second = podTable({"b"});
  second["columnDefinitions"] = json::array();  // sent only once, like Kubernetes
  api_.watchStreams[kPodPath] = {
      {{{"type", "ADDED"}, {"object", first}}, {{"type", "ADDED"}, {"object", second}}}};
  GetOptions o;
  o.args = {"pods"};
  o.watchOnly = true;
  o.outputWatchEvents = true;
  o.maxWatchEvents = 2;
  ASSERT_EQ(runGet(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "EVENT   NAME   STATUS    AGE\n"
            "ADDED   a      Running   1m\n"
            "ADDED   b      Running   1m\n");
}

TEST_F(CommandsTest, DescribePodWithEvents) {
  ASSERT_EQ(apply(kPodYaml), 0);
  api_.overrides
      ["GET /api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb%"
       "2CinvolvedObject.namespace%3Ddefault%2CinvolvedObject.uid%3Duid-web"] =
      FakeApi::ok({{"items", json::array({{{"type", "Warning"},
                                           {"reason", "BackOff"},
                                           {"message", "Back-off pulling image"},
                                           {"lastTimestamp", "2024-01-01T00:09:00Z"},
                                           {"source", {{"component", "edged"}}}}})}});
  resetOutput();
  DescribeOptions o;
  o.args = {"pods", "web"};
  ASSERT_EQ(runDescribe(ctx_, o), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("Name:         web\n"));
  EXPECT_THAT(out_.str(), HasSubstr("  Warning  BackOff  60s   edged  Back-off pulling image\n"));

  resetOutput();
  o.args = {"pods", "missing"};
  EXPECT_EQ(runDescribe(ctx_, o), 1);
  EXPECT_EQ(err_.str(), "Error from server (NotFound): pods \"missing\" not found\n");
}

TEST_F(CommandsTest, DeleteByNameWaitsUntilGone) {
  ASSERT_EQ(apply(kPodYaml), 0);
  resetOutput();
  api_.deleteLingers = 2;
  DeleteOptions o;
  o.args = {"pod", "web", "ghost"};
  o.pollInterval = std::chrono::milliseconds(1);
  EXPECT_EQ(runDelete(ctx_, o), 1);
  EXPECT_EQ(out_.str(), "pod \"web\" deleted\n");
  EXPECT_EQ(err_.str(), "Error from server (NotFound): pods \"ghost\" not found\n");
  EXPECT_EQ(api_.calls[0].method, "DELETE");
  EXPECT_EQ(api_.calls[0].body, json::parse(R"({"kind":"DeleteOptions","apiVersion":"v1",
                            "propagationPolicy":"Background"})"));
  EXPECT_EQ(api_.count("GET"), 3u);  // two lingering answers, then 404

  resetOutput();
  o.args = {"pod", "ghost"};
  o.ignoreNotFound = true;
  EXPECT_EQ(runDelete(ctx_, o), 0);
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CommandsTest, DeleteBySelectorAndFile) {
  ASSERT_EQ(apply(kPodYaml), 0);
  ASSERT_EQ(apply("apiVersion: v1\nkind: Pod\nmetadata: {name: other}\n"), 0);
  resetOutput();
  DeleteOptions o;
  o.args = {"pods"};
  EXPECT_EQ(runDelete(ctx_, o), 1);
  EXPECT_EQ(err_.str(), "error: resource(s) were provided, but no name was specified\n");

  resetOutput();
  o.all = true;
  o.wait = false;
  EXPECT_EQ(runDelete(ctx_, o), 0);
  EXPECT_EQ(out_.str(), "pod \"other\" deleted\npod \"web\" deleted\n");

  ASSERT_EQ(apply(kPodYaml), 0);
  resetOutput();
  in_.clear();
  in_.str(kPodYaml);
  DeleteOptions f;
  f.files = {"-"};
  f.wait = false;
  EXPECT_EQ(runDelete(ctx_, f), 0) << err_.str();
  EXPECT_EQ(out_.str(), "pod \"web\" deleted\n");
}

TEST_F(CommandsTest, ApiResourcesFromDiscovery) {
  api_.overrides["GET /api/v1"] = FakeApi::ok(json::parse(R"({"kind":"APIResourceList",
    "groupVersion":"v1","resources":[
      {"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","shortNames":["po"],
       "verbs":["get","list"]},
      {"name":"pods/status","namespaced":true,"kind":"Pod"},
      {"name":"nodes","namespaced":false,"kind":"Node","shortNames":["no"]}]})"));
  api_.overrides["GET /apis"] = FakeApi::ok(json::parse(R"({"kind":"APIGroupList","groups":[
    {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],
     "preferredVersion":{"groupVersion":"apps/v1","version":"v1"}}]})"));
  api_.overrides["GET /apis/apps/v1"] = FakeApi::ok(json::parse(R"({"groupVersion":"apps/v1",
    "resources":[{"name":"deployments","namespaced":true,"kind":"Deployment",
                  "shortNames":["deploy"]}]})"));
  ASSERT_EQ(runApiResources(ctx_, {}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "NAME          SHORTNAMES   APIVERSION   NAMESPACED   KIND\n"
            "nodes         no           v1           false        Node\n"
            "pods          po           v1           true         Pod\n"
            "deployments   deploy       apps/v1      true         Deployment\n");
}

TEST_F(CommandsTest, VersionPrintsClientAndServer) {
  api_.overrides["GET /version"] = FakeApi::ok({{"gitVersion", "v0.1.0-cloudcore"}});
  ASSERT_EQ(runVersion(ctx_, {}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("Client Version: v"));
  EXPECT_THAT(out_.str(), HasSubstr("Server Version: v0.1.0-cloudcore\n"));
  resetOutput();
  api_.transportError = unavailableError("cannot reach cloudcore at http://x:1: refused");
  EXPECT_EQ(runVersion(ctx_, {}), 1);
  EXPECT_THAT(out_.str(), HasSubstr("Client Version: v"));
  EXPECT_EQ(err_.str(), "error: cannot reach cloudcore at http://x:1: refused\n");
}

}  // namespace
}  // namespace ep::edgectl
