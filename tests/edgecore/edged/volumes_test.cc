#include "edgecore/edged/volumes.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/api/base64.h"
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

class VolumesTest : public ::testing::Test {
 protected:
  Json pod(Json volumes) {
    return Json{{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "uid-1"}}},
                {"spec", {{"volumes", volumes}}}};
  }
  ObjectLookup lookup() {
    return [this](const std::string& r, const std::string& ns, const std::string& n) {
      auto it = objects_.find(r + "/" + ns + "/" + n);
      return it == objects_.end() ? std::optional<Json>() : std::optional<Json>(it->second);
    };
  }
  testing::TempDir dir_;
  VolumeManager vm_{dir_.path() + "/pods"};
  std::map<std::string, Json> objects_;
};

TEST_F(VolumesTest, ConfigMapFilesFollowChanges) {
  objects_["configmaps/ns/cfg"] = {{"data", {{"a.txt", "one"}, {"b.txt", "bee"}}}};
  Json p = pod({{{"name", "conf"}, {"configMap", {{"name", "cfg"}}}}});
  auto v = vm_.setUp(p, lookup());
  ASSERT_TRUE(v.isOk()) << v.status().message();
  std::string d = (*v)["conf"];
  EXPECT_EQ(readFile(d + "/a.txt"), "one");
  struct stat st {};
  ASSERT_EQ(::stat((d + "/a.txt").c_str(), &st), 0);
  ino_t before = st.st_ino;
  objects_["configmaps/ns/cfg"] = {{"data", {{"a.txt", "two"}}}};
  ASSERT_TRUE(vm_.setUp(p, lookup()).isOk());
  EXPECT_EQ(readFile(d + "/a.txt"), "two");
  EXPECT_FALSE(fs::exists(d + "/b.txt")) << "a removed key's file goes";
  ::stat((d + "/a.txt").c_str(), &st);
  EXPECT_NE(st.st_ino, before) << "replaced by rename, never rewritten in place";
  ASSERT_TRUE(vm_.setUp(p, lookup()).isOk());
  struct stat again {};
  ::stat((d + "/a.txt").c_str(), &again);
  EXPECT_EQ(again.st_ino, st.st_ino) << "unchanged content is not rewritten";
}

TEST_F(VolumesTest, SecretItemsAndModes) {
  objects_["secrets/ns/s"] = {{"data", {{"tls.key", api::base64Encode("KEY")}, {"x", "eA=="}}}};
  Json p = pod({{{"name", "certs"},
                 {"secret",
                  {{"secretName", "s"},
                   {"defaultMode", 0400},
                   {"items", {{{"key", "tls.key"}, {"path", "keys/server.key"}}}}}}}});
  auto v = vm_.setUp(p, lookup());
  ASSERT_TRUE(v.isOk()) << v.status().message();
  std::string f = (*v)["certs"] + "/keys/server.key";
  EXPECT_EQ(readFile(f), "KEY");
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  EXPECT_FALSE(fs::exists((*v)["certs"] + "/x"));
}

TEST_F(VolumesTest, MissingObjectsAndBadInputAreNamed) {
  auto v = vm_.setUp(pod({{{"name", "c"}, {"configMap", {{"name", "gone"}}}}}), lookup());
  ASSERT_FALSE(v.isOk());
  EXPECT_EQ(v.status().message(), "spec.volumes[0].configMap: configmap \"gone\" not found");
  v = vm_.setUp(pod({{{"name", "c"}, {"configMap", {{"name", "gone"}, {"optional", true}}}}}),
                lookup());
  ASSERT_TRUE(v.isOk());
  EXPECT_TRUE(fs::is_directory((*v)["c"]));
  objects_["configmaps/ns/cfg"] = {{"data", {{"a", "1"}}}};
  v = vm_.setUp(
      pod({{{"name", "c"},
            {"configMap", {{"name", "cfg"}, {"items", {{{"key", "a"}, {"path", "../x"}}}}}}}}),
      lookup());
  ASSERT_FALSE(v.isOk());
  EXPECT_NE(v.status().message().find("items[0].path"), std::string::npos);
  v = vm_.setUp(pod({{{"name", "h"}, {"hostPath", {{"path", "relative"}}}}}), lookup());
  ASSERT_FALSE(v.isOk());
  EXPECT_NE(v.status().message().find("spec.volumes[0].hostPath.path"), std::string::npos);
  v = vm_.setUp(pod({{{"name", "n"}, {"nfs", {{"server", "x"}}}}}), lookup());
  ASSERT_FALSE(v.isOk());
  EXPECT_NE(v.status().message().find("unsupported volume source"), std::string::npos);
}

TEST_F(VolumesTest, HostPathEmptyDirMountsAndTearDown) {
  std::string host = dir_.path() + "/host/data";
  auto v =
      vm_.setUp(pod({{{"name", "h"}, {"hostPath", {{"path", host}, {"type", "DirectoryOrCreate"}}}},
                     {{"name", "e"}, {"emptyDir", Json::object()}}}),
                lookup());
  ASSERT_TRUE(v.isOk()) << v.status().message();
  EXPECT_TRUE(fs::is_directory(host));
  Json c = {{"volumeMounts",
             {{{"name", "h"}, {"mountPath", "/data"}, {"readOnly", true}},
              {{"name", "e"}, {"mountPath", "/scratch"}, {"subPath", "sub"}}}}};
  auto mounts = containerMounts(c, *v, "spec.containers[0]");
  ASSERT_TRUE(mounts.isOk());
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_EQ((*mounts)[0].hostPath, host);
  EXPECT_TRUE((*mounts)[0].readonly);
  EXPECT_EQ((*mounts)[1].hostPath, (*v)["e"] + "/sub");
  Json bad = {{"volumeMounts", {{{"name", "e"}, {"mountPath", "/x"}, {"subPath", "../../etc"}}}}};
  EXPECT_FALSE(containerMounts(bad, *v, "spec.containers[0]").isOk());
  Json unknown = {{"volumeMounts", {{{"name", "zz"}, {"mountPath", "/x"}}}}};
  auto u = containerMounts(unknown, *v, "spec.containers[3]");
  ASSERT_FALSE(u.isOk());
  EXPECT_EQ(u.status().message(),
            "spec.containers[3].volumeMounts[0].name: volume \"zz\" not found");
  EXPECT_EQ(vm_.podUids(), std::vector<std::string>{"uid-1"});
  ASSERT_TRUE(vm_.tearDown("uid-1").isOk());
  EXPECT_TRUE(vm_.podUids().empty());
  EXPECT_TRUE(fs::is_directory(host)) << "hostPath contents are never removed";
  EXPECT_FALSE(vm_.tearDown("../etc").isOk());
}

}  // namespace
}  // namespace ep::edged
