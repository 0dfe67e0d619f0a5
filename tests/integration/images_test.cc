// scripts/build-images.sh: the images are reproducible, hold no shell, and work: cloudcore's
// image (as its non-root user) serves the API, and edgecore's image joins it with a token and
// its node goes Ready; both run with podman on the host's network.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/testing/eventually.h"
#include "tests/testing/process.h"
#include "tests/testing/temp_dir.h"

namespace ep::testing {
namespace {

namespace fs = std::filesystem;

const std::string kSource = EP_SOURCE_DIR;
const std::string kTag = "0.1.0-test";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "NAME REFERENCE DIGEST BYTES" lines of build-images.sh, by name.
std::map<std::string, std::pair<std::string, long>> parseTable(const std::string& out) {
  std::map<std::string, std::pair<std::string, long>> images;
  std::stringstream ss(out);
  std::string name, ref, digest, bytes;
  while (ss >> name >> ref >> digest >> bytes) {
    if (name == "NAME") continue;
    images[name] = {digest, std::stol(bytes)};
  }
  return images;
}

class ImagesTest : public ::testing::Test {
 protected:
  CommandResult buildImages(const std::string& out) {
    return runCommand({"/bin/bash", kSource + "/scripts/build-images.sh", "--no-build",
                       "--build-dir", buildPath(""), "--out", out, "--version", kTag},
                      "", std::chrono::minutes(5));
  }
  // podman with the limits this machine allows (root cannot raise them here).
  std::vector<std::string> podman(std::vector<std::string> args) {
    std::vector<std::string> argv = {"podman"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!args.empty() && args[0] == "run") {
      argv.insert(argv.begin() + 2,
                  {"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"});
    }
    return argv;
  }
  void TearDown() override {
    for (const auto& c : containers_) runCommand(podman({"rm", "-f", c}));
    for (const auto& i : images_) runCommand(podman({"rmi", "-f", i}));
  }
  TempDir dir_;
  std::vector<std::string> containers_, images_;
};

TEST_F(ImagesTest, BuildsAreReproducible) {
  auto a = buildImages(dir_.path() + "/a");
  ASSERT_EQ(a.exitCode, 0) << a.out << a.err;
  auto b = buildImages(dir_.path() + "/b");
  ASSERT_EQ(b.exitCode, 0) << b.out << b.err;
  auto ia = parseTable(a.out), ib = parseTable(b.out);
  ASSERT_TRUE(ia.count("cloudcore") && ia.count("edgecore") && ia.count("edgectl")) << a.out;
  EXPECT_EQ(ia, ib) << a.out << "\n" << b.out;

  // What an image holds: its binary, its libraries and the loader, and no shell.
  const std::string layout = dir_.path() + "/a/edgecore";
  auto index = nlohmann::json::parse(slurp(layout + "/index.json"));
  std::string manifestDigest = index["manifests"][0]["digest"];
  EXPECT_EQ(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], kTag);
  auto manifest =
      nlohmann::json::parse(slurp(layout + "/blobs/sha256/" + manifestDigest.substr(7)));
  std::string layerDigest = manifest["layers"][0]["digest"];
  auto list = runCommand({"tar", "-tzf", layout + "/blobs/sha256/" + layerDigest.substr(7)});
  EXPECT_NE(list.out.find("usr/bin/edgecore\n"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("ld-linux"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("libsqlite3"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("bin/sh\n"), std::string::npos) << list.out;
  std::string configDigest = manifest["config"]["digest"];
  auto config = nlohmann::json::parse(slurp(layout + "/blobs/sha256/" + configDigest.substr(7)));
  EXPECT_EQ(config["config"]["Labels"]["org.opencontainers.image.version"], kTag);
  EXPECT_EQ(config["config"]["Entrypoint"][0], "/usr/bin/edgecore");
  auto cloudConfig = [&] {
    const std::string l = dir_.path() + "/a/cloudcore";
    auto idx = nlohmann::json::parse(slurp(l + "/index.json"));
    std::string md = idx["manifests"][0]["digest"];
    auto m = nlohmann::json::parse(slurp(l + "/blobs/sha256/" + md.substr(7)));
    std::string cd = m["config"]["digest"];
    return nlohmann::json::parse(slurp(l + "/blobs/sha256/" + cd.substr(7)));
  }();
  EXPECT_EQ(cloudConfig["config"]["User"], "65532:65532");
}

TEST_F(ImagesTest, CloudAndEdgeRunFromTheirImages) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (podman)";
  if (!fs::exists("/usr/bin/podman")) GTEST_SKIP() << "podman is missing (scripts/install-deps.sh)";
  auto built = buildImages(dir_.path() + "/images");
  ASSERT_EQ(built.exitCode, 0) << built.out << built.err;
  // Names unique to this test run (tests run in parallel, and podman's store is shared).
  const std::string suffix = std::to_string(::getpid());
  for (const char* name : {"cloudcore", "edgecore"}) {
    const std::string ref = "localhost/ep-test-" + std::string(name) + ":" + suffix;
    auto copied = runCommand({"skopeo", "copy", "--quiet",
                              "oci:" + dir_.path() + "/images/" + name + ":" + kTag,
                              "containers-storage:" + ref});
    ASSERT_EQ(copied.exitCode, 0) << copied.err;
    images_.push_back(ref);
  }

  const int api = freePort(), tunnel = freePort(), router = freePort(), local = freePort();
  const std::string cloudName = "ep-test-cloud-" + suffix;
  auto cloud = runCommand(
      podman({"run", "-d", "--name", cloudName, "--network", "host",
              "localhost/ep-test-cloudcore:" + suffix, "--data-dir", "/var/lib/edgeplane/cloudcore",
              "--api-listen", "127.0.0.1:" + std::to_string(api), "--tunnel-listen",
              "127.0.0.1:" + std::to_string(tunnel), "--router-listen",
              "127.0.0.1:" + std::to_string(router)}));
  ASSERT_EQ(cloud.exitCode, 0) << cloud.err;
  containers_.push_back(cloudName);
  ASSERT_TRUE(waitReady(api, std::chrono::seconds(30), /*https=*/true))
      << runCommand(podman({"logs", cloudName})).err;
  // It runs as nonroot, and wrote the admin kubeconfig to its data dir.
  auto top = runCommand(podman({"top", cloudName, "user"}));
  EXPECT_NE(top.out.find("nonroot"), std::string::npos) << top.out << top.err;
  const std::string kubeconfig = dir_.path() + "/admin.kubeconfig";
  ASSERT_EQ(runCommand(podman({"cp", cloudName + ":/var/lib/edgeplane/cloudcore/admin.kubeconfig",
                               kubeconfig}))
                .exitCode,
            0);
  auto edgectl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {buildPath("edgectl/edgectl"), "--kubeconfig", kubeconfig};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  };
  auto token = edgectl({"token", "create"});
  ASSERT_EQ(token.exitCode, 0) << token.err;

  const std::string edgeName = "ep-test-edge-" + suffix;
  auto edge = runCommand(podman({"run",
                                 "-d",
                                 "--name",
                                 edgeName,
                                 "--network",
                                 "host",
                                 "localhost/ep-test-edgecore:" + suffix,
                                 "--data-dir",
                                 "/var/lib/edgeplane/edgecore",
                                 "--node-name",
                                 "image-node",
                                 "--cloud",
                                 "127.0.0.1:" + std::to_string(tunnel),
                                 "--token",
                                 token.out.substr(0, token.out.find('\n')),
                                 "--runtime-endpoint",
                                 "",
                                 "--mqtt-server",
                                 "",
                                 "--dmi-socket",
                                 "",
                                 "--service-proxy",
                                 "off",
                                 "--local-api-listen",
                                 "127.0.0.1:" + std::to_string(local),
                                 "--heartbeat-interval",
                                 "1s"}));
  ASSERT_EQ(edge.exitCode, 0) << edge.err;
  containers_.push_back(edgeName);
  auto ready = [&] {
    auto r = edgectl({"get", "node", "image-node", "-o", "json"});
    auto node = nlohmann::json::parse(r.out, nullptr, false);
    // A node that has just joined has no status until its first report.
    if (!node.is_object() || !node["status"].is_object()) return false;
    for (const auto& c : node["status"].value("conditions", nlohmann::json::array())) {
      if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
    }
    return false;
  };
  EXPECT_TRUE(eventually(ready, std::chrono::seconds(30), std::chrono::milliseconds(200)))
      << runCommand(podman({"logs", edgeName})).err;
}

}  // namespace
}  // namespace ep::testing
