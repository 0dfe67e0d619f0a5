// edgectl rollout status|history|undo and scale against FakeApi.

#include "edgectl/rollout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "common/clock.h"
#include "tests/edgectl/fake_api.h"

namespace ep::edgectl {
namespace {

using nlohmann::json;
using testing::FakeApi;
using ::testing::HasSubstr;

constexpr const char* kDeployPath = "/apis/apps/v1/namespaces/default/deployments/web";
constexpr const char* kRsPath = "/apis/apps/v1/namespaces/default/replicasets/";

json tmpl(const std::string& image) {
  return {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", {{{"name", "app"}, {"image", image}}}}}}};
}

class RolloutTest : public ::testing::Test {
 protected:
  RolloutTest() {
    ctx_.api = &api_;
    ctx_.out = &out_;
    ctx_.err = &err_;
    ctx_.clock = &clock_;
  }
  void putDeployment(int64_t generation, int64_t observed, int64_t replicas, int64_t updated,
                     int64_t total, int64_t available, const std::string& image = "nginx:2") {
    api_.put(kDeployPath,
             {{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"name", "web"}, {"uid", "d-uid"}, {"generation", generation}}},
              {"spec", {{"replicas", replicas}, {"template", tmpl(image)}}},
              {"status",
               {{"observedGeneration", observed},
                {"updatedReplicas", updated},
                {"replicas", total},
                {"availableReplicas", available}}}});
  }
  void putRs(const std::string& name, int64_t revision, const std::string& image,
             const std::string& ownerUid = "d-uid", const std::string& cause = "") {
    json t = tmpl(image);
    t["metadata"]["labels"]["pod-template-hash"] = name.substr(name.find('-') + 1);
    json rs = {{"metadata",
                {{"name", name},
                 {"annotations", {{"deployment.kubernetes.io/revision", std::to_string(revision)}}},
                 {"ownerReferences",
                  {{{"kind", "Deployment"}, {"uid", ownerUid}, {"controller", true}}}}}},
               {"spec", {{"template", t}}}};
    if (!cause.empty()) rs["metadata"]["annotations"]["kubernetes.io/change-cause"] = cause;
    api_.put(kRsPath + name, rs);
  }

  FakeApi api_;
  std::ostringstream out_;
  std::ostringstream err_;
  FakeClock clock_{1704067800000};
  Context ctx_;
};

TEST_F(RolloutTest, StatusStates) {
  auto state = [&](int64_t g, int64_t o, int64_t r, int64_t u, int64_t t, int64_t a) {
    putDeployment(g, o, r, u, t, a);
    return deploymentRolloutState(*api_.find(kDeployPath)).message;
  };
  EXPECT_EQ(state(2, 1, 2, 0, 0, 0), "Waiting for deployment spec update to be observed...\n");
  EXPECT_EQ(state(2, 2, 3, 1, 3, 1),
            "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been "
            "updated...\n");
  EXPECT_EQ(state(2, 2, 3, 3, 4, 2),
            "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending "
            "termination...\n");
  EXPECT_EQ(state(2, 2, 3, 3, 3, 2),
            "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are "
            "available...\n");
  EXPECT_EQ(state(2, 2, 3, 3, 3, 3), "deployment \"web\" successfully rolled out\n");
}

TEST_F(RolloutTest, StatusWaitsUntilRolledOut) {
  putDeployment(2, 2, 2, 2, 2, 1);
  RolloutOptions o;
  o.action = "status";
  o.args = {"deployment/web"};
  int polls = 0;
  o.sleep = [&](std::chrono::milliseconds d) {
    clock_.advance(d);
    if (++polls == 2) putDeployment(2, 2, 2, 2, 2, 2);
  };
  ASSERT_EQ(runRollout(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "Waiting for deployment \"web\" rollout to finish: 1 of 2 updated replicas are "
            "available...\n"
            "deployment \"web\" successfully rolled out\n");
  EXPECT_EQ(polls, 2);
}

TEST_F(RolloutTest, StatusTimesOut) {
  putDeployment(2, 1, 2, 0, 0, 0);
  RolloutOptions o;
  o.action = "status";
  o.args = {"deploy", "web"};
  o.timeout = std::chrono::seconds(3);
  o.sleep = [&](std::chrono::milliseconds d) { clock_.advance(d); };
  EXPECT_EQ(runRollout(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("timed out waiting for the condition"));
}

TEST_F(RolloutTest, StatusFailsOnProgressDeadline) {
  putDeployment(1, 1, 2, 1, 2, 1);
  json d = *api_.find(kDeployPath);
  d["status"]["conditions"] = {
      {{"type", "Progressing"}, {"status", "False"}, {"reason", "ProgressDeadlineExceeded"}}};
  api_.put(kDeployPath, d);
  RolloutOptions o;
  o.action = "status";
  o.args = {"deployment/web"};
  EXPECT_EQ(runRollout(ctx_, o), 1);
  EXPECT_EQ(err_.str(), "error: deployment \"web\" exceeded its progress deadline\n");
}

TEST_F(RolloutTest, History) {
  putDeployment(3, 3, 2, 2, 2, 2);
  putRs("web-aaa", 1, "nginx:1");
  putRs("web-bbb", 3, "nginx:2", "d-uid", "edgectl set image nginx:2");
  putRs("other-ccc", 2, "x", "someone-else");
  RolloutOptions o;
  o.action = "history";
  o.args = {"deployment/web"};
  ASSERT_EQ(runRollout(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "deployment.apps/web \n"
            "REVISION  CHANGE-CAUSE\n"
            "1         <none>\n"
            "3         edgectl set image nginx:2\n\n");
}

TEST_F(RolloutTest, UndoPutsPreviousTemplateBack) {
  putDeployment(3, 3, 2, 2, 2, 2, "nginx:3");
  putRs("web-aaa", 1, "nginx:1");
  putRs("web-bbb", 2, "nginx:2", "d-uid", "second");
  putRs("web-ccc", 3, "nginx:3");
  RolloutOptions o;
  o.action = "undo";
  o.args = {"deployment/web"};
  ASSERT_EQ(runRollout(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(), "deployment.apps/web rolled back\n");
  const json& d = *api_.find(kDeployPath);
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
  EXPECT_FALSE(d["spec"]["template"]["metadata"]["labels"].contains("pod-template-hash"));
  EXPECT_EQ(d["metadata"]["annotations"]["kubernetes.io/change-cause"], "second");

  out_.str("");
  o.toRevision = 1;
  ASSERT_EQ(runRollout(ctx_, o), 0) << err_.str();
  EXPECT_EQ((*api_.find(kDeployPath))["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1");
  out_.str("");
  ASSERT_EQ(runRollout(ctx_, o), 0);
  EXPECT_EQ(out_.str(),
            "deployment.apps/web skipped rollback (current template already matches revision "
            "1)\n");
  o.toRevision = 7;
  EXPECT_EQ(runRollout(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("unable to find specified revision 7 in history"));
}

TEST_F(RolloutTest, UndoWithoutHistoryFails) {
  putDeployment(1, 1, 1, 1, 1, 1);
  putRs("web-aaa", 1, "nginx:2");
  RolloutOptions o;
  o.action = "undo";
  o.args = {"deployment/web"};
  EXPECT_EQ(runRollout(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("no rollout history found for deployment \"web\""));
}

TEST_F(RolloutTest, RejectsOtherKindsAndBadArgs) {
  RolloutOptions o;
  o.action = "status";
  o.args = {"pod/web"};
  EXPECT_EQ(runRollout(ctx_, o), 1);
  o.action = "restart";
  o.args = {"deployment/web"};
  EXPECT_EQ(runRollout(ctx_, o), 1);
  o.action = "status";
  o.args = {"deployment/missing"};
  EXPECT_EQ(runRollout(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("Error from server (NotFound)"));
}

TEST_F(RolloutTest, Scale) {
  putDeployment(1, 1, 1, 1, 1, 1);
  api_.put(std::string(kRsPath) + "web-aaa",
           {{"metadata", {{"name", "web-aaa"}}}, {"spec", {{"replicas", 1}}}});
  ScaleOptions s;
  s.args = {"deployment/web"};
  s.replicas = 5;
  ASSERT_EQ(runScale(ctx_, s), 0) << err_.str();
  EXPECT_EQ(out_.str(), "deployment.apps/web scaled\n");
  EXPECT_EQ((*api_.find(kDeployPath))["spec"]["replicas"], 5);
  EXPECT_EQ(api_.calls.back().contentType, std::string(kMergePatch));
  out_.str("");
  s.args = {"deploy", "web"};
  s.replicas = 0;
  ASSERT_EQ(runScale(ctx_, s), 0);
  EXPECT_EQ((*api_.find(kDeployPath))["spec"]["replicas"], 0);
  s.args = {"rs/web-aaa"};
  s.replicas = 3;
  ASSERT_EQ(runScale(ctx_, s), 0);
  EXPECT_EQ(out_.str(), "deployment.apps/web scaled\nreplicaset.apps/web-aaa scaled\n");
  s.args = {"pod/web"};
  EXPECT_EQ(runScale(ctx_, s), 1);
  s.args = {"deployment/web"};
  s.replicas = -1;
  EXPECT_EQ(runScale(ctx_, s), 1);
  s.replicas = 2;
  s.args = {"deployment/nope"};
  EXPECT_EQ(runScale(ctx_, s), 1);
  EXPECT_THAT(err_.str(), HasSubstr("deployments \"nope\" not found"));
}

}  // namespace
}  // namespace ep::edgectl
