#include "cloudcore/controllers/scheduler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/cloudcore/controllers/workload_fixture.h"
#include "tests/testing/forwarding_store.h"

namespace ep::controllers {
namespace {

using namespace std::chrono_literals;
using testing::json;

class SchedulerTest : public testing::WorkloadTest {
 protected:
  void SetUp() override {
    WorkloadTest::SetUp();
    scheduler_ = std::make_unique<Scheduler>(reg(), env_.clock);
  }
  SchedulePassResult pass() {
    auto r = scheduler_->reconcileOnce();
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : SchedulePassResult{};
  }
  std::string nodeOf(const std::string& name) { return nodeNameOf(pod(name)); }
  json scheduledCondition(const std::string& name) {
    json p = pod(name);
    const json* c = findCondition(p, "PodScheduled");
    return c ? *c : json();
  }

  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, BindsToReadyNodeSetsConditionAndRecordsEvent) {
  addNode("a");
  createPod("web", podSpec("100m", "64Mi"));
  EXPECT_EQ(pass().bound, 1);
  EXPECT_EQ(nodeOf("web"), "a");
  EXPECT_EQ(scheduledCondition("web")["status"], "True");
  bool found = false;
  for (const auto& e : events()) {
    if (e["reason"] == "Scheduled") {
      found = true;
      EXPECT_EQ(e["type"], "Normal");
      EXPECT_EQ(e["message"], "Successfully assigned default/web to a");
      EXPECT_EQ(e["involvedObject"]["name"], "web");
      EXPECT_EQ(e["involvedObject"]["kind"], "Pod");
      EXPECT_EQ(e["involvedObject"]["uid"], pod("web")["metadata"]["uid"]);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(pass().bound, 0) << "bound pods are left alone";
}

TEST_F(SchedulerTest, NodeSelectorAndUnschedulableMessage) {
  addNode("a", "4", "8Gi", {{"zone", "east"}});
  addNode("b", "1", "8Gi", {{"zone", "west"}});
  addNode("c", "1", "8Gi", {{"zone", "west"}});
  json spec = podSpec("2");
  spec["nodeSelector"] = {{"zone", "west"}};
  createPod("p", spec);
  auto r = pass();
  EXPECT_EQ(r.bound, 0);
  EXPECT_EQ(r.unschedulable, 1);
  EXPECT_EQ(nodeOf("p"), "");
  json c = scheduledCondition("p");
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "Unschedulable");
  EXPECT_EQ(c["message"],
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 "
            "Insufficient cpu.");
  int failed = 0;
  for (const auto& e : events()) {
    if (e["reason"] == "FailedScheduling") {
      ++failed;
      EXPECT_EQ(e["type"], "Warning");
      EXPECT_EQ(e["message"], c["message"]);
    }
  }
  EXPECT_EQ(failed, 1);
  int64_t rv = env_.store->currentRevision();
  pass();
  EXPECT_EQ(env_.store->currentRevision(), rv) << "an unchanged verdict writes nothing";

  json spec2 = podSpec("500m");
  spec2["nodeSelector"] = {{"zone", "west"}};
  createPod("q", spec2);
  pass();
  EXPECT_EQ(nodeOf("q"), "b") << "tie on free fraction and pods: name order";
}

TEST_F(SchedulerTest, RequiredNodeAffinityOperators) {
  addNode("n1", "4", "8Gi", {{"tier", "edge"}, {"gpu", "1"}, {"cores", "8"}});
  addNode("n2", "4", "8Gi", {{"tier", "core"}, {"cores", "2"}});
  auto withTerms = [&](json terms) {
    json spec = podSpec();
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"] = terms;
    return spec;
  };
  auto expr = [](const std::string& key, const std::string& op, json values = nullptr) {
    json e = {{"key", key}, {"operator", op}};
    if (!values.is_null()) e["values"] = values;
    return e;
  };
  createPod("in", withTerms({{{"matchExpressions", {expr("tier", "In", {"core"})}}}}));
  createPod("notin", withTerms({{{"matchExpressions", {expr("tier", "NotIn", {"core"})}}}}));
  createPod("exists", withTerms({{{"matchExpressions", {expr("gpu", "Exists")}}}}));
  createPod("dne", withTerms({{{"matchExpressions", {expr("gpu", "DoesNotExist")}}}}));
  createPod("gt", withTerms({{{"matchExpressions", {expr("cores", "Gt", {"4"})}}}}));
  createPod("lt", withTerms({{{"matchExpressions", {expr("cores", "Lt", {"4"})}}}}));
  // ANDed expressions within a term: nothing has tier=core and gpu.
  createPod(
      "and",
      withTerms({{{"matchExpressions", {expr("tier", "In", {"core"}), expr("gpu", "Exists")}}}}));
  // ORed terms: the second matches n2.
  createPod("or", withTerms({{{"matchExpressions", {expr("tier", "In", {"nowhere"})}}},
                             {{"matchExpressions", {expr("tier", "In", {"core"})}}}}));
  pass();
  EXPECT_EQ(nodeOf("in"), "n2");
  EXPECT_EQ(nodeOf("notin"), "n1");
  EXPECT_EQ(nodeOf("exists"), "n1");
  EXPECT_EQ(nodeOf("dne"), "n2");
  EXPECT_EQ(nodeOf("gt"), "n1");
  EXPECT_EQ(nodeOf("lt"), "n2");
  EXPECT_EQ(nodeOf("and"), "");
  EXPECT_EQ(nodeOf("or"), "n2");
  EXPECT_EQ(scheduledCondition("and")["message"],
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.");
}

TEST_F(SchedulerTest, TaintsNeedTolerations) {
  json taints = {{{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}}};
  addNode("tainted", "4", "8Gi", json::object(), taints);
  addNode("soft", "4", "8Gi", json::object(),
          {{{"key", "x"}, {"value", "y"}, {"effect", "PreferNoSchedule"}}});
  EXPECT_TRUE(toleratesTaint(json::array({{{"operator", "Exists"}}}), taints[0]));
  EXPECT_TRUE(toleratesTaint(
      json::array({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}}}), taints[0]));
  EXPECT_FALSE(toleratesTaint(
      json::array({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "cpu"}}}), taints[0]));
  EXPECT_FALSE(toleratesTaint(
      json::array({{{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoExecute"}}}),
      taints[0]));
  EXPECT_TRUE(toleratesTaint(
      json::array({{{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}}),
      taints[0]));

  // Fill "soft" so that only "tainted" has room; PreferNoSchedule never blocks.
  json big = podSpec("4");
  createPod("filler", big);
  pass();
  EXPECT_EQ(nodeOf("filler"), "soft");
  createPod("plain", podSpec("1"));
  json tolerating = podSpec("1");
  tolerating["tolerations"] = {
      {{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}, {"effect", "NoSchedule"}}};
  createPod("tolerating", tolerating);
  pass();
  EXPECT_EQ(nodeOf("plain"), "");
  EXPECT_EQ(scheduledCondition("plain")["message"],
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
            "{dedicated: gpu}.");
  EXPECT_EQ(nodeOf("tolerating"), "tainted");
}

TEST_F(SchedulerTest, ResourceFitCountsBoundPodsLimitsAndInitContainers) {
  addNode("a", "2", "1Gi");
  json spec = podSpec();
  spec["containers"][0]["resources"]["limits"] = {{"cpu", "1"}, {"memory", "512Mi"}};
  spec["initContainers"] = {{{"name", "init"},
                             {"image", "busybox:1"},
                             {"resources", {{"requests", {{"cpu", "1500m"}}}}}}};
  PodRequests r = podRequests(json{{"spec", spec}});
  EXPECT_EQ(r.milliCpu, 1500) << "init containers count as max";
  EXPECT_EQ(r.memory, 512LL * 1024 * 1024) << "requests default to limits";
  createPod("one", spec);
  pass();
  EXPECT_EQ(nodeOf("one"), "a");
  createPod("two", podSpec("600m"));
  pass();
  EXPECT_EQ(nodeOf("two"), "") << "1500m + 600m > 2 cpu";
  EXPECT_EQ(scheduledCondition("two")["message"], "0/1 nodes are available: 1 Insufficient cpu.");
  createPod("mem", podSpec("", "600Mi"));
  pass();
  EXPECT_EQ(nodeOf("mem"), "");
  // A terminal pod frees its share.
  setPodPhase("one", "Succeeded");
  pass();
  EXPECT_EQ(nodeOf("two"), "a");
  EXPECT_EQ(nodeOf("mem"), "a");
}

TEST_F(SchedulerTest, SpreadsByFreeFraction) {
  addNode("a", "4", "8Gi");
  addNode("b", "4", "8Gi");
  for (int i = 0; i < 4; ++i) createPod("p" + std::to_string(i), podSpec("500m", "256Mi"));
  pass();
  std::map<std::string, int> perNode;
  for (int i = 0; i < 4; ++i) ++perNode[nodeOf("p" + std::to_string(i))];
  EXPECT_EQ(perNode["a"], 2);
  EXPECT_EQ(perNode["b"], 2);
}

TEST_F(SchedulerTest, SkipsNotReadyAndUnschedulableNodesAndBindsWhenNodeBecomesReady) {
  addNode("down", "4", "8Gi", json::object(), nullptr, "False");
  addNode("lost", "4", "8Gi", json::object(), nullptr, "Unknown");
  addNode("cordoned");
  auto c = reg().get(nodeKind(), "", "cordoned");
  json cordoned = *c;
  cordoned["spec"]["unschedulable"] = true;
  ASSERT_TRUE(reg().update(nodeKind(), "", "cordoned", cordoned).isOk());
  createPod("web", podSpec());
  pass();
  EXPECT_EQ(nodeOf("web"), "");
  EXPECT_EQ(scheduledCondition("web")["message"],
            "0/3 nodes are available: 1 node(s) had untolerated taint "
            "{node.kubernetes.io/not-ready: }, 1 node(s) had untolerated taint "
            "{node.kubernetes.io/unreachable: }, 1 node(s) were unschedulable.");
  setNodeReady("down", "True");
  pass();
  EXPECT_EQ(nodeOf("web"), "down");
  EXPECT_EQ(scheduledCondition("web")["status"], "True");
}

TEST_F(SchedulerTest, IgnoresTerminatingAndForeignSchedulerPods) {
  addNode("a");
  json spec = podSpec();
  spec["schedulerName"] = "other";
  createPod("foreign", spec);
  pass();
  EXPECT_EQ(nodeOf("foreign"), "");
  EXPECT_EQ(scheduledCondition("foreign"), json());
}

TEST_F(SchedulerTest, LoopBindsFromWatchEvents) {
  ASSERT_TRUE(scheduler_->start().isOk());
  addNode("a", "4", "8Gi", json::object(), nullptr, "False");
  createPod("web", podSpec());
  auto waitFor = [&](auto pred) {
    for (int i = 0; i < 200 && !pred(); ++i) std::this_thread::sleep_for(20ms);
    return pred();
  };
  EXPECT_TRUE(waitFor([&] { return !scheduledCondition("web").is_null(); }));
  EXPECT_EQ(nodeOf("web"), "");
  setNodeReady("a", "True");  // a node change while a pod waits triggers a pass
  EXPECT_TRUE(waitFor([&] { return nodeOf("web") == "a"; }));
  scheduler_->stop();
}

// With nothing pending, a resync lists nothing: every pod that becomes pending comes as a watch
// event, and that one still binds at once.
TEST_F(SchedulerTest, AResyncWithNothingPendingListsNothing) {
  ::ep::testing::ListCountingStore counting(*env_.store);
  registry::Registry registry(counting, env_.clock);
  Scheduler scheduler(registry, env_.clock, SchedulerOptions{.resync = 10ms, .minGap = 1ms});
  addNode("a");
  createPod("early", podSpec());
  ASSERT_TRUE(scheduler.start().isOk());
  auto waitFor = [&](auto pred) {
    for (int i = 0; i < 500 && !pred(); ++i) std::this_thread::sleep_for(10ms);
    return pred();
  };
  EXPECT_TRUE(waitFor([&] { return nodeOf("early") == "a"; }));
  const uint64_t skipped = scheduler.skippedPasses();
  const int lists = counting.lists.load();
  EXPECT_TRUE(waitFor([&] { return scheduler.skippedPasses() >= skipped + 5; }));
  EXPECT_EQ(counting.lists.load(), lists);  // five resyncs, no LIST
  createPod("late", podSpec());
  EXPECT_TRUE(waitFor([&] { return nodeOf("late") == "a"; }));
  EXPECT_GT(counting.lists.load(), lists);  // that pass did list
  scheduler.stop();
}

TEST_F(SchedulerTest, HundredsOfPods) {
  for (int i = 0; i < 20; ++i) addNode("n" + std::to_string(i), "8", "16Gi");
  for (int i = 0; i < 300; ++i) createPod("p" + std::to_string(i), podSpec("100m", "64Mi"));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(pass().bound, 300);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 60s);
  std::map<std::string, int> perNode;
  for (const auto& p : pods()) ++perNode[nodeNameOf(p)];
  EXPECT_EQ(perNode.size(), 20u);
  for (const auto& [n, count] : perNode) EXPECT_EQ(count, 15) << n;
}

}  // namespace
}  // namespace ep::controllers
