#include "common/api/managed_fields.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ep::api {
namespace {

using nlohmann::json;

const ManagerInfo kKubectl{"kubectl", "apps/v1", "2026-12-06T10:00:00Z"};
const ManagerInfo kEdit{"kubectl-edit", "apps/v1", "2026-12-06T11:00:00Z"};

json deployment(int replicas, const char* image) {
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}, {"namespace", "default"}, {"labels", {{"app", "web"}}}}},
      {"spec",
       {{"replicas", replicas},
        {"template",
         {{"spec",
           {{"containers",
             {{{"name", "app"}, {"image", image}, {"ports", {{{"containerPort", 80}}}}}}}}}}}}}};
}

json entryOf(const json& object, const std::string& manager) {
  for (const auto& e : object["metadata"]["managedFields"]) {
    if (e["manager"] == manager) return e;
  }
  return nullptr;
}

TEST(ManagedFieldsTest, FieldSetUsesKubernetesPathElements) {
  json set = fieldSetOf(deployment(2, "nginx:1"), /*builtin=*/true);
  EXPECT_EQ(set, json::parse(R"({
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
      "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}})"));
  EXPECT_EQ(
      fieldSetPaths(set),
      (std::vector<std::string>{
          ".metadata.labels.app", ".spec.replicas", ".spec.template.spec.containers[name=\"app\"]",
          ".spec.template.spec.containers[name=\"app\"].image",
          ".spec.template.spec.containers[name=\"app\"].name",
          ".spec.template.spec.containers[name=\"app\"].ports[containerPort=80,protocol="
          "\"TCP\"]",
          ".spec.template.spec.containers[name=\"app\"].ports[containerPort=80,protocol="
          "\"TCP\"].containerPort"}));
}

TEST(ManagedFieldsTest, FinalizersAreASetAndCustomKindListsAtomic) {
  json obj = {{"metadata", {{"finalizers", {"a", "b"}}}}, {"spec", {{"items", {{{"x", 1}}}}}}};
  EXPECT_EQ(fieldSetOf(obj, true)["f:metadata"]["f:finalizers"],
            json::parse(R"({"v:\"a\"": {}, "v:\"b\"": {}})"));
  EXPECT_EQ(fieldSetOf(obj, false)["f:metadata"]["f:finalizers"], json::object());
  EXPECT_EQ(fieldSetOf(obj, false)["f:spec"]["f:items"], json::object());
}

TEST(ManagedFieldsTest, UpdateOwnsWhatItChangesAndTakesItFromOthers) {
  json created = deployment(2, "nginx:1");
  json managed =
      recordUpdate(json::array(), nullptr, created, {"kubectl-create", "apps/v1", "t0"}, true);
  ASSERT_EQ(managed.size(), 1u);
  EXPECT_EQ(managed[0]["operation"], "Update");
  EXPECT_EQ(managed[0]["fieldsType"], "FieldsV1");

  json scaled = created;
  scaled["spec"]["replicas"] = 5;
  json after = recordUpdate(managed, &created, scaled, kEdit, true);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_FALSE(after[0]["fieldsV1"]["f:spec"].contains("f:replicas"));
  EXPECT_EQ(after[1]["manager"], "kubectl-edit");
  EXPECT_EQ(fieldSetPaths(after[1]["fieldsV1"]), std::vector<std::string>{".spec.replicas"});

  // Nothing changed: the same list, times included.
  EXPECT_EQ(recordUpdate(after, &scaled, scaled, kEdit, true), after);
}

TEST(ManagedFieldsTest, ApplyConflictsWithAnotherManagersChangedField) {
  json live = deployment(2, "nginx:1");
  live["metadata"]["managedFields"] =
      recordUpdate(json::array(), nullptr, live, {"kubectl-create", "apps/v1", "t0"}, true);

  // The same values: shared ownership, no conflict.
  auto same = applyConfiguration(live, deployment(2, "nginx:1"), kKubectl, false, true);
  ASSERT_TRUE(same.isOk()) << same.status().toString();
  EXPECT_EQ(entryOf(*same, "kubectl")["operation"], "Apply");
  EXPECT_TRUE(entryOf(*same, "kubectl-create")["fieldsV1"]["f:spec"].contains("f:replicas"));

  auto changed = applyConfiguration(live, deployment(3, "nginx:1"), kKubectl, false, true);
  ASSERT_FALSE(changed.isOk());
  EXPECT_EQ(changed.status().code(), Code::kConflict);
  EXPECT_EQ(changed.status().message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: "
            ".spec.replicas");
  ASSERT_EQ(changed.status().causes().size(), 1u);
  EXPECT_EQ(changed.status().causes()[0].reason, "FieldManagerConflict");
  EXPECT_EQ(changed.status().causes()[0].field, ".spec.replicas");
  EXPECT_EQ(changed.status().causes()[0].message, "conflict with \"kubectl-create\" using apps/v1");

  auto two = applyConfiguration(live, deployment(3, "nginx:2"), kKubectl, false, true);
  ASSERT_FALSE(two.isOk());
  EXPECT_EQ(two.status().message(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using apps/v1:\n"
            "- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image");

  auto forced = applyConfiguration(live, deployment(3, "nginx:1"), kKubectl, true, true);
  ASSERT_TRUE(forced.isOk()) << forced.status().toString();
  EXPECT_EQ((*forced)["spec"]["replicas"], 3);
  ASSERT_FALSE(entryOf(*forced, "kubectl-create").is_null());  // it keeps its other fields
  EXPECT_FALSE(entryOf(*forced, "kubectl-create")["fieldsV1"]["f:spec"].contains("f:replicas"));
  EXPECT_TRUE(entryOf(*forced, "kubectl")["fieldsV1"]["f:spec"].contains("f:replicas"));
}

TEST(ManagedFieldsTest, ApplyRemovesWhatItNoLongerAppliesUnlessOthersOwnIt) {
  json live = deployment(2, "nginx:1");
  live["metadata"]["managedFields"] = applyCreateManagedFields(live, kKubectl, true);
  live["metadata"]["labels"]["team"] = "a";
  live["metadata"]["annotations"] = {{"note", "x"}};
  auto withTeam = applyConfiguration(live, live, kKubectl, false, true);
  ASSERT_TRUE(withTeam.isOk()) << withTeam.status().toString();

  // Another manager owns the annotation: it stays when kubectl stops applying it.
  json edited = *withTeam;
  edited["metadata"]["annotations"]["note"] = "y";
  edited["metadata"]["managedFields"] =
      recordUpdate((*withTeam)["metadata"]["managedFields"], &*withTeam, edited, kEdit, true);

  json config = deployment(2, "nginx:1");  // no team label, no annotation
  auto r = applyConfiguration(edited, config, kKubectl, false, true);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_FALSE((*r)["metadata"]["labels"].contains("team"));
  EXPECT_EQ((*r)["metadata"]["annotations"]["note"], "y");
  EXPECT_EQ((*r)["metadata"]["labels"]["app"], "web");

  // A container the configuration drops goes with its fields.
  json twoContainers = config;
  twoContainers["spec"]["template"]["spec"]["containers"].push_back(
      {{"name", "sidecar"}, {"image", "busybox"}});
  auto both = applyConfiguration(*r, twoContainers, kKubectl, false, true);
  ASSERT_TRUE(both.isOk());
  EXPECT_EQ((*both)["spec"]["template"]["spec"]["containers"].size(), 2u);
  auto one = applyConfiguration(*both, config, kKubectl, false, true);
  ASSERT_TRUE(one.isOk());
  ASSERT_EQ((*one)["spec"]["template"]["spec"]["containers"].size(), 1u);
  EXPECT_EQ((*one)["spec"]["template"]["spec"]["containers"][0]["name"], "app");
}

TEST(ManagedFieldsTest, ReapplyingTheSameConfigurationChangesNothing) {
  json live = deployment(2, "nginx:1");
  live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP";  // defaulted
  live["metadata"]["managedFields"] =
      applyCreateManagedFields(deployment(2, "nginx:1"), kKubectl, true);
  ManagerInfo later = kKubectl;
  later.time = "2026-12-07T00:00:00Z";
  auto r = applyConfiguration(live, deployment(2, "nginx:1"), later, false, true);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(*r, live);
}

TEST(ManagedFieldsTest, ObjectsWithoutManagedFieldsBelongToBeforeFirstApply) {
  json live = deployment(2, "nginx:1");
  auto r = applyConfiguration(live, deployment(4, "nginx:1"), kKubectl, false, true);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(),
            "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: "
            ".spec.replicas");
}

TEST(ManagedFieldsTest, KubectlTakesOverWhatClientSideApplyApplied) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata",
              {{"name", "settings"},
               {"annotations",
                {{"kubectl.kubernetes.io/last-applied-configuration",
                  R"({"apiVersion":"v1","kind":"ConfigMap","data":{"a":"1"},)"
                  R"("metadata":{"name":"settings"}})"}}}}},
             {"data", {{"a", "1"}}}};
  cm["metadata"]["managedFields"] =
      recordUpdate(json::array(), nullptr, cm, {"kubectl-client-side-apply", "v1", "t0"}, true);
  json config = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "settings"}}},
                 {"data", {{"a", "2"}}}};
  auto other = applyConfiguration(cm, config, {"ci", "v1", "t1"}, false, true);
  ASSERT_FALSE(other.isOk());
  EXPECT_EQ(other.status().message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: "
            ".data.a");
  auto r = applyConfiguration(cm, config, {"kubectl", "v1", "t1"}, false, true);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ((*r)["data"]["a"], "2");
  EXPECT_EQ(json::parse(
                (*r)["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                    .get<std::string>())["data"]["a"],
            "2");
  ASSERT_FALSE(entryOf(*r, "kubectl-client-side-apply").is_null());  // keeps the annotation
  EXPECT_FALSE(entryOf(*r, "kubectl-client-side-apply")["fieldsV1"].contains("f:data"));
}

// As the apiserver: a keyed list element without its key, or two with the same key, cannot be
// applied (merging them would not be repeatable).
TEST(ManagedFieldsTest, UnkeyableListsInAConfigurationAreRefused) {
  json config = deployment(1, "x");
  config["spec"]["template"]["spec"]["containers"][0]["ports"] = {{{"name", "http"}}};
  auto r = applyConfiguration(deployment(1, "x"), config, kKubectl, false, true);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kBadRequest);
  EXPECT_EQ(r.status().message(),
            "the applied configuration cannot be merged: .spec.template.spec.containers[name="
            "\"app\"].ports: element 0: associative list with keys has an element that omits key "
            "field \"containerPort\"");
  json twice = deployment(1, "x");
  twice["spec"]["template"]["spec"]["containers"].push_back(
      twice["spec"]["template"]["spec"]["containers"][0]);
  auto dup = applyConfiguration(deployment(1, "x"), twice, kKubectl, false, true);
  ASSERT_FALSE(dup.isOk());
  EXPECT_NE(dup.status().message().find("element 1: duplicate entries for key {\"name\":\"app\"}"),
            std::string::npos)
      << dup.status().message();
  // Service ports are keyed by port and protocol.
  json svc = {{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", {{"name", "s"}}},
              {"spec", {{"ports", {{{"port", 80}, {"targetPort", 8080}}}}}}};
  EXPECT_EQ(fieldSetPaths(fieldSetOf(svc, true))[0], ".spec.ports[port=80,protocol=\"TCP\"]");
}

// An object applied empty (`resources: {}`, as `kubectl create --dry-run -o yaml` writes) and
// later applied with fields keeps them; a field nobody has any more is no conflict.
TEST(ManagedFieldsTest, EmptyObjectsFillAndStaleOwnershipDoesNotConflict) {
  json first = deployment(1, "x");
  first["spec"]["template"]["spec"]["containers"][0]["resources"] = json::object();
  json live = first;
  live["metadata"]["managedFields"] = applyCreateManagedFields(first, kKubectl, true);
  json second = deployment(1, "x");
  second["spec"]["template"]["spec"]["containers"][0]["resources"] = {
      {"limits", {{"cpu", "500m"}}}};
  auto r = applyConfiguration(live, second, kKubectl, false, true);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ((*r)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "500m");
  auto again = applyConfiguration(*r, second, kKubectl, false, true);
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(*again, *r);

  // kubectl-edit once set an annotation that the platform has since removed.
  json stale = deployment(1, "x");
  stale["metadata"]["managedFields"] = json::array(
      {{{"manager", "kubectl-edit"},
        {"operation", "Update"},
        {"apiVersion", "apps/v1"},
        {"fieldsType", "FieldsV1"},
        {"fieldsV1", {{"f:metadata", {{"f:annotations", {{"f:note", json::object()}}}}}}}}});
  json withNote = deployment(1, "x");
  withNote["metadata"]["annotations"] = {{"note", "mine"}};
  auto noted = applyConfiguration(stale, withNote, kKubectl, false, true);
  ASSERT_TRUE(noted.isOk()) << noted.status().toString();
  EXPECT_EQ((*noted)["metadata"]["annotations"]["note"], "mine");
}

TEST(ManagedFieldsTest, WritesByNoManagerDropFieldsTheObjectNoLongerHas) {
  json live = deployment(2, "nginx:1");
  json managed =
      recordUpdate(json::array(), nullptr, live, {"kubectl-create", "apps/v1", "t"}, true);
  EXPECT_EQ(forgetRemovedFields(managed, live, true), managed);
  json without = live;
  without["metadata"].erase("labels");
  json trimmed = forgetRemovedFields(managed, without, true);
  ASSERT_EQ(trimmed.size(), 1u);
  EXPECT_FALSE(trimmed[0]["fieldsV1"]["f:metadata"].contains("f:labels")) << trimmed.dump();
  EXPECT_TRUE(trimmed[0]["fieldsV1"]["f:spec"].contains("f:replicas"));
  EXPECT_TRUE(forgetRemovedFields(managed, json::object(), true).empty());

  // An object applied empty that defaults then filled (`strategy: {}`) stays owned, so
  // reapplying that configuration still writes nothing.
  json config = deployment(2, "nginx:1");
  config["spec"]["strategy"] = json::object();
  json applied = applyCreateManagedFields(config, kKubectl, true);
  json defaulted = config;
  defaulted["spec"]["strategy"] = {{"type", "RollingUpdate"}};
  EXPECT_EQ(forgetRemovedFields(applied, defaulted, true), applied);
  EXPECT_EQ(recordUpdate(applied, &defaulted, defaulted, kEdit, true), applied);
  defaulted["metadata"]["managedFields"] = applied;
  auto again = applyConfiguration(defaulted, config, kKubectl, false, true);
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  EXPECT_EQ(*again, defaulted);
}

TEST(ManagedFieldsTest, BadManagedFieldsAndDirectivesAreRefused) {
  EXPECT_TRUE(validManagedFields(json::array()));
  EXPECT_FALSE(validManagedFields(json::object()));
  EXPECT_FALSE(validManagedFields(json::parse(R"([{"manager":"a","operation":"Delete",
                                                   "fieldsV1":{}}])")));
  EXPECT_FALSE(validManagedFields(json::parse(R"([{"operation":"Apply","fieldsV1":{}}])")));
  EXPECT_TRUE(validManagedFields(json::parse(R"([{"manager":"a","operation":"Apply",
                                                  "fieldsType":"FieldsV1","fieldsV1":{}}])")));
  json config = deployment(1, "x");
  config["spec"]["$patch"] = "replace";
  auto r = applyConfiguration(deployment(1, "x"), config, kKubectl, false, true);
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kBadRequest);
  EXPECT_FALSE(applyConfiguration(deployment(1, "x"), json::array(), kKubectl, false, true).isOk());
}

}  // namespace
}  // namespace ep::api
