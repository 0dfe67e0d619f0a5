#include "edgectl/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ep::edgectl {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    path_ =
        fs::temp_directory_path() /
        ("edgectl-manifest-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) {
    fs::create_directories((path_ / name).parent_path());
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

TEST(SplitManifestTest, NumbersDocuments) {
  auto docs = splitManifest("app.yaml", "a: 1\n---\n---\nb: 2\n");
  ASSERT_TRUE(docs.isOk());
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[1].index, 1u);
  EXPECT_EQ((*docs)[1].source, "app.yaml");
}

TEST(SplitManifestTest, ErrorNamesSourceAndDocument) {
  auto docs = splitManifest("app.yaml",
                            "kind: Pod\n---\nkind: Pod\n---\nmetadata:\n  name: a\n  name: b\n");
  ASSERT_FALSE(docs.isOk());
  EXPECT_THAT(docs.status().message(), HasSubstr("error parsing app.yaml: document 2: line 7"));
  EXPECT_THAT(docs.status().message(), HasSubstr("duplicate key \"name\""));
}

TEST(ReadManifestsTest, DirectoriesAreSortedAndFiltered) {
  TempDir dir;
  dir.write("b.yaml", "kind: B\n");
  dir.write("a.yml", "kind: A\n---\nkind: A2\n");
  dir.write("c.json", R"({"kind":"C"})");
  dir.write("notes.txt", "kind: X\n");
  dir.write("sub/d.yaml", "kind: D\n");
  std::istringstream in;
  ManifestSet set = readManifests({dir.path()}, false, in);
  ASSERT_TRUE(set.errors.empty());
  std::vector<std::string> kinds;
  for (const auto& d : set.docs) kinds.push_back(d.object["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"A", "A2", "B", "C"}));
  EXPECT_EQ(set.docs[1].index, 1u);

  ManifestSet rec = readManifests({dir.path()}, true, in);
  EXPECT_EQ(rec.docs.size(), 5u);
}

TEST(ReadManifestsTest, StdinAndMissingPaths) {
  std::istringstream in("kind: FromStdin\n");
  ManifestSet set = readManifests({"-", "/no/such/file.yaml"}, false, in);
  ASSERT_EQ(set.docs.size(), 1u);
  EXPECT_EQ(set.docs[0].source, "STDIN");
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_EQ(set.errors[0], "the path \"/no/such/file.yaml\" does not exist");
}

TEST(CheckManifestObjectTest, RequiredFields) {
  using nlohmann::json;
  EXPECT_EQ(checkManifestObject(json::parse(R"({"kind":"Pod","metadata":{"name":"a"}})")).message(),
            "apiVersion not set");
  EXPECT_EQ(
      checkManifestObject(json::parse(R"({"apiVersion":"v1","metadata":{"name":"a"}})")).message(),
      "kind not set");
  EXPECT_EQ(checkManifestObject(json::parse(R"({"apiVersion":"v1","kind":"Pod"})")).message(),
            "resource name may not be empty");
  EXPECT_TRUE(checkManifestObject(
                  json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}})"))
                  .isOk());
}

}  // namespace
}  // namespace ep::edgectl
