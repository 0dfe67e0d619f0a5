// Model volumes (CSI driver models.edgeplane.io): the atomic switch between versions, model.json,
// keeping the current version while a new one is missing, read-only mounts.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/api/models.h"
#include "edgecore/edged/volumes.h"
#include "tests/testing/temp_dir.h"

namespace ep::edged {
namespace {

namespace fs = std::filesystem;

std::string readFile(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kDigest1 = "sha256:" + std::string(64, '1');
const std::string kDigest2 = "sha256:" + std::string(64, '2');

class ModelVolumeTest : public ::testing::Test {
 protected:
  Json pod(const std::string& version = "") {
    Json attrs = {{"model", "digits"}};
    if (!version.empty()) attrs["version"] = version;
    return Json{
        {"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "uid-1"}}},
        {"spec",
         {{"volumes",
           Json::array(
               {{{"name", "model"},
                 {"csi", {{"driver", "models.edgeplane.io"}, {"volumeAttributes", attrs}}}}})}}}};
  }
  void pushVersion(const std::string& version, const std::string& digest, const std::string& file) {
    api::ModelVersion v{version, api::blobUrl(digest, file), "onnx", digest, file, 5, "t"};
    api::setModelVersion(model_, v);
  }
  void haveBlob(const std::string& digest, const std::string& content) {
    fs::create_directories(dir_.path() + "/store");
    std::string p = dir_.path() + "/store/" + digest.substr(7);
    std::ofstream(p) << content;
    blobs_[digest] = p;
  }
  ObjectLookup lookup() {
    return [this](const std::string& r, const std::string& ns,
                  const std::string& n) -> std::optional<Json> {
      if (r == api::kModelResource && ns == "ns" && n == "digits" && !model_.is_null()) {
        return model_;
      }
      return std::nullopt;
    };
  }
  std::string volumeDir() { return dir_.path() + "/pods/uid-1/volumes/models/model"; }

  testing::TempDir dir_;
  Json model_ = Json{{"metadata", {{"name", "digits"}, {"namespace", "ns"}}}};
  std::map<std::string, std::string> blobs_;         // digest -> path
  std::map<std::string, LocatedModel> resolutions_;  // api::ociPullKey -> what it resolved to
  VolumeManager vm_{
      dir_.path() + "/pods",
      [this](const api::ModelVersion& v, const std::string& ociKey) -> std::optional<LocatedModel> {
        if (v.oci) {
          auto it = resolutions_.find(ociKey);
          if (it == resolutions_.end()) return std::nullopt;
          return it->second;
        }
        auto it = blobs_.find(v.digest);
        if (it == blobs_.end()) return std::nullopt;
        return LocatedModel{it->second, v.digest, v.file, v.size};
      }};
};

TEST_F(ModelVolumeTest, WaitsForTheFirstVersionThenServesIt) {
  pushVersion("v1", kDigest1, "digits.onnx");
  auto r = vm_.setUp(pod(), lookup());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("spec.volumes[0]: model ns/digits version v1"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("is not on this node yet"), std::string::npos);

  haveBlob(kDigest1, "one");
  r = vm_.setUp(pod(), lookup());
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ((*r)["model"], volumeDir());
  EXPECT_EQ(readFile(volumeDir() + "/digits.onnx"), "one");
  auto info = Json::parse(readFile(volumeDir() + "/model.json"));
  EXPECT_EQ(info["name"], "digits");
  EXPECT_EQ(info["version"], "v1");
  EXPECT_EQ(info["sha256"], std::string(64, '1'));
  EXPECT_EQ(info["format"], "onnx");
  // The file is a hard link to the content store's (stored once), through ..data.
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((volumeDir() + "/digits.onnx").c_str(), &a), 0);
  ASSERT_EQ(::stat(blobs_[kDigest1].c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_TRUE(fs::is_symlink(volumeDir() + "/digits.onnx"));
  EXPECT_EQ(fs::read_symlink(volumeDir() + "/digits.onnx").string(), "..data/digits.onnx");
}

TEST_F(ModelVolumeTest, SwitchesAtomicallyKeepsServingWhileTheNewFileIsMissingAndRollsBack) {
  pushVersion("v1", kDigest1, "digits.onnx");
  haveBlob(kDigest1, "one");
  ASSERT_TRUE(vm_.setUp(pod(), lookup()).isOk());
  const std::string v1Dir = fs::read_symlink(volumeDir() + "/..data").string();

  // v2 is not on the node yet: the volume keeps v1 (no error: the pod keeps running).
  pushVersion("v2", kDigest2, "digits-v2.onnx");
  ASSERT_TRUE(vm_.setUp(pod(), lookup()).isOk());
  EXPECT_EQ(fs::read_symlink(volumeDir() + "/..data").string(), v1Dir);
  EXPECT_EQ(Json::parse(readFile(volumeDir() + "/model.json"))["version"], "v1");

  // It arrives: one rename of ..data; the new file name appears, the old one and v1's directory
  // go.
  haveBlob(kDigest2, "two");
  ASSERT_TRUE(vm_.setUp(pod(), lookup()).isOk());
  EXPECT_NE(fs::read_symlink(volumeDir() + "/..data").string(), v1Dir);
  EXPECT_EQ(readFile(volumeDir() + "/digits-v2.onnx"), "two");
  EXPECT_EQ(Json::parse(readFile(volumeDir() + "/model.json"))["version"], "v2");
  EXPECT_FALSE(fs::exists(volumeDir() + "/digits.onnx"));
  EXPECT_FALSE(fs::exists(volumeDir() + "/" + v1Dir));

  // Rollback: spec points at v1 again (history unchanged); its file is still cached.
  api::setModelVersion(model_, api::modelHistory(model_).front(), false);
  ASSERT_TRUE(vm_.setUp(pod(), lookup()).isOk());
  EXPECT_EQ(Json::parse(readFile(volumeDir() + "/model.json"))["version"], "v1");
  EXPECT_EQ(readFile(volumeDir() + "/digits.onnx"), "one");

  // Pinned to v2 by the volume: follows the pin, not the Model.
  auto pinned = vm_.setUp(pod("v2"), lookup());
  ASSERT_TRUE(pinned.isOk());
  EXPECT_EQ(Json::parse(readFile(volumeDir() + "/model.json"))["version"], "v2");
  // An unknown pin on a volume that has a version keeps it; on a new pod it is an error.
  ASSERT_TRUE(vm_.setUp(pod("v9"), lookup()).isOk());
  EXPECT_EQ(Json::parse(readFile(volumeDir() + "/model.json"))["version"], "v2");
  Json other = pod("v9");
  other["metadata"]["uid"] = "uid-2";
  auto bad = vm_.setUp(other, lookup());
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("has no version \"v9\""), std::string::npos);
}

TEST_F(ModelVolumeTest, MissingModelOrNonBlobUrlIsAClearError) {
  model_ = Json();  // not in the cache
  auto r = vm_.setUp(pod(), lookup());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("model \"digits\" not found on this node"),
            std::string::npos);
  model_ = Json{{"metadata", {{"name", "digits"}, {"namespace", "ns"}}},
                {"spec", {{"url", "s3://bucket/model.pb"}, {"format", "pb"}}}};
  r = vm_.setUp(pod(), lookup());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("spec.url"), std::string::npos) << r.status().message();
  Json noModel = pod();
  noModel["spec"]["volumes"][0]["csi"]["volumeAttributes"].erase("model");
  r = vm_.setUp(noModel, lookup());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("csi.volumeAttributes.model: required"), std::string::npos);
}

TEST_F(ModelVolumeTest, AnOciArtifactIsServedOnceItsUrlResolvedToAFileOnTheNode) {
  const std::string url = "oci://registry.example:5443/models/digits:v2";
  model_ = Json{{"metadata", {{"name", "digits"}, {"namespace", "ns"}}},
                {"spec", {{"url", url}, {"format", "onnx"}}}};
  // Not pulled yet: a new volume cannot start, and says which url it waits for.
  auto r = vm_.setUp(pod(), lookup());
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find(url + ") is not on this node yet"), std::string::npos)
      << r.status().message();
  // Pulled: the file under the name the artifact gave it, model.json with the url and digest;
  // the version is the tag (the Model has no version annotation).
  const std::string digest = "sha256:" + std::string(64, '3');
  const std::string path = dir_.path() + "/oci-blob";
  std::ofstream(path) << "oci bytes";
  // Recorded for another namespace's pull only: not this Model's.
  resolutions_[api::ociPullKey("other", "", url)] = LocatedModel{path, digest, "digits.onnx", 9};
  EXPECT_FALSE(vm_.setUp(pod(), lookup()).isOk());
  resolutions_[api::ociPullKey("ns", "", url)] = LocatedModel{path, digest, "digits.onnx", 9};
  r = vm_.setUp(pod(), lookup());
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(readFile(volumeDir() + "/digits.onnx"), "oci bytes");
  Json info = Json::parse(readFile(volumeDir() + "/model.json"));
  EXPECT_EQ(info["version"], "v2");
  EXPECT_EQ(info["digest"], digest);
  EXPECT_EQ(info["url"], url);
  EXPECT_EQ(info["size"], 9);
  EXPECT_EQ(info["file"], "digits.onnx");
}

TEST_F(ModelVolumeTest, ModelVolumesAreMountedReadOnly) {
  Json p = pod();
  EXPECT_EQ(readOnlyVolumes(p), std::set<std::string>{"model"});
  Json container = {{"name", "c"},
                    {"volumeMounts", Json::array({{{"name", "model"}, {"mountPath", "/models"}}})}};
  auto mounts =
      containerMounts(container, {{"model", "/x"}}, "spec.containers[0]", readOnlyVolumes(p));
  ASSERT_TRUE(mounts.isOk());
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_TRUE((*mounts)[0].readonly);
}

}  // namespace
}  // namespace ep::edged
