// edgectl create secret docker-registry and set image against FakeApi.

#include "edgectl/create.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "common/api/base64.h"
#include "common/clock.h"
#include "tests/edgectl/fake_api.h"

namespace ep::edgectl {
namespace {

using nlohmann::json;
using testing::FakeApi;
using ::testing::HasSubstr;

constexpr const char* kDeployPath = "/apis/apps/v1/namespaces/default/deployments/web";

class CreateTest : public ::testing::Test {
 protected:
  CreateTest() {
    ctx_.api = &api_;
    ctx_.out = &out_;
    ctx_.err = &err_;
    ctx_.clock = &clock_;
  }
  FakeApi api_;
  std::ostringstream out_, err_;
  FakeClock clock_{1704067800000};
  Context ctx_;
};

TEST_F(CreateTest, DockerRegistrySecretCarriesKubectlsConfigDocument) {
  CreateSecretOptions o;
  o.args = {"docker-registry", "regcred"};
  o.dockerServer = "127.0.0.1:5443";
  o.dockerUsername = "edgeplane";
  o.dockerPassword = "s3cret";
  ASSERT_EQ(runCreateSecret(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(), "secret/regcred created\n");
  const json* s = api_.find("/api/v1/namespaces/default/secrets/regcred");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ((*s)["type"], "kubernetes.io/dockerconfigjson");
  auto decoded = api::base64Decode((*s)["data"][".dockerconfigjson"].get<std::string>());
  ASSERT_TRUE(decoded);
  json cfg = json::parse(*decoded);
  const json& entry = cfg["auths"]["127.0.0.1:5443"];
  EXPECT_EQ(entry["username"], "edgeplane");
  EXPECT_EQ(entry["password"], "s3cret");
  EXPECT_EQ(entry["auth"], api::base64Encode("edgeplane:s3cret"));
  EXPECT_FALSE(entry.contains("email"));

  // A second create answers the server's AlreadyExists, as kubectl prints it.
  out_.str("");
  EXPECT_EQ(runCreateSecret(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("Error from server (AlreadyExists)"));
}

TEST_F(CreateTest, DockerRegistryDryRunPrintsWithoutCreating) {
  CreateSecretOptions o;
  o.args = {"docker-registry", "regcred"};
  o.dockerUsername = "u";
  o.dockerPassword = "p";
  o.dockerEmail = "u@example.org";
  o.dryRun = "client";
  o.output = "json";
  ASSERT_EQ(runCreateSecret(ctx_, o), 0) << err_.str();
  EXPECT_EQ(api_.count("POST"), 0u);
  json printed = json::parse(out_.str());
  auto decoded = api::base64Decode(printed["data"][".dockerconfigjson"].get<std::string>());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(json::parse(*decoded)["auths"]["https://index.docker.io/v1/"]["email"],
            "u@example.org");
}

TEST_F(CreateTest, DockerRegistryRejectsMissingFlagsAndOtherGenerators) {
  CreateSecretOptions o;
  o.args = {"docker-registry", "regcred"};
  o.dockerPassword = "p";
  EXPECT_EQ(runCreateSecret(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("\"--docker-username\" not set"));
  o.dockerUsername = "u";
  o.args = {"generic", "x"};
  EXPECT_EQ(runCreateSecret(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("docker-registry"));
  o.args = {"docker-registry"};
  EXPECT_EQ(runCreateSecret(ctx_, o), 1);
  o.args = {"docker-registry", "x"};
  o.dryRun = "maybe";
  EXPECT_EQ(runCreateSecret(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("Invalid dry-run value (maybe)"));
  EXPECT_EQ(api_.count("POST"), 0u);
}

TEST_F(CreateTest, SetImagePatchesOnlyTheNamedContainersByName) {
  const json deployment =
      json::parse(R"({"metadata": {"name": "web"}, "spec": {"template": {"spec": {
      "initContainers": [{"name": "init", "image": "busybox:1"}],
      "containers": [{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "side:1"}]
  }}}})");
  api_.put(kDeployPath, deployment);
  SetImageOptions o;
  o.args = {"deployment/web", "app=app:2"};
  ASSERT_EQ(runSetImage(ctx_, o), 0) << err_.str();
  EXPECT_EQ(out_.str(), "deployment.apps/web image updated\n");
  const auto& patch = api_.calls.back();
  EXPECT_EQ(patch.method, "PATCH");
  EXPECT_EQ(patch.contentType, "application/strategic-merge-patch+json");
  EXPECT_EQ(patch.body, json::parse(R"({"spec": {"template": {"spec": {"containers":
                                       [{"name": "app", "image": "app:2"}]}}}})"));

  // "*" sets every container, init containers included; TYPE NAME works as TYPE/NAME. (The
  // fake applies patches as merge patches, which replaced the list: start again.)
  api_.put(kDeployPath, deployment);
  o.args = {"deploy", "web", "*=img:3"};
  ASSERT_EQ(runSetImage(ctx_, o), 0) << err_.str();
  EXPECT_EQ(api_.calls.back().body["spec"]["template"]["spec"]["containers"].size(), 2u);
  EXPECT_EQ(api_.calls.back().body["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "img:3");
  // The last image given for a container wins; each container appears once.
  api_.put(kDeployPath, deployment);
  o.args = {"deployment/web", "*=img:3", "app=app:4"};
  ASSERT_EQ(runSetImage(ctx_, o), 0) << err_.str();
  EXPECT_EQ(api_.calls.back().body["spec"]["template"]["spec"]["containers"],
            json::parse(R"([{"name": "app", "image": "app:4"},
                            {"name": "sidecar", "image": "img:3"}])"));
}

TEST_F(CreateTest, SetImageErrorsNameTheProblem) {
  api_.put(kDeployPath, json::parse(R"({"metadata": {"name": "web"}, "spec": {"template": {
      "spec": {"containers": [{"name": "app", "image": "a"}]}}}})"));
  SetImageOptions o;
  o.args = {"deployment/web", "nope=x:1"};
  EXPECT_EQ(runSetImage(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("unable to find container named \"nope\""));
  o.args = {"deployment/web"};
  EXPECT_EQ(runSetImage(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("CONTAINER=IMAGE"));
  o.args = {"deployment/web", "app="};
  EXPECT_EQ(runSetImage(ctx_, o), 1);
  o.args = {"configmap/web", "app=x"};
  EXPECT_EQ(runSetImage(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("no image support for configmap/web"));
  o.args = {"deployment/missing", "app=x"};
  EXPECT_EQ(runSetImage(ctx_, o), 1);
  EXPECT_THAT(err_.str(), HasSubstr("NotFound"));
  EXPECT_EQ(api_.count("PATCH"), 0u);
}

}  // namespace
}  // namespace ep::edgectl
