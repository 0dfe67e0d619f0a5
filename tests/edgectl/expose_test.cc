// edgectl expose against FakeApi, and the Service it builds from each kind.

#include "edgectl/expose.h"

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

json deployment() {
  return json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
      "spec": {"selector": {"matchLabels": {"app": "web"}},
               "template": {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "c", "image": "nginx",
                                     "ports": [{"containerPort": 80},
                                               {"containerPort": 53, "protocol": "UDP"}]}]}}}})");
}

class ExposeTest : public ::testing::Test {
 protected:
  ExposeTest() {
    ctx_.api = &api_;
    ctx_.out = &out_;
    ctx_.err = &err_;
    ctx_.clock = &clock_;
    ctx_.ns = "default";
  }
  FakeApi api_;
  std::ostringstream out_, err_;
  FakeClock clock_{1704067800000};
  Context ctx_;
};

TEST_F(ExposeTest, DeploymentWithAPortBecomesAService) {
  api_.put("/apis/apps/v1/namespaces/default/deployments/web", deployment());
  ExposeOptions o;
  o.args = {"deployment/web"};
  o.port = "8080";
  o.targetPort = "80";
  o.type = "NodePort";
  ASSERT_EQ(runExpose(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(), "service/web exposed\n");
  const json* s = api_.find("/api/v1/namespaces/default/services/web");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ((*s)["spec"]["selector"], json({{"app", "web"}}));
  EXPECT_EQ((*s)["spec"]["type"], "NodePort");
  EXPECT_EQ((*s)["spec"]["ports"],
            json::parse(R"([{"port": 8080, "protocol": "TCP", "targetPort": 80}])"));
  EXPECT_EQ((*s)["metadata"]["labels"], json({{"app", "web"}}));

  // Again: the server's AlreadyExists, as kubectl prints it.
  EXPECT_EQ(runExpose(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("AlreadyExists"));
}

TEST(ExposeServiceTest, PortsFromTheContainersAndSelectorsFromEachKind) {
  ExposeOptions o;
  auto svc = exposeService(deployment(), "default", o);
  ASSERT_TRUE(svc.isOk()) << svc.status().toString();
  EXPECT_EQ((*svc)["spec"]["ports"], json::parse(R"([
      {"name": "port-1", "port": 80, "protocol": "TCP", "targetPort": 80},
      {"name": "port-2", "port": 53, "protocol": "UDP", "targetPort": 53}])"));

  json pod = json::parse(R"({"kind": "Pod", "metadata": {"name": "p", "labels": {"run": "p"}},
      "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 9000}]}]}})");
  o.name = "p-svc";
  o.targetPort = "metrics";
  auto fromPod = exposeService(pod, "team", o);
  ASSERT_TRUE(fromPod.isOk());
  EXPECT_EQ((*fromPod)["metadata"]["name"], "p-svc");
  EXPECT_EQ((*fromPod)["metadata"]["namespace"], "team");
  EXPECT_EQ((*fromPod)["spec"]["selector"], json({{"run", "p"}}));
  EXPECT_EQ((*fromPod)["spec"]["ports"][0]["targetPort"], "metrics");

  // What cannot be exposed says why.
  json noPorts = pod;
  noPorts["spec"]["containers"][0].erase("ports");
  EXPECT_THAT(exposeService(noPorts, "team", ExposeOptions{}).status().message(),
              HasSubstr("couldn't find port via --port flag or introspection"));
  json expr = deployment();
  expr["spec"]["selector"] = json::parse(R"({"matchExpressions": [{"key": "app",
      "operator": "In", "values": ["web"]}]})");
  EXPECT_THAT(exposeService(expr, "default", ExposeOptions{}).status().message(),
              HasSubstr("matchExpressions"));
  ExposeOptions sel;
  sel.selector = "tier=front,app=web";
  sel.port = "80";
  auto custom = exposeService(expr, "default", sel);
  ASSERT_TRUE(custom.isOk());
  EXPECT_EQ((*custom)["spec"]["selector"], json({{"app", "web"}, {"tier", "front"}}));
  sel.port = "70000";
  EXPECT_FALSE(exposeService(expr, "default", sel).isOk());
}

}  // namespace
}  // namespace ep::edgectl
