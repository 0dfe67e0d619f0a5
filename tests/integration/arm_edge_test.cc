// edgecore built for another architecture (scripts/build.sh --arch arm64|armhf) and run under
// qemu-user (Debian's qemu-user-static, with the build's sysroot as its library root) against
// this build's native cloudcore: it joins with a token, goes Ready, caches the pods bound to it
// and serves them from its local API, keeps serving with the cloud gone (across its own
// restart too), and catches up with what changed once the cloud is back.
// Label "arm": scripts/test-arm.sh builds the binaries and runs these; scripts/test.sh does not.
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "tests/integration/edge_fixture.h"

namespace ep::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Target {
  std::string arch;      // Debian's name: what --arch takes
  std::string qemu;      // the qemu-user binary for it
  std::string kubeArch;  // what the Node reports (Go's GOARCH), and the OCI architecture
  std::string variant;   // the OCI variant
  std::string loader;    // the dynamic loader binaries ask for (PT_INTERP)
};

// Seconds since the epoch of a Kubernetes MicroTime ("2026-12-07T15:40:01.123456Z"); 0 if it
// is not one.
double microTime(const std::string& text) {
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return 0;
  double fraction = 0;
  if (in.peek() == '.') in >> fraction;
  return static_cast<double>(timegm(&tm)) + fraction;
}

// gtest names the parameter in failure messages.
void PrintTo(const Target& t, std::ostream* os) {
  *os << t.arch;
}

std::string env(const std::string& name, const std::string& fallback) {
  const char* v = std::getenv(name.c_str());
  return v && *v ? v : fallback;
}

const char* kPods = "/api/v1/namespaces/default/pods";
const char* kCms = "/api/v1/namespaces/default/configmaps";

std::string pod(const std::string& name, const std::string& node) {
  return json{{"metadata", {{"name", name}}},
              {"spec",
               {{"nodeName", node},
                {"containers",
                 {{{"name", "c"},
                   {"image", "busybox:1.36"},
                   {"envFrom", {{{"configMapRef", {{"name", "settings"}}}}}}}}}}}}
      .dump();
}

class ArmEdgeTest : public EdgeFixture, public ::testing::WithParamInterface<Target> {
 protected:
  void SetUp() override {
    const Target& t = GetParam();
    std::string upper = t.arch;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    // scripts/test-arm.sh sets both; by default scripts/build.sh --arch's tree beside this one
    // and scripts/cross-sysroot.sh's root.
    const std::string build = env("EP_BUILD_DIR_" + upper, buildPath("../build-" + t.arch));
    const std::string sysroots = env(
        "EP_SYSROOT_DIR", env("XDG_CACHE_HOME", env("HOME", "/root") + "/.cache") + "/edgeplane");
    const std::string sysroot = env("EP_SYSROOT_" + upper, sysroots + "/sysroot-" + t.arch);
    const std::string binary = build + "/edgecore/edgecore";
    const std::string qemu = "/usr/bin/" + t.qemu;
    ASSERT_TRUE(std::filesystem::exists(binary))
        << binary << " is missing: scripts/build.sh --arch " << t.arch << " builds it";
    ASSERT_TRUE(std::filesystem::exists(sysroot + "/usr/lib")) << "no sysroot at " << sysroot;
    ASSERT_EQ(::access(qemu.c_str(), X_OK), 0) << qemu << ": apt-get install qemu-user-static";
    qemu_ = qemu;
    edgecoreCommand_ = {qemu, "-L", sysroot, binary};
    // Emulated code starts and runs several times slower than native.
    edgeStartTimeout_ = 60s;
    EdgeFixture::SetUp();
  }

  std::string qemu_;

  json node(const std::string& name) {
    auto r = client().request("GET", "/api/v1/nodes/" + name);
    if (!r.isOk() || r->status != 200) return {};
    return json::parse(r->body, nullptr, false);
  }
};

TEST_P(ArmEdgeTest, JoinsServesPodsOfflineAndCatchesUp) {
  const std::string name = "pi-" + GetParam().arch;
  startEdge(name);
  ASSERT_TRUE(eventually([&] { return nodeReady(name) == "True"; }, 90s));
  // The node is the emulated binary: it reports the architecture it was built for.
  const json info = node(name)["status"]["nodeInfo"];
  EXPECT_EQ(info.value("architecture", ""), GetParam().kubeArch) << info.dump();
  EXPECT_EQ(info.value("operatingSystem", ""), "linux");

  ASSERT_EQ(post(kCms, json{{"metadata", {{"name", "settings"}}}, {"data", {{"k", "v1"}}}}.dump()),
            201);
  ASSERT_EQ(post(kPods, pod("app", name)), 201);
  const std::string appPath = std::string(kPods) + "/app";
  const std::string cmPath = std::string(kCms) + "/settings";
  ASSERT_TRUE(eventually([&] { return edgeStatus(name, appPath) == 200; }, 60s));
  EXPECT_EQ(edgeGet(name, cmPath)["data"]["k"], "v1");

  // The cloud goes away: the edge keeps serving, also after its own restart (from its cache).
  const std::string leasePath =
      "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + name;
  auto renewTime = [&] {
    auto r = client().request("GET", leasePath);
    if (!r.isOk() || r->status != 200) return std::string();
    return json::parse(r->body, nullptr, false)["spec"].value("renewTime", "");
  };
  ASSERT_TRUE(eventually([&] { return !renewTime().empty(); }, 60s));
  ASSERT_GE(cloud_->stop(SIGTERM), 0);
  EXPECT_EQ(edgeStatus(name, appPath), 200);
  ASSERT_GE(edges_[name].proc->stop(SIGTERM, 30s), 0) << "edgecore did not stop on SIGTERM";
  startEdge(name, {"--token", ""});  // no token from here on: the node's own certificate
  EXPECT_EQ(edgeStatus(name, appPath), 200);
  EXPECT_EQ(edgeGet(name, kPods)["items"].size(), 1u);
  EXPECT_EQ(edgeGet(name, cmPath)["data"]["k"], "v1");

  // The cloud is back (same data): what changed meanwhile reaches the edge over its own
  // certificate, and the node is Ready again.
  const double restartedAt =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  restartCloud();
  ASSERT_EQ(patch(cmPath, R"({"data":{"k":"v2"}})"), 200);
  ASSERT_EQ(post(kPods, pod("app-2", name)), 201);
  EXPECT_TRUE(eventually(
      [&] {
        return edgeGet(name, cmPath)["data"]["k"] == "v2" &&
               edgeStatus(name, std::string(kPods) + "/app-2") == 200;
      },
      90s));
  // Heartbeats arrive again: the Lease is renewed after the cloud came back.
  EXPECT_TRUE(eventually([&] { return microTime(renewTime()) > restartedAt; }, 90s)) << renewTime();
  EXPECT_EQ(nodeReady(name), "True");
  EXPECT_TRUE(edges_[name].proc->running());
}

// scripts/build-images.sh with this machine's architecture and the target's: one tag, an image
// index with both platforms; the target's image alone (no sysroot, no host library) runs
// edgecore under emulation, so it holds every library and the loader the binary needs.
TEST_P(ArmEdgeTest, MultiArchitectureImageHoldsWhatTheBinaryNeeds) {
  const Target& t = GetParam();
  const std::string out = dir_.path() + "/images";
  const std::string host = runCommand({"dpkg", "--print-architecture"}).out;
  auto built = runCommand(
      {"/bin/bash", std::string(EP_SOURCE_DIR) + "/scripts/build-images.sh", "--no-build",
       "--build-dir", buildPath(""), "--images", "edgecore", "--arch",
       host.substr(0, host.find('\n')) + "," + t.arch, "--out", out, "--version", "9.9.9"},
      "", std::chrono::minutes(5));
  ASSERT_EQ(built.exitCode, 0) << built.out << built.err;
  EXPECT_NE(built.out.find("edgeplane/edgecore:9.9.9#" + t.arch), std::string::npos) << built.out;

  auto raw = runCommand({"skopeo", "inspect", "--raw", "oci:" + out + "/edgecore:9.9.9"});
  ASSERT_EQ(raw.exitCode, 0) << raw.err;
  const json index = json::parse(raw.out, nullptr, false);
  ASSERT_EQ(index.value("mediaType", ""), "application/vnd.oci.image.index.v1+json") << raw.out;
  ASSERT_EQ(index["manifests"].size(), 2u) << raw.out;
  bool found = false;
  for (const auto& m : index["manifests"]) {
    found |= m["platform"].value("architecture", "") == t.kubeArch &&
             m["platform"].value("variant", "") == t.variant;
  }
  EXPECT_TRUE(found) << raw.out;

  const std::string one = dir_.path() + "/one", rootfs = dir_.path() + "/rootfs";
  auto copied =
      runCommand({"skopeo", "copy", "--quiet", "--override-arch", t.kubeArch, "--override-variant",
                  t.variant, "oci:" + out + "/edgecore:9.9.9", "oci:" + one + ":x"});
  ASSERT_EQ(copied.exitCode, 0) << copied.err;
  auto unpacked = runCommand({"umoci", "raw", "unpack", "--image", one + ":x", rootfs});
  ASSERT_EQ(unpacked.exitCode, 0) << unpacked.err;
  auto version = runCommand({qemu_, "-L", rootfs, rootfs + "/usr/bin/edgecore", "--version"});
  EXPECT_EQ(version.exitCode, 0) << version.err;
  EXPECT_FALSE(version.out.empty());
  // qemu-user falls back to the host's files for what the root is missing: every library the
  // image's own loader resolves must be in the image.
  auto listed =
      runCommand({qemu_, "-L", rootfs, rootfs + t.loader, "--list", rootfs + "/usr/bin/edgecore"});
  ASSERT_EQ(listed.exitCode, 0) << listed.out << listed.err;
  int libraries = 0;
  std::stringstream lines(listed.out);
  for (std::string line; std::getline(lines, line);) {
    auto arrow = line.find("=> /");
    if (arrow == std::string::npos) continue;
    const std::string path = line.substr(arrow + 3, line.find(' ', arrow + 3) - arrow - 3);
    // The loader names itself by the path it was started from (inside the root already).
    const std::string inImage = path.rfind(rootfs, 0) == 0 ? path : rootfs + path;
    EXPECT_TRUE(std::filesystem::exists(inImage)) << path << " is not in the image";
    ++libraries;
  }
  EXPECT_GE(libraries, 5) << listed.out;  // libc, libstdc++, libsqlite3, libwolfssl, ...
}

INSTANTIATE_TEST_SUITE_P(Arch, ArmEdgeTest,
                         ::testing::Values(Target{"arm64", "qemu-aarch64-static", "arm64", "v8",
                                                  "/lib/ld-linux-aarch64.so.1"},
                                           Target{"armhf", "qemu-arm-static", "arm", "v7",
                                                  "/lib/ld-linux-armhf.so.3"}),
                         [](const auto& info) { return info.param.arch; });

}  // namespace
}  // namespace ep::testing
