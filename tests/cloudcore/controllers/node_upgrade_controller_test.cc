// The NodeUpgradeJob controller (docs/upgrades.md) against a real Registry on SQLite with an
// injected clock: node choice, concurrency, outcomes from the nodes' reports, timeouts.
#include "cloudcore/controllers/node_upgrade_controller.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "common/api/object_util.h"
#include "common/api/upgrades.h"
#include "tests/cloudcore/controllers/workload_fixture.h"
#include "tests/testing/eventually.h"

namespace ep::controllers::testing {
namespace {

using namespace std::chrono_literals;

const api::KindInfo& jobKind() {
  return *api::findByApiVersionKind("operations.kubeedge.io/v1alpha1", "NodeUpgradeJob");
}
const api::KindInfo& releaseKind() {
  return *api::findByApiVersionKind("upgrade.edgeplane.io/v1alpha1", "EdgecoreRelease");
}

// Imports scripted by the test: what request() answers, and what it was asked.
class FakeImports final : public ReleaseImports {
 public:
  State request(const Request& r) override {
    std::lock_guard l(mu_);
    requests.push_back(r);
    return state;
  }
  void retain(const std::set<std::string>& keys) override {
    std::lock_guard l(mu_);
    retained = keys;
  }
  void setListener(std::function<void()> l) override { listener = std::move(l); }

  std::mutex mu_;
  State state;
  std::vector<Request> requests;
  std::set<std::string> retained;
  std::function<void()> listener;
};

class NodeUpgradeControllerTest : public WorkloadTest {
 protected:
  void SetUp() override {
    WorkloadTest::SetUp();
    controller_ = std::make_unique<NodeUpgradeController>(
        reg(), env_.clock, NodeUpgradeControllerOptions{.imports = &imports_});
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

  FakeImports imports_;
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
  // Every node is tried: failures are tolerated here.
  job("j",
      {{"version", "2.0.0"}, {"nodeNames", {"current", "old", "ghost"}}, {"failureTolerate", "1"}});
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

namespace ep::controllers::testing {
namespace {

TEST_F(NodeUpgradeControllerTest, AJobWithAnImageWaitsForItsReleaseFromTheImage) {
  edgeNode("n1");
  json j = {{"metadata",
             {{"name", "img"},
              {"annotations", {{api::kImagePullSecretAnnotation, "kube-system/regcred"}}}}},
            {"spec",
             {{"version", "2.0.0"},
              {"nodeNames", {"n1"}},
              {"image", "registry.example:5000/edgeplane/edgecore"}}}};
  ASSERT_TRUE(reg().create(jobKind(), "", j).isOk());
  const std::string uid = api::stringAt(get("img"), "metadata.uid");
  // Pending: the node waits in Init, saying why.
  pass();
  ASSERT_EQ(imports_.requests.size(), 1u);
  EXPECT_EQ(imports_.requests[0].key, uid);
  EXPECT_EQ(imports_.requests[0].image, "registry.example:5000/edgeplane/edgecore");
  EXPECT_EQ(imports_.requests[0].version, "2.0.0");
  EXPECT_EQ(imports_.requests[0].pullSecret, "kube-system/regcred");
  EXPECT_EQ(imports_.retained, std::set<std::string>{uid});
  auto s = byNode("img");
  EXPECT_EQ(s["n1"].state, api::kUpgradeInit);
  EXPECT_EQ(s["n1"].reason,
            "waiting for edgecore 2.0.0 from image registry.example:5000/edgeplane/edgecore");
  // Done: the importer wrote the release; the node starts.
  release("2.0.0");
  imports_.state = {true, ""};
  pass();
  EXPECT_EQ(byNode("img")["n1"].state, api::kUpgradeInProgress);
  // A job whose release has the binary already asks for no import.
  edgeNode("n2");
  imports_.requests.clear();
  job("pushed", {{"version", "2.0.0"}, {"nodeNames", {"n2"}}, {"image", "r.example/e"}});
  pass();
  EXPECT_TRUE(imports_.requests.empty());
  EXPECT_EQ(byNode("pushed")["n2"].state, api::kUpgradeInProgress);
}

TEST_F(NodeUpgradeControllerTest, AFailedImportFailsTheNodeWithTheRegistrysReason) {
  edgeNode("n1");
  imports_.state = {false, "registry r.example: edgeplane/edgecore:3.0.0: 404 Not Found"};
  job("img",
      {{"version", "3.0.0"}, {"nodeNames", {"n1"}}, {"image", "r.example/edgeplane/edgecore"}});
  pass();
  auto s = byNode("img");
  EXPECT_EQ(s["n1"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["n1"].event, "Check");
  EXPECT_EQ(s["n1"].reason,
            "image r.example/edgeplane/edgecore: registry r.example: edgeplane/edgecore:3.0.0: 404 "
            "Not Found");
  // Finished jobs' imports are forgotten.
  pass();
  EXPECT_TRUE(imports_.retained.empty());
}

TEST_F(NodeUpgradeControllerTest, AFailedPreCheckOnTheNodeFailsItWithEventCheck) {
  edgeNode("n1");
  release("2.0.0");
  job("j", {{"version", "2.0.0"}, {"nodeNames", {"n1"}}, {"checkItems", {"mem"}}});
  pass();
  json c = condition("j", false, "pre-check failed: mem 93% in use (at most 80%)");
  c["reason"] = api::kUpgradeReasonCheckFailed;
  report("n1", "1.0.0", true, c);
  pass();
  auto s = byNode("j");
  EXPECT_EQ(s["n1"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["n1"].event, "Check");
  EXPECT_EQ(s["n1"].reason, "pre-check failed: mem 93% in use (at most 80%)");
}

TEST_F(NodeUpgradeControllerTest, TooManyFailuresStopTheJob) {
  for (const char* n : {"n1", "n2", "n3", "n4"}) edgeNode(n);
  release("2.0.0");
  // One of four may fail (0.25); the second failure stops the job.
  job("j",
      {{"version", "2.0.0"}, {"nodeNames", {"n1", "n2", "n3", "n4"}}, {"failureTolerate", "0.25"}});
  pass();
  report("n1", "1.0.0", true, condition("j", false, "edgecore 2.0.0 exited at start"));
  pass();
  auto s = byNode("j");
  EXPECT_EQ(s["n1"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["n2"].state, api::kUpgradeInProgress);  // tolerated: the job goes on
  report("n2", "1.0.0", true, condition("j", false, "edgecore 2.0.0 exited at start"));
  pass();
  s = byNode("j");
  EXPECT_EQ(s["n2"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["n3"].state, api::kUpgradeInit);  // never started
  EXPECT_EQ(s["n4"].state, api::kUpgradeInit);
  json done = get("j");
  EXPECT_EQ(api::stringAt(done, "status.state"), api::kUpgradeFailure);
  EXPECT_EQ(api::stringAt(done, "status.reason"),
            "0 of 4 node(s) upgraded; stopped: 2 failed, more than spec.failureTolerate 0.25 "
            "allows");
  // The default tolerates a tenth: one failure of two stops the job.
  edgeNode("m1");
  edgeNode("m2");
  job("k", {{"version", "2.0.0"}, {"nodeNames", {"m1", "ghost", "m2"}}, {"concurrency", 3}});
  pass();
  s = byNode("k");
  EXPECT_EQ(s["ghost"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["m1"].state, api::kUpgradeInit);
  EXPECT_EQ(s["m2"].state, api::kUpgradeInit);
  EXPECT_EQ(api::stringAt(get("k"), "status.state"), api::kUpgradeFailure);
  // Failures while starting count at once: tolerating none, the arm64 node without a binary
  // stops the job before the next node starts, concurrency or not.
  addNode("arm", "4", "8Gi", {});
  auto n = reg().get(nodeKind(), "", "arm");
  json next = *n;
  next["status"]["nodeInfo"] = {{"kubeletVersion", api::kubeletVersionFor("1.0.0")},
                                {"architecture", "arm64"}};
  next["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", "True"}}});
  ASSERT_TRUE(reg().update(nodeKind(), "", "arm", next, registry::Subresource::kStatus).isOk());
  edgeNode("amd");
  job("z", {{"version", "2.0.0"},
            {"nodeNames", {"arm", "amd"}},
            {"concurrency", 2},
            {"failureTolerate", "0"}});
  pass();
  s = byNode("z");
  EXPECT_EQ(s["arm"].state, api::kUpgradeFailure);
  EXPECT_EQ(s["amd"].state, api::kUpgradeInit);
  EXPECT_EQ(api::stringAt(get("z"), "status.state"), api::kUpgradeFailure);
}

TEST_F(NodeUpgradeControllerTest, AnImportEndingWakesTheRunningController) {
  // A resync far away: only the import's listener can bring the next pass.
  controller_ = std::make_unique<NodeUpgradeController>(
      reg(), env_.clock,
      NodeUpgradeControllerOptions{.resync = std::chrono::hours(1),
                                   .minGap = std::chrono::milliseconds(10),
                                   .imports = &imports_});
  edgeNode("n1");
  job("img", {{"version", "2.0.0"}, {"nodeNames", {"n1"}}, {"image", "r.example/e"}});
  ASSERT_TRUE(controller_->start().isOk());
  ASSERT_TRUE(ep::testing::eventually(
      [&] { return byNode("img")["n1"].reason.rfind("waiting for edgecore", 0) == 0; }, 10s));
  release("2.0.0");  // what the importer writes (not watched by the controller)
  {
    std::lock_guard l(imports_.mu_);
    imports_.state = {true, ""};
  }
  ASSERT_TRUE(imports_.listener);
  imports_.listener();
  EXPECT_TRUE(ep::testing::eventually(
      [&] { return byNode("img")["n1"].state == api::kUpgradeInProgress; }, 10s));
  controller_->stop();
  EXPECT_FALSE(imports_.listener);  // cleared on stop
}

}  // namespace
}  // namespace ep::controllers::testing
