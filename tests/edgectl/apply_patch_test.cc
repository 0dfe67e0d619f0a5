#include "edgectl/apply_patch.h"

#include <gtest/gtest.h>

namespace ep::edgectl {
namespace {

using nlohmann::json;

const std::string kLA(kLastAppliedAnnotation);

json pod(const std::string& image, json labels = {{"app", "web"}}) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", "web"}, {"namespace", "default"}, {"labels", labels}}},
          {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}};
}

// What the server would hold after creating `manifest` (annotation plus server fields).
json liveFrom(const json& manifest) {
  json live = withLastApplied(manifest);
  live["metadata"]["uid"] = "u1";
  live["metadata"]["resourceVersion"] = "7";
  live["spec"]["restartPolicy"] = "Always";  // defaulted by the server
  live["status"] = {{"phase", "Running"}};
  return live;
}

TEST(MergePatchTest, Rfc7386Semantics) {
  json target = json::parse(R"({"a":"b","c":{"d":"e","f":"g"},"l":[1,2]})");
  applyMergePatch(target, json::parse(R"({"a":"z","c":{"f":null},"l":[3],"n":{"x":1}})"));
  EXPECT_EQ(target, json::parse(R"({"a":"z","c":{"d":"e"},"l":[3],"n":{"x":1}})"));
  json scalar = json::parse(R"({"a":1})");
  applyMergePatch(scalar, json::parse(R"(["x"])"));
  EXPECT_EQ(scalar, json::parse(R"(["x"])"));
}

TEST(ThreeWayPatchTest, AdditionsChangesAndRemovals) {
  json original = json::parse(R"({"a":1,"b":2,"m":{"x":1,"y":2}})");
  json modified = json::parse(R"({"a":1,"c":3,"m":{"x":5}})");
  json current = json::parse(R"({"a":1,"b":2,"m":{"x":1,"y":2,"z":9},"server":true})");
  EXPECT_EQ(threeWayMergePatch(original, modified, current),
            json::parse(R"({"b":null,"c":3,"m":{"x":5,"y":null}})"));
}

TEST(ThreeWayPatchTest, ListsAreReplacedWholesale) {
  json original = json::parse(R"({"l":[1,2,3]})");
  json modified = json::parse(R"({"l":[1,2]})");
  json current = json::parse(R"({"l":[1,2,3]})");
  EXPECT_EQ(threeWayMergePatch(original, modified, current), json::parse(R"({"l":[1,2]})"));
}

TEST(ThreeWayPatchTest, ServerDefaultsInsideListsAreNotAChange) {
  json original = json::parse(R"({"c":[{"name":"a","ports":[{"containerPort":80}]}]})");
  json current = json::parse(
      R"({"c":[{"name":"a","imagePullPolicy":"Always","ports":[{"containerPort":80,"protocol":"TCP"}]}]})");
  EXPECT_EQ(threeWayMergePatch(original, original, current), json::object());
  // The user removing a member of a list element is still sent.
  json modified = json::parse(R"({"c":[{"name":"a"}]})");
  EXPECT_EQ(threeWayMergePatch(original, modified, current), modified);
  // Without a last-applied value the list is sent.
  EXPECT_EQ(threeWayMergePatch(json::object(), original, current), original);
  // Live drift inside the list (not just added members) is restored.
  json drifted = json::parse(R"({"c":[{"name":"a","ports":[{"containerPort":81}]}]})");
  EXPECT_EQ(threeWayMergePatch(original, original, drifted), original);
}

TEST(ThreeWayPatchTest, LiveDriftIsRestored) {
  json original = json::parse(R"({"replicas":3})");
  json modified = json::parse(R"({"replicas":3})");
  json current = json::parse(R"({"replicas":5})");
  EXPECT_EQ(threeWayMergePatch(original, modified, current), json::parse(R"({"replicas":3})"));
}

TEST(LastAppliedTest, ExcludesItsOwnAnnotation) {
  json m = pod("nginx:1");
  m["metadata"]["annotations"] = {{kLA, "old"}};
  json stored = json::parse(lastAppliedConfig(m));
  EXPECT_FALSE(stored["metadata"].contains("annotations"));
  EXPECT_EQ(stored["spec"], m["spec"]);
  json with = withLastApplied(m);
  EXPECT_EQ(with["metadata"]["annotations"][kLA], lastAppliedConfig(m));
}

TEST(PlanApplyTest, SameManifestIsUnchanged) {
  json m = pod("nginx:1");
  ApplyPlan plan = planApply(m, liveFrom(m));
  EXPECT_TRUE(plan.unchanged);
  EXPECT_TRUE(plan.hadLastApplied);
  EXPECT_EQ(plan.patch["metadata"]["annotations"][kLA], lastAppliedConfig(m));
}

TEST(PlanApplyTest, ChangedImageIsConfigured) {
  json before = pod("nginx:1");
  json after = pod("nginx:2");
  ApplyPlan plan = planApply(after, liveFrom(before));
  EXPECT_FALSE(plan.unchanged);
  EXPECT_EQ(plan.patch["spec"]["containers"][0]["image"], "nginx:2");
  EXPECT_EQ(plan.patch["metadata"]["annotations"][kLA], lastAppliedConfig(after));
  // Server-owned and defaulted fields are not touched.
  EXPECT_FALSE(plan.patch.contains("status"));
  EXPECT_FALSE(plan.patch["spec"].contains("restartPolicy"));
  EXPECT_FALSE(plan.patch["metadata"].contains("uid"));
}

TEST(PlanApplyTest, RemovedLabelBecomesNull) {
  json before = pod("nginx:1", {{"app", "web"}, {"tier", "front"}});
  json after = pod("nginx:1", {{"app", "web"}});
  ApplyPlan plan = planApply(after, liveFrom(before));
  EXPECT_FALSE(plan.unchanged);
  EXPECT_TRUE(plan.patch["metadata"]["labels"]["tier"].is_null());
  EXPECT_FALSE(plan.patch["metadata"]["labels"].contains("app"));
  json result = liveFrom(before);
  applyMergePatch(result, plan.patch);
  EXPECT_FALSE(result["metadata"]["labels"].contains("tier"));
  EXPECT_EQ(result["metadata"]["labels"]["app"], "web");
}

TEST(PlanApplyTest, LabelsAddedByOthersSurvive) {
  json m = pod("nginx:1");
  json live = liveFrom(m);
  live["metadata"]["labels"]["added-by-controller"] = "yes";
  ApplyPlan plan = planApply(m, live);
  EXPECT_TRUE(plan.unchanged);
}

TEST(PlanApplyTest, MissingAnnotationIsReportedAndAdded) {
  json m = pod("nginx:1");
  json live = liveFrom(m);
  live["metadata"].erase("annotations");
  ApplyPlan plan = planApply(m, live);
  EXPECT_FALSE(plan.hadLastApplied);
  EXPECT_FALSE(plan.unchanged);  // the annotation itself must be written
  EXPECT_EQ(plan.patch["metadata"]["annotations"][kLA], lastAppliedConfig(m));
}

TEST(PlanApplyTest, RemovedNestedMapAndListChange) {
  json before = pod("nginx:1");
  before["spec"]["nodeSelector"] = {{"zone", "a"}};
  before["spec"]["tolerations"] = json::array({{{"key", "k"}, {"operator", "Exists"}}});
  json after = pod("nginx:1");
  after["spec"]["tolerations"] = json::array();
  ApplyPlan plan = planApply(after, liveFrom(before));
  EXPECT_TRUE(plan.patch["spec"]["nodeSelector"].is_null());
  EXPECT_EQ(plan.patch["spec"]["tolerations"], json::array());
}

}  // namespace
}  // namespace ep::edgectl
