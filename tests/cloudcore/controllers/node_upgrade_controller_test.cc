// The NodeUpgradeJob controller (docs/upgrades.md) against a real Registry on SQLite with an
// injected clock: node choice, concurrency, outcomes from the nodes' reports, timeouts.
#include "cloudcore/controllers/node_upgrade_controller.h"

#include <gtest/gtest.h>

#include "common/api/object_util.h"
#include "common/api/upgrades.h"
#include "tests/cloudcore/controllers/workload_fixture.h"

namespace ep::controllers::testing {
namespace {

using namespace std::chrono_literals;

const api::KindInfo& jobKind() {
  return *api::findByApiVersionKind("operations.kubeedge.io/v1alpha1", "NodeUpgradeJob");
}
const api::KindInfo& releaseKind() {
  return *api::findByApiVersionKind("upgrade.edgeplane.io/v1alpha1", "EdgecoreRelease");
}

class NodeUpgradeControllerTest : public WorkloadTest {
 protected:
  void SetUp() override {
    WorkloadTest::SetUp();
    controller_ = std::make_unique<NodeUpgradeController>(reg(), env_.clock);
  }
  void TearDown() override {
    controller_.reset();
    WorkloadTest::TearDown();
  }

  // An edge node running edgecore `version` on amd64.
  void edgeNode(const std::string& name, const std::string& version = "1.0.0",
                json labels = {{"fleet", "a"}}) {
    addNode(name, "4", "8Gi", labels);
    report(name, version, true);
  }
  // What the node reports: its version, Ready, and optionally its EdgecoreUpgrade condition.
  void report(const std::string& name, const std::string& version, bool ready,
              json upgradeCondition = nullptr) {
    auto n = reg().get(nodeKind(), "", name);
    ASSERT_TRUE(n.isOk());
    json next = *n;
    next["status"]["nodeInfo"] = {{"kubeletVersion", api::kubeletVersionFor(version)},
                                  {"architecture", "amd64"}};
    json conditions = json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}});
    if (!upgradeCondition.is_null()) conditions.push_back(upgradeCondition);
    next["status"]["conditions"] = conditions;
    ASSERT_TRUE(reg().update(nodeKind(), "", name, next, registry::Subresource::kStatus).isOk());
  }
  void release(const std::string& version, const std::string& arch = "amd64") {
    json r = {{"metadata", {{"name", version}}},
              {"spec",
               {{"version", version},
                {"binaries",
                 {{{"architecture", arch},
                   {"digest", "sha256:" + std::string(64, 'c')},
                   {"size", 100}}}}}}};
    ASSERT_TRUE(reg().create(releaseKind(), "", r).isOk());
  }
  void job(const std::string& name, json spec) {
    json j = {{"metadata", {{"name", name}}}, {"spec", spec}};
    auto r = reg().create(jobKind(), "", j);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  json get(const std::string& name) {
    auto j = reg().get(jobKind(), "", name);
    EXPECT_TRUE(j.isOk());
    return j.isOk() ? *j : json();
  }
  std::map<std::string, api::NodeUpgradeStatus> byNode(const std::string& name) {
    std::map<std::string, api::NodeUpgradeStatus> out;
    for (auto& s : api::nodeUpgradeStatuses(get(name))) out[s.nodeName] = s;
    return out;
  }
  json condition(const std::string& job, bool upgraded, const std::string& message) {
    return {{"type", api::kEdgecoreUpgradeCondition},
            {"status", upgraded ? "True" : "False"},
            {"reason", upgraded ? api::kUpgradeReasonUpgraded : api::kUpgradeReasonRolledBack},
            {"message",
             api::upgradeConditionPrefix(job, api::stringAt(get(job), "metadata.uid"), "2.0.0") +
                 message}};
  }
  int pass() {
    auto r = controller_->reconcileOnce();
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : -1;
  }

  std::unique_ptr<NodeUpgradeController> controller_;
};

TEST_F(NodeUpgradeControllerTest, ChoosesNodesOnceAndUpgradesThemOneAtATime) {
  edgeNode("n1");
  edgeNode("n2");
  edgeNode("other", "1.0.0", {{"fleet", "b"}});
  release("2.0.0");
  job("j", {{"version", "2.0.0"}, {"labelSelector", {{"matchLabels", {{"fleet", "a"}}}}}});
  EXPECT_EQ(pass(), 1);
  auto s = byNode("j");
  ASSERT_EQ(s.size(), 2u);  // "other" does not match
  EXPECT_EQ(s["n1"].state, api::kUpgradeInProgress);
  EXPECT_EQ(s["n2"].state, api::kUpgradeInit);
  EXPECT_EQ(api::stringAt(get("j"), "status.state"), api::kUpgradeInProgress);
  // A node that matches later is not added: the nodes are chosen once.
  edgeNode("n3");
  EXPECT_EQ(pass(), 0);  // nothing changed
  EXPECT_EQ(byNode("j").size(), 2u);

  // The version alone is not enough: the node's condition must say this job's binary took over.
  report("n1", "2.0.0", true);
  EXPECT_EQ(pass(), 0);
  report("n1", "2.0.0", true, condition("j", true, "edgecore 2.0.0 runs (was 1.0.0)"));
  EXPECT_EQ(pass(), 1);
  s = byNode("j");
  EXPECT_EQ(s["n1"].state, api::kUpgradeCompleted);
  EXPECT_EQ(s["n1"].action, api::kUpgradeActionSuccess);
  EXPECT_EQ(s["n1"].reason, "edgecore 2.0.0 runs (was 1.0.0)");
  EXPECT_EQ(s["n2"].state, api::kUpgradeInProgress);

  report("n2", "2.0.0", true, condition("j", true, "edgecore 2.0.0 runs (was 1.0.0)"));
  EXPECT_EQ(pass(), 1);
  json done = get("j");
  EXPECT_EQ(api::stringAt(done, "status.state"), api::kUpgradeCompleted);
  EXPECT_EQ(api::stringAt(done, "status.action"), api::kUpgradeActionSuccess);
  EXPECT_EQ(api::stringAt(done, "status.reason"), "2 of 2 node(s) upgraded");
  EXPECT_EQ(pass(), 0);  // finished jobs are left alone
}

TEST_F(NodeUpgradeControllerTest, ConcurrencyStartsThatManyAndOfflineNodesWait) {
  edgeNode("n1");
  edgeNode("n2");
  edgeNode("n3");
  report("n2", "1.0.0", false);  // offline
  release("2.0.0");
  job("j", {{"version", "2.0.0"}, {"nodeNames", {"n1", "n2", "n3"}}, {"concurrency", 2}});
  pass();
  auto s = byNode("j");
  EXPECT_EQ(s["n1"].state, api::kUpgradeInProgress);
  EXPECT_EQ(s["n2"].state, api::kUpgradeInit);  // waits for the node to return
  EXPECT_EQ(s["n3"].state, api::kUpgradeInProgress);
  report("n1", "2.0.0", true, condition("j", true, "ok"));
  pass();
  EXPECT_EQ(byNode("j")["n2"].state, api::kUpgradeInit);  // still offline
  report("n2", "1.0.0", true);                            // back
  pass();
  EXPECT_EQ(byNode("j")["n2"].state, api::kUpgradeInProgress);
}

TEST_F(NodeUpgradeControllerTest, RollbacksAndTimeoutsFailTheirNodeAndTheJob) {
  edgeNode("n1");
  edgeNode("n2");
  release("2.0.0");
  job("j", {{"version", "2.0.0"},
            {"nodeNames", {"n1", "n2"}},
            {"concurrency", 2},
            {"timeoutSeconds", 60}});
  pass();
  // A rollback of another job (another uid) is not this job's.
  report("n1", "1.0.0", true,
         {{"type", api::kEdgecoreUpgradeCondition},
          {"status", "False"},
          {"reason", api::kUpgradeReasonRolledBack},
          {"message", api::upgradeConditionPrefix("j", "old-uid", "2.0.0") + "old news"}});
  pass();
  EXPECT_EQ(byNode("j")["n1"].state, api::kUpgradeInProgress);
  report("n1", "1.0.0", true, condition("j", false, "edgecore 2.0.0 exited at start"));
  pass();
  auto s = byNode("j");
  EXPECT_EQ(s["n1"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["n1"].event, "Rollback");
  EXPECT_EQ(s["n1"].reason, "edgecore 2.0.0 exited at start");
  EXPECT_EQ(s["n2"].state, api::kUpgradeInProgress);
  env_.clock.advance(59s);
  pass();
  EXPECT_EQ(byNode("j")["n2"].state, api::kUpgradeInProgress);
  env_.clock.advance(2s);
  pass();
  s = byNode("j");
  EXPECT_EQ(s["n2"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["n2"].event, "TimeOut");
  EXPECT_EQ(s["n2"].reason, "the node did not report edgecore 2.0.0 within 60s");
  EXPECT_EQ(api::stringAt(get("j"), "status.state"), api::kUpgradeFailure);
  EXPECT_EQ(api::stringAt(get("j"), "status.reason"), "0 of 2 node(s) upgraded");
}

TEST_F(NodeUpgradeControllerTest, NodesThatCannotStartFailAtOnceAndUpToDateOnesSucceed) {
  edgeNode("current", "2.0.0");
  edgeNode("old");
  job("j", {{"version", "2.0.0"}, {"nodeNames", {"current", "old", "ghost"}}});
  pass();
  auto s = byNode("j");
  EXPECT_EQ(s["current"].action, api::kUpgradeActionSuccess);
  EXPECT_EQ(s["current"].reason, "the node runs edgecore 2.0.0 already");
  EXPECT_EQ(s["ghost"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["ghost"].reason, "node ghost not found");
  EXPECT_EQ(s["old"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["old"].reason, "no EdgecoreRelease 2.0.0 (push one with edgectl upgrade push)");

  release("3.0.0", "arm64");
  job("k", {{"version", "3.0.0"}, {"nodeNames", {"old"}}});
  pass();
  EXPECT_EQ(byNode("k")["old"].reason, "EdgecoreRelease 3.0.0 has no binary for amd64");
}

TEST_F(NodeUpgradeControllerTest, AStatusWrittenOnCreateIsDroppedAndANodeServesOneJobAtATime) {
  edgeNode("n1");
  edgeNode("n2");
  release("2.0.0");
  // The status is the controller's: written by a client, it would choose where the binary goes.
  json forged = {{"metadata", {{"name", "forged"}}},
                 {"spec", {{"version", "2.0.0"}, {"nodeNames", {"n1"}}}},
                 {"status", {{"nodeStatus", {{{"nodeName", "n2"}, {"state", "InProgress"}}}}}}};
  ASSERT_TRUE(reg().create(jobKind(), "", forged).isOk());
  EXPECT_FALSE(get("forged").contains("status"));
  job("second", {{"version", "2.0.0"}, {"nodeNames", {"n1", "n2"}}, {"concurrency", 2}});
  pass();
  auto f = byNode("forged");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f["n1"].state, api::kUpgradeInProgress);
  auto s = byNode("second");
  EXPECT_EQ(s["n1"].state, api::kUpgradeInit);  // busy with "forged"
  EXPECT_EQ(s["n2"].state, api::kUpgradeInProgress);
}

}  // namespace
}  // namespace ep::controllers::testing
