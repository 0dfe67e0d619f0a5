#include "cloudcore/controllers/replicaset_controller.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/cloudcore/controllers/workload_fixture.h"

namespace ep::controllers {
namespace {

using testing::json;

class ReplicaSetControllerTest : public testing::WorkloadTest {
 protected:
  void SetUp() override {
    WorkloadTest::SetUp();
    rsc_ = std::make_unique<ReplicaSetController>(reg(), env_.clock);
  }
  json createRs(const std::string& name, int replicas) {
    json rs = {
        {"metadata", {{"name", name}}},
        {"spec",
         {{"replicas", replicas},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template", {{"metadata", {{"labels", {{"app", name}}}}}, {"spec", podSpec()}}}}}};
    auto r = reg().create(replicaSetKind(), "default", rs);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : json();
  }
  json rs(const std::string& name) {
    auto r = reg().get(replicaSetKind(), "default", name);
    return r.isOk() ? *r : json();
  }
  void setReplicas(const std::string& name, int n) {
    json next = rs(name);
    next["spec"]["replicas"] = n;
    ASSERT_TRUE(reg().update(replicaSetKind(), "default", name, next).isOk());
  }
  ReplicaSetPassResult pass() {
    auto r = rsc_->reconcileOnce();
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : ReplicaSetPassResult{};
  }

  std::unique_ptr<ReplicaSetController> rsc_;
};

TEST_F(ReplicaSetControllerTest, CreatesPodsWithOwnerAndGenerateName) {
  json set = createRs("web", 3);
  EXPECT_EQ(pass().created, 3);
  auto ps = pods("app=web");
  ASSERT_EQ(ps.size(), 3u);
  for (const auto& p : ps) {
    std::string name = nameOf(p);
    EXPECT_EQ(name.rfind("web-", 0), 0u) << name;
    EXPECT_EQ(name.size(), 4u + 5u);
    const json* ref = controllerRef(p);
    ASSERT_NE(ref, nullptr);
    EXPECT_EQ((*ref)["uid"], set["metadata"]["uid"]);
    EXPECT_EQ((*ref)["kind"], "ReplicaSet");
  }
  EXPECT_EQ(pass().created, 0);
  json st = rs("web")["status"];
  EXPECT_EQ(st["replicas"], 3);
  EXPECT_EQ(st["fullyLabeledReplicas"], 3);
  EXPECT_EQ(st["readyReplicas"], 0);
  EXPECT_EQ(st["observedGeneration"], 1);
  setPodReady(nameOf(ps[0]));
  pass();
  EXPECT_EQ(rs("web")["status"]["readyReplicas"], 1);
  EXPECT_EQ(rs("web")["status"]["availableReplicas"], 1);
  int64_t rv = env_.store->currentRevision();
  pass();
  EXPECT_EQ(env_.store->currentRevision(), rv) << "a steady state writes nothing";
}

TEST_F(ReplicaSetControllerTest, ScaleDownPrefersUnscheduledThenNotReadyThenNewest) {
  createRs("web", 4);
  pass();
  auto ps = pods("app=web");
  ASSERT_EQ(ps.size(), 4u);
  // Bind three (one becomes ready), leave one unscheduled.
  std::vector<std::string> names;
  for (const auto& p : ps) names.push_back(nameOf(p));
  for (int i = 0; i < 3; ++i) {
    json next = pod(names[i]);
    next["spec"]["nodeName"] = "n1";
    ASSERT_TRUE(reg().update(podKind(), "default", names[i], next).isOk());
    setPodReady(names[i], i == 0);
  }
  setReplicas("web", 2);
  EXPECT_EQ(pass().deleted, 2);
  std::set<std::string> left;
  for (const auto& p : pods("app=web")) left.insert(nameOf(p));
  EXPECT_EQ(left.size(), 2u);
  EXPECT_TRUE(left.count(names[0])) << "the ready pod stays";
  EXPECT_FALSE(left.count(names[3])) << "the unscheduled pod goes first";
  EXPECT_EQ(rs("web")["status"]["replicas"], 2);
}

TEST_F(ReplicaSetControllerTest, ReplacesDeletedAndTerminalPods) {
  createRs("web", 2);
  pass();
  auto ps = pods("app=web");
  ASSERT_EQ(ps.size(), 2u);
  ASSERT_TRUE(reg().remove(podKind(), "default", nameOf(ps[0])).isOk());
  setPodPhase(nameOf(ps[1]), "Failed");
  auto r = pass();
  EXPECT_EQ(r.created, 2);
  EXPECT_EQ(r.deleted, 1) << "the failed pod is removed";
  auto now = pods("app=web");
  EXPECT_EQ(now.size(), 2u);
  for (const auto& p : now) EXPECT_EQ(p["status"]["phase"], "Pending");
}

TEST_F(ReplicaSetControllerTest, ScaleUpAndGarbageCollectsPodsOfDeletedReplicaSet) {
  createRs("web", 1);
  createRs("other", 1);
  pass();
  setReplicas("web", 3);
  EXPECT_EQ(pass().created, 2);
  EXPECT_EQ(pods("app=web").size(), 3u);
  // A bare pod (no owner) is never touched.
  createPod("bare", podSpec());
  ASSERT_TRUE(reg().remove(replicaSetKind(), "default", "web").isOk());
  EXPECT_EQ(pass().collected, 3);
  EXPECT_TRUE(pods("app=web").empty());
  EXPECT_EQ(pods("app=other").size(), 1u);
  EXPECT_FALSE(pod("bare").is_null());
  // A new ReplicaSet with the same name has a new uid: its pods are its own.
  createRs("web", 1);
  pass();
  EXPECT_EQ(pods("app=web").size(), 1u);
  EXPECT_EQ(pass().collected, 0);
}

TEST_F(ReplicaSetControllerTest, AvailableAfterMinReadySeconds) {
  json set = createRs("web", 1);
  set["spec"]["minReadySeconds"] = 10;
  ASSERT_TRUE(reg().update(replicaSetKind(), "default", "web", set).isOk());
  pass();
  auto ps = pods("app=web");
  ASSERT_EQ(ps.size(), 1u);
  setPodReady(nameOf(ps[0]));
  pass();
  EXPECT_EQ(rs("web")["status"]["readyReplicas"], 1);
  EXPECT_EQ(rs("web")["status"]["availableReplicas"], 0);
  env_.clock.advance(std::chrono::seconds(11));
  pass();
  EXPECT_EQ(rs("web")["status"]["availableReplicas"], 1);
}

}  // namespace
}  // namespace ep::controllers
