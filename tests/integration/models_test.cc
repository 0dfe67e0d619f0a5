// Models end to end with real processes: edgectl model push into cloudcore's blob store, the
// file delivered over the mTLS tunnel to the three nodes whose pods use it, a cloudcore killed in
// the middle of a transfer (the download resumes; bytes resent bounded by one chunk), a new
// version and a rollback reaching the nodes, history, the node's bandwidth limit, the cloud's
// collection of unused files. With containerd (root): a pod sees the new version in its
// read-only volume without a restart, and keeps the old one while the cloud is gone in the
// middle of a switch.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "tests/integration/cri_edge_fixture.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr uint64_t kChunk = 256 * 1024;

std::string readFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ModelsTest : public EdgeFixture {
 protected:
  std::string writeModel(const std::string& name, size_t size, uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(size, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << s;
    return path;
  }
  std::string podYaml(const std::string& name, const std::string& node) {
    return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name +
           "\nspec:\n  nodeName: " + node +
           "\n  containers:\n  - name: app\n    image: busybox\n    volumeMounts:\n    - name: "
           "model\n      mountPath: /models\n  volumes:\n  - name: model\n    csi:\n      "
           "driver: models.edgeplane.io\n      volumeAttributes:\n        model: digits\n";
  }
  Json modelsStatus(const std::string& node) { return edgeGet(node, "/status")["models"]; }
  bool hasBlob(const std::string& node, const std::string& digest) {
    Json s = modelsStatus(node);
    if (!s.is_object()) return false;
    for (const auto& d : s.value("complete", Json::array())) {
      if (d == digest) return true;
    }
    return false;
  }
  std::string blobPath(const std::string& node, const std::string& digest) {
    return dir_.path() + "/" + node + "/models/blobs/" + digest.substr(7);
  }
  std::string digestOf(const std::string& pushOutput) {
    auto p = pushOutput.find("sha256:");
    return p == std::string::npos ? "" : pushOutput.substr(p, 71);
  }
};

TEST_F(ModelsTest, PushDeliversToThreeNodesResumesAfterACloudCrashAndRollsBack) {
  for (const char* node : {"edge-a", "edge-b", "edge-c"}) {
    startEdge(node, {"--model-bandwidth-limit", "2Mi"});
  }
  // v1: 6 MiB + a bit (25 chunks), at 2 MiB/s about 3 s per node.
  const std::string v1 = writeModel("digits.onnx", 6 * 1024 * 1024 + 123, 1);
  auto r = edgectl({"model", "push", "digits", v1, "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("model.sedna.io/digits pushed: version v1"), std::string::npos) << r.out;
  const std::string d1 = digestOf(r.out);
  ASSERT_EQ(d1.size(), 71u) << r.out;
  // Pushing the same bytes again uploads nothing.
  r = edgectl({"model", "push", "digits", v1, "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("(0 uploaded)"), std::string::npos) << r.out;
  // A version is immutable.
  const std::string other = writeModel("other.onnx", 1000, 9);
  r = edgectl({"model", "push", "digits", other, "--version", "v1"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("already exists with another file"), std::string::npos) << r.err;

  for (const char* node : {"edge-a", "edge-b", "edge-c"}) {
    r = edgectl({"apply", "-f", "-"}, podYaml(std::string("app-") + node, node));
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }
  // Kill cloudcore while edge-a's download is under way.
  ASSERT_TRUE(eventually(
      [&] {
        Json s = modelsStatus("edge-a");
        auto dl = s.is_object() ? s.value("downloading", Json::array()) : Json::array();
        return !dl.empty() && dl[0].value("bytes", uint64_t{0}) >= 2 * kChunk;
      },
      60s))
      << modelsStatus("edge-a").dump();
  cloud_->stop(SIGKILL);
  restartCloud();
  for (const char* node : {"edge-a", "edge-b", "edge-c"}) {
    ASSERT_TRUE(eventually([&] { return hasBlob(node, d1); }, 90s))
        << node << ": " << modelsStatus(node).dump();
    EXPECT_EQ(readFile(blobPath(node, d1)), readFile(v1)) << node;
  }
  Json stats = modelsStatus("edge-a")["stats"];
  const uint64_t size = std::filesystem::file_size(v1);
  EXPECT_LE(stats.value("duplicateBytes", uint64_t{0}), kChunk) << stats.dump();
  // What edge-a received in all: the file once, plus at most the chunks in flight at the crash.
  EXPECT_LE(stats.value("bytesReceived", uint64_t{0}), size + 4 * kChunk) << stats.dump();
  EXPECT_EQ(stats.value("downloadsCompleted", 0), 1) << stats.dump();

  // v2 reaches every node; the history lists both, v2 current.
  const std::string v2 = writeModel("digits-v2.onnx", 300 * 1024, 2);
  r = edgectl({"model", "push", "digits", v2, "--version", "v2"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string d2 = digestOf(r.out);
  for (const char* node : {"edge-a", "edge-b", "edge-c"}) {
    ASSERT_TRUE(eventually([&] { return hasBlob(node, d2); }, 60s)) << node;
  }
  r = edgectl({"model", "history", "digits"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("VERSION"), std::string::npos) << r.out;
  auto v2Line = r.out.substr(r.out.find("\nv2"));
  EXPECT_NE(v2Line.find("*"), std::string::npos) << r.out;

  // Rollback: spec.url points at v1 again; v1 is still on the nodes (kept for rollback).
  r = edgectl({"model", "rollback", "digits"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("rolled back to version v1"), std::string::npos) << r.out;
  auto model = edgectl({"get", "model", "digits", "-o", "json"});
  ASSERT_EQ(model.exitCode, 0) << model.err;
  Json m = Json::parse(model.out);
  EXPECT_EQ(m["spec"]["url"], "blob://sha256/" + d1.substr(7) + "/digits.onnx");
  EXPECT_EQ(m["spec"]["format"], "onnx");
  EXPECT_TRUE(hasBlob("edge-a", d1));
  r = edgectl({"model", "rollback", "digits", "--to-version", "v7"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("has no version \"v7\""), std::string::npos) << r.err;
}

TEST_F(ModelsTest, UploadsAreCheckedAndNodesOnlyGetWhatTheirPodsUse) {
  startEdge("edge-a");
  startEdge("edge-b");
  const std::string v1 = writeModel("m.onnx", 100 * 1024, 3);
  auto r = edgectl({"model", "push", "digits", v1, "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string d1 = digestOf(r.out);
  r = edgectl({"apply", "-f", "-"}, podYaml("app", "edge-a"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually([&] { return hasBlob("edge-a", d1); }, 30s));
  // edge-b runs no pod that uses the model: it neither gets the Model nor the file.
  EXPECT_FALSE(hasBlob("edge-b", d1));
  EXPECT_FALSE(std::filesystem::exists(blobPath("edge-b", d1)));

  // An upload whose bytes do not match the digest is refused and not kept.
  auto c = client();
  const std::string bogus = "sha256:" + std::string(64, 'c');
  auto put =
      c.request("PUT",
                "/apis/sedna.io/v1alpha1/namespaces/default/models/digits/upload?digest=" + bogus +
                    "&offset=0&complete=true",
                "not those bytes", "application/octet-stream");
  ASSERT_TRUE(put.isOk());
  EXPECT_EQ(put->status, 422) << put->body;
  EXPECT_NE(put->body.find("digest mismatch"), std::string::npos) << put->body;
  auto get = c.request("GET",
                       "/apis/sedna.io/v1alpha1/namespaces/default/models/digits/upload?"
                       "digest=" +
                           bogus);
  ASSERT_TRUE(get.isOk());
  EXPECT_EQ(Json::parse(get->body)["offset"], 0) << get->body;
  // A Model naming a file the cloud does not have: the node says so in the Model's status.
  const std::string ghost = std::string(64, 'd');
  r = edgectl({"apply", "-f", "-"},
              "apiVersion: sedna.io/v1alpha1\nkind: Model\nmetadata:\n  name: ghost\nspec:\n  "
              "url: blob://sha256/" +
                  ghost + "/x.onnx\n  format: onnx\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::string ghostPod = podYaml("ghost-app", "edge-a");
  ghostPod.replace(ghostPod.find("model: digits"), 13, "model: ghost");
  ghostPod.replace(ghostPod.find("name: ghost-app"), 15, "name: ghost-app");
  ASSERT_EQ(edgectl({"apply", "-f", "-"}, ghostPod).exitCode, 0);
  ASSERT_TRUE(eventually(
      [&] {
        auto m = edgectl({"get", "model", "ghost", "-o", "json"});
        Json j = Json::parse(m.out, nullptr, false);
        if (!j.is_object()) return false;
        const Json& e = j["status"]["nodes"]["edge-a"];
        return e.is_object() && e.value("state", "") == "Failed" &&
               e.value("error", "").find("not found") != std::string::npos;
      },
      30s))
      << edgectl({"get", "model", "ghost", "-o", "yaml"}).out;

  // A missing file and a bad version name are clear client errors.
  r = edgectl({"model", "push", "digits", dir_.path() + "/nope.onnx", "--version", "v2"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("nope.onnx"), std::string::npos) << r.err;
  r = edgectl({"model", "push", "digits", v1, "--version", "../x"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("--version"), std::string::npos) << r.err;
}

TEST_F(ModelsTest, StagedRolloutAndStatusPerVersion) {
  startEdge("edge-a");
  startEdge("edge-b");
  auto r =
      edgectl({"model", "push", "digits", writeModel("v1.onnx", 70 * 1024, 6), "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string d1 = digestOf(r.out);
  for (const char* node : {"edge-a", "edge-b"}) {
    ASSERT_EQ(edgectl({"apply", "-f", "-"}, podYaml(std::string("app-") + node, node)).exitCode, 0);
  }
  auto versionStatus = [&](const std::string& version) -> std::pair<int, int> {
    auto m = edgectl({"get", "model", "digits", "-o", "json"});
    Json j = Json::parse(m.out, nullptr, false);
    if (!j.is_object() || !j["status"].is_object()) return {-1, -1};  // no report yet
    for (const auto& v : j["status"].value("versions", Json::array())) {
      if (v.value("version", "") == version) return {v.value("nodes", 0), v.value("pods", 0)};
    }
    return {0, 0};
  };
  auto nodeVersion = [&](const std::string& node) -> std::string {
    auto m = edgectl({"get", "model", "digits", "-o", "json"});
    Json j = Json::parse(m.out, nullptr, false);
    if (!j.is_object() || !j["status"].is_object() || !j["status"]["nodes"].is_object() ||
        !j["status"]["nodes"].contains(node)) {
      return "";
    }
    const Json& e = j["status"]["nodes"][node];
    return e.value("state", "") == "Ready" ? e.value("version", "") : "";
  };
  // Every node reports its state; the Model's status counts nodes and pods per version.
  ASSERT_TRUE(eventually([&] { return versionStatus("v1") == std::make_pair(2, 2); }, 30s))
      << edgectl({"get", "model", "digits", "-o", "yaml"}).out;

  // v2 to edge-a only.
  r = edgectl({"model", "push", "digits", writeModel("v2.onnx", 80 * 1024, 7), "--version", "v2",
               "--canary-nodes", "edge-a"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("staged rollout: only edge-a get v2"), std::string::npos) << r.out;
  const std::string d2 = digestOf(r.out);
  ASSERT_TRUE(eventually([&] { return nodeVersion("edge-a") == "v2"; }, 30s))
      << edgectl({"get", "model", "digits", "-o", "yaml"}).out;
  // edge-b keeps serving v1 and never fetches v2.
  EXPECT_EQ(nodeVersion("edge-b"), "v1");
  EXPECT_FALSE(hasBlob("edge-b", d2));
  ASSERT_TRUE(eventually([&] { return versionStatus("v2") == std::make_pair(1, 1); }, 30s));
  r = edgectl({"model", "history", "digits"});
  EXPECT_NE(r.out.find("* (staged)"), std::string::npos) << r.out;

  // Promote: every node gets v2.
  r = edgectl({"model", "promote", "digits"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_NE(r.out.find("version v2 promoted to every node"), std::string::npos) << r.out;
  ASSERT_TRUE(eventually([&] { return nodeVersion("edge-b") == "v2"; }, 30s));
  ASSERT_TRUE(eventually([&] { return versionStatus("v2") == std::make_pair(2, 2); }, 30s));
  // v1 stays on the nodes for a rollback; it serves no pod any more.
  EXPECT_EQ(versionStatus("v1"), std::make_pair(2, 0));
  EXPECT_TRUE(hasBlob("edge-b", d1));
  // A staged rollout needs something for the other nodes to keep.
  r = edgectl(
      {"model", "push", "fresh", writeModel("f.onnx", 10, 8), "--version", "v1", "--canary", "1"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("needs an earlier version"), std::string::npos) << r.err;
}

TEST_F(ModelsTest, BandwidthLimitPacesTheDownload) {
  startEdge("edge-a", {"--model-bandwidth-limit", "1Mi"});
  // 3 MiB at 1 MiB/s with a bucket of one second: at least 2 s. Unlimited, this takes well
  // under half a second here (docs/performance.md, "Models").
  const std::string file = writeModel("paced.onnx", 3 * 1024 * 1024, 11);
  auto r = edgectl({"model", "push", "digits", file, "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string d = digestOf(r.out);
  const auto start = std::chrono::steady_clock::now();
  r = edgectl({"apply", "-f", "-"}, podYaml("app", "edge-a"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually([&] { return hasBlob("edge-a", d); }, 30s))
      << modelsStatus("edge-a").dump();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(secs, 1.9);
  EXPECT_LE(secs, 10.0);
  EXPECT_EQ(readFile(blobPath("edge-a", d)), readFile(file));
}

TEST_F(ModelsTest, TheCloudCollectsFilesNoModelRefersTo) {
  restartCloud({"--model-blob-gc-interval", "1s", "--model-blob-retention", "1s"});
  auto r = edgectl({"model", "push", "keep", writeModel("keep.onnx", 1000, 12), "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string keep = digestOf(r.out);
  r = edgectl({"model", "push", "drop", writeModel("drop.onnx", 2000, 13), "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string drop = digestOf(r.out);
  auto cloudBlob = [&](const std::string& digest) {
    return dataDir_ + "/blobs/sha256/" + digest.substr(7);
  };
  ASSERT_TRUE(std::filesystem::exists(cloudBlob(keep)));
  ASSERT_TRUE(std::filesystem::exists(cloudBlob(drop)));
  r = edgectl({"delete", "model", "drop"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  // Unreferenced and older than the retention: removed, with its chunk index. The collector
  // unlinks the blob, then the index (an orphan index is what a crash may leave, never an
  // orphan blob): wait for both, not for the first.
  ASSERT_TRUE(eventually(
      [&] {
        return !std::filesystem::exists(cloudBlob(drop)) &&
               !std::filesystem::exists(cloudBlob(drop) + ".index");
      },
      20s));
  // Just as old, but a Model refers to it.
  EXPECT_TRUE(std::filesystem::exists(cloudBlob(keep)));
  r = edgectl({"model", "push", "keep", writeModel("keep2.onnx", 1000, 14), "--version", "v2"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  // v1 is history now (a rollback needs it): kept through later collections, which the removal
  // of another unreferenced file shows have run.
  r = edgectl({"model", "push", "drop2", writeModel("drop2.onnx", 3000, 15), "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string drop2 = digestOf(r.out);
  r = edgectl({"delete", "model", "drop2"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually([&] { return !std::filesystem::exists(cloudBlob(drop2)); }, 20s));
  EXPECT_TRUE(std::filesystem::exists(cloudBlob(keep)));
}

// With containerd: the pod's read-only volume switches to the new version without a restart.
class ModelsE2eTest : public WithCri<ModelsTest> {
 protected:
  void SetUp() override {
    WithCri::SetUp();
    if (stopped()) return;
    startEdge("edge-a", {"--model-bandwidth-limit", "4Mi"});
  }
  std::string appPodYaml() {
    return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  nodeName: edge-a\n"
           "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: " +
           cri_->registry() +
           "/busybox:1.36\n    command: [\"sleep\", \"3600\"]\n    volumeMounts:\n    - "
           "name: model\n      mountPath: /models\n  volumes:\n  - name: model\n    csi:\n"
           "      driver: models.edgeplane.io\n      volumeAttributes:\n        model: "
           "digits\n";
  }
};

TEST_F(ModelsE2eTest, PodSeesNewVersionsAndRollbackWithoutRestart) {
  const std::string v1 = writeModel("digits.onnx", 50 * 1024, 4);
  auto r = edgectl({"model", "push", "digits", v1, "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = edgectl({"apply", "-f", "-"}, appPodYaml());
  ASSERT_EQ(r.exitCode, 0) << r.err;
  auto version = [&]() -> std::string {
    auto ex = edgectl({"exec", "app", "--", "cat", "/models/model.json"});
    if (ex.exitCode != 0) return "";
    Json j = Json::parse(ex.out, nullptr, false);
    return j.is_object() ? j.value("version", "") : "";
  };
  ASSERT_TRUE(eventually([&] { return version() == "v1"; }, 90s))
      << edgectl({"describe", "pod", "app"}).out;
  auto ex = edgectl({"exec", "app", "--", "sh", "-c", "wc -c < /models/digits.onnx"});
  EXPECT_EQ(ex.out, "51200\n") << ex.err;
  // Read-only.
  ex = edgectl({"exec", "app", "--", "sh", "-c", "echo x > /models/new"});
  EXPECT_NE(ex.exitCode, 0);

  const std::string v2 = writeModel("digits.onnx.v2", 60 * 1024, 5);
  std::filesystem::rename(v2, dir_.path() + "/v2.onnx");
  r = edgectl({"model", "push", "digits", dir_.path() + "/v2.onnx", "--version", "v2"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually([&] { return version() == "v2"; }, 60s));
  ex = edgectl({"exec", "app", "--", "sh", "-c", "wc -c < /models/v2.onnx"});
  EXPECT_EQ(ex.out, "61440\n") << ex.err;
  r = edgectl({"model", "rollback", "digits"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  ASSERT_TRUE(eventually([&] { return version() == "v1"; }, 30s));
  auto pod = edgectl({"get", "pod", "app", "-o", "json"});
  Json p = Json::parse(pod.out);
  EXPECT_EQ(p["status"]["containerStatuses"][0]["restartCount"], 0) << pod.out;
}

TEST_F(ModelsE2eTest, CloudGoneInTheMiddleOfASwitchKeepsTheOldVersionServing) {
  const std::string v1 = writeModel("digits.onnx", 100 * 1024, 6);
  auto r = edgectl({"model", "push", "digits", v1, "--version", "v1"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = edgectl({"apply", "-f", "-"}, appPodYaml());
  ASSERT_EQ(r.exitCode, 0) << r.err;
  // What the pod sees, asked of containerd directly: the cloud (and so edgectl exec) goes away.
  std::string container;
  ASSERT_TRUE(eventually(
      [&] {
        Json p = getJson("/api/v1/namespaces/default/pods/app");
        if (!p.is_object() || !p["status"].contains("containerStatuses")) return false;
        std::string id = p["status"]["containerStatuses"][0].value("containerID", "");
        if (id.find("://") == std::string::npos) return false;
        container = id.substr(id.find("://") + 3);
        return p["status"].value("phase", "") == "Running";
      },
      90s));
  int execs = 0;
  // `ctr tasks exec` itself fails now and then on a loaded machine (the exec's FIFOs, its
  // shim's answer): such a failure ("ctr: ..." on stderr) says nothing about the volume, so it
  // is tried again; so is a success that printed nothing (every command here prints something:
  // an empty answer is ctr's output copy losing the race with a process that exits at once).
  // A command that ran and failed is never retried.
  auto inPod = [&](const std::string& cmd) -> std::string {
    std::string why;
    for (int attempt = 0; attempt < 4; ++attempt) {
      auto ex = runCommand({"ctr", "--address", cri_->dir() + "/containerd.sock", "-n", "k8s.io",
                            "tasks", "exec", "--exec-id", "probe" + std::to_string(++execs),
                            container, "sh", "-c", cmd});
      if (ex.exitCode == 0 && !ex.out.empty()) return ex.out;
      why += "exit " + std::to_string(ex.exitCode) + ": out \"" + ex.out + "\" err \"" + ex.err +
             "\"; ";
      if (ex.exitCode != 0 && ex.err.rfind("ctr: ", 0) != 0) break;  // the command's own failure
    }
    return "(exec failed: " + why + ")";
  };
  // "VERSION FILE" from the volume's model.json, or what the pod answered instead.
  auto version = [&] {
    const std::string out = inPod("cat /models/model.json");
    Json j = Json::parse(out, nullptr, false);
    return j.is_object() ? j.value("version", "") + " " + j.value("file", "") : out;
  };
  ASSERT_TRUE(eventually([&] { return version() == "v1 digits.onnx"; }, 60s));

  // v2: 12 MiB at the node's 4 MiB/s, about 2 s. The cloud dies once a part of it is there.
  const std::string v2 = writeModel("v2.onnx", 12 * 1024 * 1024, 7);
  r = edgectl({"model", "push", "digits", v2, "--version", "v2"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const std::string d2 = digestOf(r.out);
  ASSERT_TRUE(eventually(
      [&] {
        auto dl = modelsStatus("edge-a").value("downloading", Json::array());
        return !dl.empty() && dl[0].value("digest", "") == d2 &&
               dl[0].value("bytes", uint64_t{0}) >= 2 * kChunk;
      },
      30s))
      << modelsStatus("edge-a").dump();
  cloud_->stop(SIGKILL);
  // Offline the download stops where it was, never completes, and the pod keeps v1 whole: the
  // partial file is not visible anywhere in the volume.
  ASSERT_TRUE(eventually(
      [&] { return !edgeGet("edge-a", "/status")["tunnel"].value("connected", true); }, 20s));
  Json before = modelsStatus("edge-a");
  EXPECT_FALSE(hasBlob("edge-a", d2)) << before.dump();
  EXPECT_EQ(version(), "v1 digits.onnx");
  EXPECT_EQ(inPod("wc -c < /models/digits.onnx"), "102400\n");
  EXPECT_EQ(inPod("ls /models"), "digits.onnx\nmodel.json\n");
  // Still so after longer than the rest of the download would have taken online.
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(version(), "v1 digits.onnx");
    ASSERT_FALSE(hasBlob("edge-a", d2));
  }

  // The cloud is back: the download resumes, the volume switches, the same container sees v2.
  restartCloud();
  ASSERT_TRUE(eventually([&] { return version() == "v2 v2.onnx"; }, 60s))
      << modelsStatus("edge-a").dump();
  EXPECT_EQ(inPod("wc -c < /models/v2.onnx"), std::to_string(12 * 1024 * 1024) + "\n");
  EXPECT_EQ(readFile(blobPath("edge-a", d2)), readFile(v2));
  Json stats = modelsStatus("edge-a")["stats"];
  EXPECT_LE(stats.value("duplicateBytes", uint64_t{0}), kChunk) << stats.dump();
  auto pod = edgectl({"get", "pod", "app", "-o", "json"});
  Json p = Json::parse(pod.out);
  EXPECT_EQ(p["status"]["containerStatuses"][0]["restartCount"], 0) << pod.out;
}

}  // namespace
}  // namespace ep::testing
