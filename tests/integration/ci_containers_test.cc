// scripts/ci-containers.sh end to end (docs/install.md, "Cloud and edges in containers"): the
// images of this build, cloudcore and two edgecores with containerd inside privileged
// containers under podman-compose, both nodes Ready and the sample application Running, then
// everything torn down. Needs root, podman, podman-compose, skopeo and debootstrap (the first
// run debootstraps the edge-node image's base, about two minutes); skips otherwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/testing/process.h"

namespace ep::testing {
namespace {

bool have(const std::string& tool) {
  return runCommand({"sh", "-c", "command -v " + tool}).exitCode == 0;
}

// The script on this build, with ports of this run's own (other tests may run meanwhile).
CommandResult run(std::vector<std::string> args) {
  std::vector<std::string> env;
  for (const char* var : {"EDGEPLANE_API_PORT", "EDGEPLANE_TUNNEL_PORT", "EDGEPLANE_ROUTER_PORT",
                          "EDGEPLANE_EDGE1_LOCAL_PORT", "EDGEPLANE_EDGE2_LOCAL_PORT",
                          "EP_REGISTRY_PORT", "EP_SECURE_REGISTRY_PORT"}) {
    env.push_back(std::string(var) + "=" + std::to_string(freePort()));
  }
  std::vector<std::string> argv = {"bash", std::string(EP_SOURCE_DIR) + "/scripts/ci-containers.sh",
                                   "--no-build", "--build-dir", buildPath("")};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, "", std::chrono::minutes(14), env);
}

// Torn down: no container, network or image of the project, no bridge of its nodes, no work
// folder.
void expectNothingLeft() {
  auto left = runCommand({"podman", "ps", "-a", "--filter",
                          "label=io.podman.compose.project=edgeplane", "--format", "{{.Names}}"});
  EXPECT_EQ(left.out, "");
  EXPECT_NE(runCommand({"podman", "network", "exists", "edgeplane_default"}).exitCode, 0);
  EXPECT_EQ(
      runCommand({"podman", "images", "-q", "--filter", "reference=localhost/edgeplane/*"}).out,
      "");
  EXPECT_NE(runCommand({"ip", "link", "show", "ep-edge1"}).exitCode, 0);
  EXPECT_NE(runCommand({"ip", "link", "show", "ep-edge2"}).exitCode, 0);
  EXPECT_EQ(runCommand({"sh", "-c", "ls -d /var/tmp/edgeplane-ci-containers.* 2>/dev/null"}).out,
            "");
}

TEST(CiContainersTest, CloudAndTwoEdgesInContainersRunTheSampleAppAndLeaveNothingBehind) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  for (const char* tool : {"podman", "podman-compose", "skopeo", "debootstrap", "umoci",
                           "docker-registry", "htpasswd"}) {
    if (!have(tool)) GTEST_SKIP() << tool << " is missing (scripts/install-deps.sh)";
  }
  auto r = run({"--timeout", "180"});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  // The state it printed: two Ready nodes whose runtime is containerd, the app on both.
  for (const char* node : {"edge-1", "edge-2"}) {
    EXPECT_NE(r.out.find(std::string(node) + "   Ready"), std::string::npos) << r.out;
  }
  EXPECT_NE(r.out.find("containerd://"), std::string::npos) << r.out;
  size_t running = 0;
  for (size_t p = r.out.find("hello-"); p != std::string::npos; p = r.out.find("hello-", p + 1)) {
    const size_t eol = r.out.find('\n', p);
    if (r.out.substr(p, eol - p).find("Running") != std::string::npos) ++running;
  }
  EXPECT_EQ(running, 2u) << r.out;
  EXPECT_NE(r.out.find("ci-containers: ["), std::string::npos);
  EXPECT_NE(r.out.find("] ok"), std::string::npos) << r.out;
  expectNothingLeft();
}

TEST(CiContainersTest, ControlPlaneOnlyNodesGoReadyWithoutARuntime) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  for (const char* tool : {"podman", "podman-compose", "skopeo"}) {
    if (!have(tool)) GTEST_SKIP() << tool << " is missing (scripts/install-deps.sh)";
  }
  auto r = run({"--control-plane-only", "--timeout", "120"});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  for (const char* node : {"edge-1", "edge-2"}) {
    EXPECT_NE(r.out.find(std::string(node) + "   Ready"), std::string::npos) << r.out;
  }
  EXPECT_EQ(r.out.find("containerd://"), std::string::npos) << r.out;  // no runtime
  expectNothingLeft();
}

TEST(CiContainersTest, BadArgumentsAreUsageErrors) {
  auto r = runCommand(
      {"bash", std::string(EP_SOURCE_DIR) + "/scripts/ci-containers.sh", "--timeout", "soon"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.err.find("--timeout"), std::string::npos) << r.err;
  r = runCommand({"bash", std::string(EP_SOURCE_DIR) + "/scripts/ci-containers.sh", "--bogus"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_NE(r.err.find("unknown argument --bogus"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ep::testing
