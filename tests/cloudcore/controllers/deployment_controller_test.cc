#include "cloudcore/controllers/deployment_controller.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "cloudcore/controllers/replicaset_controller.h"
#include "tests/cloudcore/controllers/workload_fixture.h"

namespace ep::controllers {
namespace {

using testing::json;

class DeploymentControllerTest : public testing::WorkloadTest {
 protected:
  void SetUp() override {
    WorkloadTest::SetUp();
    rsc_ = std::make_unique<ReplicaSetController>(reg(), env_.clock);
    dc_ = std::make_unique<DeploymentController>(reg(), env_.clock);
  }
  json createDeployment(const std::string& name, int replicas, json strategy = nullptr,
                        const std::string& image = "nginx:1.25") {
    json spec = podSpec();
    spec["containers"][0]["image"] = image;
    json d = {{"metadata", {{"name", name}}},
              {"spec",
               {{"replicas", replicas},
                {"selector", {{"matchLabels", {{"app", name}}}}},
                {"template", {{"metadata", {{"labels", {{"app", name}}}}}, {"spec", spec}}}}}};
    if (!strategy.is_null()) d["spec"]["strategy"] = strategy;
    auto r = reg().create(deploymentKind(), "default", d);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : json();
  }
  json deployment(const std::string& name) {
    auto r = reg().get(deploymentKind(), "default", name);
    return r.isOk() ? *r : json();
  }
  void setImage(const std::string& name, const std::string& image, const std::string& cause = "") {
    json next = deployment(name);
    next["spec"]["template"]["spec"]["containers"][0]["image"] = image;
    if (!cause.empty())
      next["metadata"]["annotations"][std::string(kChangeCauseAnnotation)] = cause;
    auto r = reg().update(deploymentKind(), "default", name, next);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  std::vector<json> replicaSets() {
    auto r = reg().list(replicaSetKind(), "default", {});
    EXPECT_TRUE(r.isOk());
    std::vector<json> out = r.isOk() ? r->items : std::vector<json>();
    std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
      return std::stoll(annotation(a, kRevisionAnnotation)) <
             std::stoll(annotation(b, kRevisionAnnotation));
    });
    return out;
  }
  // One round of both controllers.
  void step() {
    ASSERT_TRUE(dc_->reconcileOnce().isOk());
    ASSERT_TRUE(rsc_->reconcileOnce().isOk());
    ASSERT_TRUE(dc_->reconcileOnce().isOk());
  }
  // The edge reports every pod Ready.
  void allReady() {
    for (const auto& p : pods()) {
      if (!isPodReady(p)) setPodReady(nameOf(p));
    }
  }
  int activeCount() {
    int n = 0;
    for (const auto& p : pods()) n += isActive(p);
    return n;
  }
  int readyCount() {
    int n = 0;
    for (const auto& p : pods()) n += isActive(p) && isPodReady(p);
    return n;
  }
  std::string condition(const std::string& name, const std::string& type,
                        const std::string& field = "reason") {
    json d = deployment(name);
    const json* c = findCondition(d, type);
    return c ? str(*c, field) : "";
  }

  std::unique_ptr<ReplicaSetController> rsc_;
  std::unique_ptr<DeploymentController> dc_;
};

TEST_F(DeploymentControllerTest, HashAndFenceposts) {
  json t = {{"metadata", {{"labels", {{"app", "x"}}}}}, {"spec", {{"containers", json::array()}}}};
  EXPECT_EQ(podTemplateHash(t), podTemplateHash(t));
  json t2 = t;
  t2["metadata"]["labels"]["pod-template-hash"] = "zzz";
  EXPECT_EQ(podTemplateHash(t), podTemplateHash(t2)) << "the hash label itself is ignored";
  t2["metadata"]["labels"]["v"] = "2";
  EXPECT_NE(podTemplateHash(t), podTemplateHash(t2));
  EXPECT_NE(podTemplateHash(t), podTemplateHash(t, 1));
  EXPECT_EQ(podTemplateHash(t).find_first_not_of("bcdfghjklmnpqrstvwxz2456789"), std::string::npos);
  EXPECT_EQ(resolveIntOrPercent("25%", 10, true), 3);
  EXPECT_EQ(resolveIntOrPercent("25%", 10, false), 2);
  EXPECT_EQ(resolveIntOrPercent(2, 10, false), 2);
  EXPECT_EQ(resolveIntOrPercent("100%", 3, true), 3);
}

TEST_F(DeploymentControllerTest, CreateMakesReplicaSetPodsAndStatus) {
  json d = createDeployment("web", 3);
  step();
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 1u);
  const json& rs = sets[0];
  std::string hash = podTemplateHash(d["spec"]["template"]);
  EXPECT_EQ(nameOf(rs), "web-" + hash);
  EXPECT_EQ(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash);
  EXPECT_EQ(rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"], hash);
  EXPECT_EQ(rs["metadata"]["labels"]["pod-template-hash"], hash);
  EXPECT_EQ(annotation(rs, kRevisionAnnotation), "1");
  const json* ref = controllerRef(rs);
  ASSERT_NE(ref, nullptr);
  EXPECT_EQ((*ref)["uid"], d["metadata"]["uid"]);
  EXPECT_EQ((*ref)["kind"], "Deployment");
  EXPECT_EQ(rs["spec"]["replicas"], 3);
  auto ps = pods("app=web");
  ASSERT_EQ(ps.size(), 3u);
  for (const auto& p : ps) EXPECT_EQ(p["metadata"]["labels"]["pod-template-hash"], hash);
  json cur = deployment("web");
  EXPECT_EQ(annotation(cur, kRevisionAnnotation), "1");
  EXPECT_EQ(cur["status"]["observedGeneration"], 1);
  EXPECT_EQ(cur["status"]["replicas"], 3);
  EXPECT_EQ(cur["status"]["updatedReplicas"], 3);
  EXPECT_EQ(cur["status"]["availableReplicas"], 0);
  EXPECT_EQ(cur["status"]["unavailableReplicas"], 3);
  EXPECT_EQ(condition("web", "Available", "status"), "False");
  EXPECT_EQ(condition("web", "Progressing", "status"), "True");

  allReady();
  step();
  cur = deployment("web");
  EXPECT_EQ(cur["status"]["readyReplicas"], 3);
  EXPECT_EQ(cur["status"]["availableReplicas"], 3);
  EXPECT_EQ(cur["status"]["unavailableReplicas"], 0);
  EXPECT_EQ(condition("web", "Available"), "MinimumReplicasAvailable");
  EXPECT_EQ(condition("web", "Progressing"), "NewReplicaSetAvailable");
  EXPECT_EQ(condition("web", "Progressing", "message"),
            "ReplicaSet \"web-" + hash + "\" has successfully progressed.");
  int64_t rv = env_.store->currentRevision();
  step();
  EXPECT_EQ(env_.store->currentRevision(), rv) << "a finished rollout writes nothing";
}

TEST_F(DeploymentControllerTest, RollingUpdateRespectsSurgeAndUnavailable) {
  createDeployment(
      "web", 4,
      {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 1}}}});
  step();
  allReady();
  step();
  ASSERT_EQ(readyCount(), 4);
  setImage("web", "nginx:1.26");
  int maxActive = 0, minReady = 4;
  bool done = false;
  for (int round = 0; round < 40 && !done; ++round) {
    step();
    maxActive = std::max(maxActive, activeCount());
    minReady = std::min(minReady, readyCount());
    // Make at most one new pod ready per round: a slow edge.
    for (const auto& p : pods()) {
      if (isActive(p) && !isPodReady(p)) {
        setPodReady(nameOf(p));
        break;
      }
    }
    json d = deployment("web");
    done = d["status"]["updatedReplicas"] == 4 && d["status"]["availableReplicas"] == 4 &&
           d["status"]["replicas"] == 4;
  }
  ASSERT_TRUE(done) << deployment("web")["status"].dump();
  EXPECT_LE(maxActive, 5) << "replicas + maxSurge";
  EXPECT_GE(minReady, 3) << "replicas - maxUnavailable";
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0]["spec"]["replicas"], 0);
  EXPECT_EQ(sets[1]["spec"]["replicas"], 4);
  EXPECT_EQ(annotation(sets[1], kRevisionAnnotation), "2");
  EXPECT_EQ(annotation(deployment("web"), kRevisionAnnotation), "2");
  for (const auto& p : pods()) {
    EXPECT_EQ(p["spec"]["containers"][0]["image"], "nginx:1.26");
  }
  step();
  EXPECT_EQ(condition("web", "Progressing"), "NewReplicaSetAvailable");
}

TEST_F(DeploymentControllerTest, RollingUpdateWithZeroSurgeNeverExceedsReplicas) {
  createDeployment(
      "web", 3,
      {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 0}, {"maxUnavailable", 1}}}});
  step();
  allReady();
  step();
  setImage("web", "nginx:1.26");
  int maxActive = 0;
  for (int round = 0; round < 30; ++round) {
    step();
    maxActive = std::max(maxActive, activeCount());
    EXPECT_GE(readyCount(), 2);
    allReady();
  }
  EXPECT_LE(maxActive, 3);
  EXPECT_EQ(deployment("web")["status"]["updatedReplicas"], 3);
}

TEST_F(DeploymentControllerTest, RecreateScalesOldToZeroBeforeNew) {
  createDeployment("web", 2, {{"type", "Recreate"}});
  step();
  allReady();
  step();
  setImage("web", "nginx:1.26");
  ASSERT_TRUE(dc_->reconcileOnce().isOk());
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 1u) << "no new ReplicaSet while old pods exist";
  EXPECT_EQ(sets[0]["spec"]["replicas"], 0);
  ASSERT_TRUE(dc_->reconcileOnce().isOk());
  EXPECT_EQ(replicaSets().size(), 1u) << "old pods still there";
  ASSERT_TRUE(rsc_->reconcileOnce().isOk());  // deletes the old pods
  EXPECT_EQ(activeCount(), 0);
  ASSERT_TRUE(dc_->reconcileOnce().isOk());
  sets = replicaSets();
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[1]["spec"]["replicas"], 2);
  step();
  EXPECT_EQ(activeCount(), 2);
}

TEST_F(DeploymentControllerTest, RollbackReusesOldReplicaSetWithNewRevision) {
  createDeployment("web", 2,
                   {{"type", "RollingUpdate"},
                    {"rollingUpdate", {{"maxSurge", "100%"}, {"maxUnavailable", 0}}}});
  for (int i = 0; i < 3; ++i) step(), allReady();
  setImage("web", "nginx:1.26", "image 1.26");
  for (int i = 0; i < 6; ++i) step(), allReady();
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(annotation(sets[1], kChangeCauseAnnotation), "image 1.26");
  // What `edgectl rollout undo` does: put revision 1's template back.
  json first = sets[0];
  json next = deployment("web");
  json tmpl = first["spec"]["template"];
  tmpl["metadata"]["labels"].erase("pod-template-hash");
  next["spec"]["template"] = tmpl;
  ASSERT_TRUE(reg().update(deploymentKind(), "default", "web", next).isOk());
  for (int i = 0; i < 6; ++i) step(), allReady();
  sets = replicaSets();
  ASSERT_EQ(sets.size(), 2u) << "no third ReplicaSet: the old one is re-used";
  EXPECT_EQ(nameOf(sets[1]), nameOf(first));
  EXPECT_EQ(annotation(sets[1], kRevisionAnnotation), "3");
  EXPECT_EQ(sets[1]["spec"]["replicas"], 2);
  EXPECT_EQ(sets[0]["spec"]["replicas"], 0);
  EXPECT_EQ(annotation(deployment("web"), kRevisionAnnotation), "3");
  for (const auto& p : pods()) EXPECT_EQ(p["spec"]["containers"][0]["image"], "nginx:1.25");
}

TEST_F(DeploymentControllerTest, RevisionHistoryLimitDeletesOldestEmptyReplicaSets) {
  createDeployment("web", 1);
  json d = deployment("web");
  d["spec"]["revisionHistoryLimit"] = 2;
  ASSERT_TRUE(reg().update(deploymentKind(), "default", "web", d).isOk());
  for (int i = 0; i < 3; ++i) step(), allReady();  // revision 1
  for (int v = 1; v <= 5; ++v) {
    setImage("web", "nginx:1." + std::to_string(30 + v));
    for (int i = 0; i < 6; ++i) step(), allReady();
  }
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 3u) << "the current ReplicaSet plus two old ones";
  EXPECT_EQ(annotation(sets[0], kRevisionAnnotation), "4");
  EXPECT_EQ(annotation(sets[2], kRevisionAnnotation), "6");
}

TEST_F(DeploymentControllerTest, PausedDeploymentDoesNotRollButScales) {
  createDeployment("web", 2);
  for (int i = 0; i < 2; ++i) step(), allReady();
  json d = deployment("web");
  d["spec"]["paused"] = true;
  d["spec"]["replicas"] = 3;
  d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:9";
  ASSERT_TRUE(reg().update(deploymentKind(), "default", "web", d).isOk());
  for (int i = 0; i < 3; ++i) step();
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0]["spec"]["replicas"], 3);
  EXPECT_EQ(condition("web", "Progressing"), "DeploymentPaused");
  d = deployment("web");
  d["spec"]["paused"] = false;
  ASSERT_TRUE(reg().update(deploymentKind(), "default", "web", d).isOk());
  step();
  EXPECT_EQ(replicaSets().size(), 2u);
}

TEST_F(DeploymentControllerTest, DeletingDeploymentCascades) {
  createDeployment("web", 2);
  createDeployment("api", 1);
  step();
  ASSERT_EQ(pods("app=web").size(), 2u);
  ASSERT_TRUE(reg().remove(deploymentKind(), "default", "web").isOk());
  auto collected = dc_->reconcileOnce();
  ASSERT_TRUE(collected.isOk());
  EXPECT_EQ(*collected, 1);
  ASSERT_TRUE(rsc_->reconcileOnce().isOk());
  EXPECT_TRUE(pods("app=web").empty());
  EXPECT_EQ(pods("app=api").size(), 1u);
  EXPECT_EQ(replicaSets().size(), 1u);
}

// propagationPolicy=Orphan: the Deployment goes at once, its ReplicaSet stays without an owner
// reference and keeps its pods; nothing collects them afterwards.
TEST_F(DeploymentControllerTest, OrphanDeletionKeepsReplicaSetsAndPods) {
  createDeployment("web", 2);
  step();
  ASSERT_EQ(pods("app=web").size(), 2u);
  registry::DeleteOptions orphan;
  orphan.propagationPolicy = "Orphan";
  ASSERT_TRUE(reg().remove(deploymentKind(), "default", "web", orphan).isOk());
  EXPECT_EQ(reg().get(deploymentKind(), "default", "web").status().code(), Code::kNotFound);
  step();
  step();
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_FALSE(sets[0]["metadata"].contains("ownerReferences")) << sets[0].dump();
  EXPECT_EQ(activeCount(), 2);

  // The ReplicaSet orphaned in turn: its pods lose their owner and survive it.
  ASSERT_TRUE(reg().remove(replicaSetKind(), "default", nameOf(sets[0]), orphan).isOk());
  step();
  EXPECT_TRUE(replicaSets().empty());
  auto left = pods("app=web");
  ASSERT_EQ(left.size(), 2u);
  for (const auto& p : left) EXPECT_EQ(controllerRef(p), nullptr) << p.dump();
}

// propagationPolicy=Foreground: the Deployment stays, terminating with the foregroundDeletion
// finalizer, until its ReplicaSets (deleted in the foreground in turn) and their pods are gone.
TEST_F(DeploymentControllerTest, ForegroundDeletionRemovesDependentsFirst) {
  createDeployment("web", 2);
  createDeployment("api", 1);
  step();
  registry::DeleteOptions fg;
  fg.propagationPolicy = "Foreground";
  auto r = reg().remove(deploymentKind(), "default", "web", fg);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_FALSE((*r)["metadata"]["deletionTimestamp"].get<std::string>().empty());
  EXPECT_EQ((*r)["metadata"]["finalizers"], json::array({"foregroundDeletion"}));
  ASSERT_EQ(pods("app=web").size(), 2u);  // nothing deleted before a controller acts

  ASSERT_TRUE(dc_->reconcileOnce().isOk());  // deletes the ReplicaSet in the foreground
  auto sets = replicaSets();
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_TRUE(reg().get(deploymentKind(), "default", "web").isOk());  // still there
  for (int i = 0; i < 4; ++i) step();
  EXPECT_TRUE(pods("app=web").empty());
  EXPECT_EQ(reg().get(deploymentKind(), "default", "web").status().code(), Code::kNotFound);
  EXPECT_EQ(replicaSets().size(), 1u);
  EXPECT_EQ(pods("app=api").size(), 1u);
}

// A second delete with another policy changes course, as in Kubernetes: Orphan after Foreground
// swaps the finalizer and orphans; Background on an owner left terminating drops the policy
// finalizers so it goes (and the controllers collect its dependents).
TEST_F(DeploymentControllerTest, ALaterDeleteWithAnotherPolicyChangesCourse) {
  createDeployment("web", 1);
  createDeployment("api", 1);
  step();
  registry::DeleteOptions fg, orphan, background;
  fg.propagationPolicy = "Foreground";
  orphan.propagationPolicy = "Orphan";
  background.propagationPolicy = "Background";
  ASSERT_TRUE(reg().remove(deploymentKind(), "default", "web", fg).isOk());
  ASSERT_TRUE(reg().remove(deploymentKind(), "default", "web", orphan).isOk());
  EXPECT_EQ(reg().get(deploymentKind(), "default", "web").status().code(), Code::kNotFound);
  step();
  EXPECT_EQ(pods("app=web").size(), 1u);  // orphaned, not deleted

  ASSERT_TRUE(reg().remove(deploymentKind(), "default", "api", fg).isOk());
  auto r = reg().remove(deploymentKind(), "default", "api", background);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(reg().get(deploymentKind(), "default", "api").status().code(), Code::kNotFound);
  for (int i = 0; i < 3; ++i) step();
  EXPECT_TRUE(pods("app=api").empty());
}

// Scaling events read as Kubernetes writes them, and a ReplicaSet created at 0 replicas is none.
TEST_F(DeploymentControllerTest, ScalingEventsAsKubernetesWritesThem) {
  createDeployment("zero", 0);
  createDeployment("two", 2);
  step();
  auto events = reg().list(eventKind(), "default", {});
  ASSERT_TRUE(events.isOk());
  std::vector<std::string> messages;
  for (const auto& e : events->items) {
    if (str(e, "reason") == "ScalingReplicaSet") messages.push_back(str(e, "message"));
  }
  ASSERT_EQ(messages.size(), 1u) << ::testing::PrintToString(messages);
  EXPECT_EQ(messages[0].rfind("Scaled up replica set two-", 0), 0u) << messages[0];
  EXPECT_NE(messages[0].find(" from 0 to 2"), std::string::npos) << messages[0];
}

TEST_F(DeploymentControllerTest, ProgressDeadlineExceeded) {
  json d = createDeployment("web", 1);
  d = deployment("web");
  d["spec"]["progressDeadlineSeconds"] = 30;
  ASSERT_TRUE(reg().update(deploymentKind(), "default", "web", d).isOk());
  step();
  step();
  EXPECT_EQ(condition("web", "Progressing", "status"), "True");
  env_.clock.advance(std::chrono::seconds(31));
  step();
  EXPECT_EQ(condition("web", "Progressing"), "ProgressDeadlineExceeded");
  EXPECT_EQ(condition("web", "Progressing", "status"), "False");
  allReady();
  step();
  EXPECT_EQ(condition("web", "Progressing"), "NewReplicaSetAvailable");
}

}  // namespace
}  // namespace ep::controllers
