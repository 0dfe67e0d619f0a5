#include "edgectl/port_forward.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/edgectl/fake_api.h"

namespace ep::edgectl {
namespace {

using nlohmann::json;
using testing::FakeApi;

struct Harness {
  FakeApi api;
  std::ostringstream out, err;
  Context ctx() {
    Context c;
    c.api = &api;
    c.out = &out;
    c.err = &err;
    c.ns = "edge";
    return c;
  }
  void pod(const std::string& name, const std::string& phase) {
    api.put("/api/v1/namespaces/edge/pods/" + name,
            {{"metadata", {{"name", name}, {"labels", {{"app", "web"}}}}},
             {"spec",
              {{"containers",
                json::array(
                    {{{"name", "web"},
                      {"ports", json::array({{{"name", "http"}, {"containerPort", 8080}}})}}})}}},
             {"status", {{"phase", phase}}}});
  }
};

Result<PortForwardTarget> resolve(Harness& h, std::vector<std::string> args) {
  PortForwardOptions o;
  o.args = std::move(args);
  Context ctx = h.ctx();
  return resolvePortForward(ctx, o);
}

TEST(PortForwardResolve, PodPortsAsKubectlReadsThem) {
  Harness h;
  h.pod("web-1", "Running");
  auto t = resolve(h, {"web-1", "8080", ":9090", "5000:http", "http"});
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ(t->pod, "web-1");
  ASSERT_EQ(t->ports.size(), 4u);
  EXPECT_EQ(t->ports[0].local, 8080);  // "8080": the same port here
  EXPECT_EQ(t->ports[0].remote, 8080);
  EXPECT_EQ(t->ports[1].local, 0);  // ":9090": any free one
  EXPECT_EQ(t->ports[1].remote, 9090);
  EXPECT_EQ(t->ports[2].local, 5000);
  EXPECT_EQ(t->ports[2].remote, 8080);  // the container port named http
  EXPECT_EQ(t->ports[3].local, 8080);
  EXPECT_EQ(t->ports[3].remote, 8080);

  auto bad = resolve(h, {"pod/web-1", "nosuch"});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("has no port \"nosuch\""), std::string::npos);
  bad = resolve(h, {"pod/web-1", "x:80"});
  EXPECT_NE(bad.status().message().find("invalid local port \"x\""), std::string::npos);
  bad = resolve(h, {"pod/web-1"});
  EXPECT_NE(bad.status().message().find("at least one port"), std::string::npos);
  bad = resolve(h, {"configmap/x", "80"});
  EXPECT_NE(bad.status().message().find("cannot forward ports of \"configmap\""),
            std::string::npos);
  h.pod("web-0", "Pending");
  bad = resolve(h, {"web-0", "80"});
  EXPECT_NE(bad.status().message().find("pod is not running. Current status=Pending"),
            std::string::npos);
}

TEST(PortForwardResolve, ServicesAndDeploymentsPickARunningPod) {
  Harness h;
  h.pod("web-0", "Pending");
  h.pod("web-2", "Running");
  h.pod("web-1", "Running");
  h.api.put(
      "/api/v1/namespaces/edge/services/web",
      {{"metadata", {{"name", "web"}}},
       {"spec",
        {{"selector", {{"app", "web"}}},
         {"ports", json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"}},
                                {{"name", "admin"}, {"port", 81}, {"targetPort", 9001}}})}}}});
  h.api.put("/apis/apps/v1/namespaces/edge/deployments/web",
            {{"metadata", {{"name", "web"}}},
             {"spec", {{"selector", {{"matchLabels", {{"app", "web"}}}}}}}});
  auto t = resolve(h, {"svc/web", "80", "8081:81"});
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ(t->pod, "web-1");  // running, first by name
  EXPECT_EQ(t->ports[0].local, 80);
  EXPECT_EQ(t->ports[0].remote, 8080);  // targetPort "http", the pod's port of that name
  EXPECT_EQ(t->ports[1].local, 8081);
  EXPECT_EQ(t->ports[1].remote, 9001);
  // A service port by name alone listens on the service port's number, as kubectl does.
  t = resolve(h, {"service/web", "http"});
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ(t->ports[0].local, 80);
  EXPECT_EQ(t->ports[0].remote, 8080);
  auto bad = resolve(h, {"svc/web", "82"});
  EXPECT_NE(bad.status().message().find("service web does not have a service port 82"),
            std::string::npos);
  t = resolve(h, {"deploy/web", ":http"});
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ(t->pod, "web-1");
  EXPECT_EQ(t->ports[0].remote, 8080);
  // The selector went to the server.
  bool asked = false;
  for (const auto& c : h.api.calls) {
    asked = asked || c.path == "/api/v1/namespaces/edge/pods?labelSelector=app%3Dweb";
  }
  EXPECT_TRUE(asked);
}

}  // namespace
}  // namespace ep::edgectl
