// EdgecoreReleases made from container images (cloudcore/upgrades/image_importer.h), against a
// real Registry on SQLite, a real BlobStore in a temp dir and a registry fake holding an image
// index with two platforms: the binaries land in the blob store and the release, layers are
// checked and read top-down with whiteouts, credentials come from the named Secret only for
// the image's registry, and what is wrong is named.
#include "cloudcore/upgrades/image_importer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "common/api/base64.h"
#include "common/api/object_util.h"
#include "common/api/upgrades.h"
#include "common/digest/sha256.h"
#include "tests/cloudcore/controllers/workload_fixture.h"
#include "tests/cloudcore/upgrades/tar_builder.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace ep::upgrades::testing {
namespace {

using Json = nlohmann::json;

// A registry of one repository: manifests by tag or digest, blobs by digest.
class FakeOci final : public oci::OciRegistry {
 public:
  Result<oci::OciArtifact> resolve(const api::OciRef&, const oci::RegistryCredentials&) override {
    return Status(Code::kInternal, "not used by the importer");
  }
  Result<oci::OciManifest> manifest(const api::OciRef& ref,
                                    const oci::RegistryCredentials& creds) override {
    std::lock_guard l(mu);
    seen.push_back(ref.registry + "/" + ref.repository + ":" + ref.reference() + " as " +
                   creds.username);
    if (!user.empty() && creds.username != user) {
      return Status(Code::kUnauthorized, "401 Unauthorized");
    }
    auto it = manifests.find(ref.reference());
    if (it == manifests.end()) return Status(Code::kNotFound, "404 Not Found: MANIFEST_UNKNOWN");
    return it->second;
  }
  Status fetch(const api::OciRef&, const oci::RegistryCredentials&, const oci::OciArtifact& a,
               uint64_t offset,
               const std::function<Status(uint64_t, std::string_view)>& onData) override {
    std::string data;
    {
      std::lock_guard l(mu);
      auto it = blobs.find(a.digest);
      if (it == blobs.end()) return Status(Code::kNotFound, "404 Not Found: BLOB_UNKNOWN");
      data = it->second;
      fetched.push_back(a.digest);
    }
    while (hold) {  // until the importer's cancel predicate says stop
      holding = true;
      if (cancelled()) return Status(Code::kUnavailable, "cancelled");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (size_t i = offset; i < data.size(); i += 3000) {
      if (auto s = onData(i, std::string_view(data).substr(i, 3000)); !s.isOk()) return s;
    }
    return {};
  }

  std::string blob(const std::string& bytes) {
    std::string d = digest::sha256Of(bytes);
    blobs[d] = bytes;
    return d;
  }
  Json descriptor(const std::string& bytes, const std::string& mediaType) {
    return {{"mediaType", mediaType}, {"digest", blob(bytes)}, {"size", bytes.size()}};
  }
  // An image manifest for `arch` over `layers` (base first); returns its digest.
  std::string image(const std::string& arch, const std::vector<std::string>& layers,
                    Json entrypoint = Json::array({"/usr/bin/edgecore"})) {
    Json config = {
        {"os", "linux"}, {"architecture", arch}, {"config", {{"Entrypoint", entrypoint}}}};
    Json m = {{"schemaVersion", 2},
              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
              {"config", descriptor(config.dump(), "application/vnd.oci.image.config.v1+json")},
              {"layers", Json::array()}};
    for (const auto& l : layers) {
      m["layers"].push_back(descriptor(l, "application/vnd.oci.image.layer.v1.tar+gzip"));
    }
    oci::OciManifest out{m.dump(), digest::sha256Of(m.dump()), m["mediaType"]};
    manifests[out.digest] = out;
    return out.digest;
  }
  void tag(const std::string& tag, const std::vector<std::pair<std::string, std::string>>& archs) {
    Json index = {{"schemaVersion", 2},
                  {"mediaType", "application/vnd.oci.image.index.v1+json"},
                  {"manifests", Json::array()}};
    for (const auto& [arch, digest] : archs) {
      const auto& m = manifests.at(digest);
      index["manifests"].push_back({{"mediaType", m.mediaType},
                                    {"digest", digest},
                                    {"size", m.body.size()},
                                    {"platform", {{"os", "linux"}, {"architecture", arch}}}});
    }
    manifests[tag] = {index.dump(), digest::sha256Of(index.dump()), index["mediaType"]};
  }

  std::mutex mu;
  std::map<std::string, oci::OciManifest> manifests;
  std::map<std::string, std::string> blobs;
  std::vector<std::string> seen;
  std::vector<std::string> fetched;
  std::string user;  // required when set
  std::atomic<bool> hold{false};
  std::atomic<bool> holding{false};
};

// An ELF header for `machine` (62 amd64, 183 arm64) followed by `n` bytes.
std::string elf(unsigned machine, size_t n) {
  std::string s(64 + n, '\0');
  s.replace(0, 4,
            "\x7f"
            "ELF");
  s[4] = 2;  // 64-bit
  s[5] = 1;  // little-endian
  s[18] = static_cast<char>(machine & 0xff);
  s[19] = static_cast<char>(machine >> 8);
  for (size_t i = 64; i < s.size(); ++i) s[i] = static_cast<char>(i * 13 + machine);
  return s;
}

std::string layer(const std::string& path, const std::string& data) {
  return gzip(TarBuilder().add("usr/", "", '5').add(path, data).finish());
}

class ImageImporterTest : public controllers::testing::WorkloadTest {
 protected:
  void SetUp() override {
    WorkloadTest::SetUp();
    ASSERT_TRUE(blobs_.start().isOk());
    auto fake = std::make_unique<FakeOci>();
    oci_ = fake.get();
    importer_ =
        std::make_unique<ImageImporter>(ImageImporterOptions{.workDir = dir_.path() + "/work"},
                                        reg(), blobs_, std::move(fake), env_.clock);
    ASSERT_TRUE(importer_->start().isOk());
  }
  void TearDown() override {
    importer_.reset();
    WorkloadTest::TearDown();
  }
  Json release(const std::string& v) {
    auto r = reg().get(
        *api::findByApiVersionKind("upgrade.edgeplane.io/v1alpha1", "EdgecoreRelease"), "", v);
    return r.isOk() ? *r : Json();
  }

  ep::testing::TempDir dir_;
  models::BlobStore blobs_{{.dir = dir_.path() + "/blobs"}};
  FakeOci* oci_ = nullptr;
  std::unique_ptr<ImageImporter> importer_;
};

TEST_F(ImageImporterTest, MakesAReleaseWithEveryPlatformsBinaryFromTheTopmostLayer) {
  const std::string amd = elf(62, 50000), arm = elf(183, 40000);
  // amd64: the binary in a lower layer is replaced by the one above it.
  const std::string amdImage = oci_->image(
      "amd64", {layer("usr/bin/edgecore", elf(62, 10)), layer("usr/bin/edgecore", amd)});
  const std::string armImage = oci_->image("arm64", {layer("usr/bin/edgecore", arm)});
  oci_->tag("2.0.0", {{"amd64", amdImage}, {"arm64", armImage}});

  ASSERT_TRUE(
      importer_->importNow({"k", "registry.example:5000/edgeplane/edgecore", "2.0.0", ""}).isOk());
  Json rel = release("2.0.0");
  auto a = api::releaseBinaryFor(rel, "amd64");
  auto b = api::releaseBinaryFor(rel, "arm64");
  ASSERT_TRUE(a && b) << rel.dump();
  EXPECT_EQ(a->digest, digest::sha256Of(amd));
  EXPECT_EQ(a->size, amd.size());
  EXPECT_EQ(b->digest, digest::sha256Of(arm));
  // The bytes are in the blob store, verified, as nodes will read them.
  auto chunk = blobs_.readChunk(a->digest, 0);
  ASSERT_TRUE(chunk.isOk()) << chunk.status().toString();
  EXPECT_EQ(chunk->data, amd.substr(0, chunk->data.size()));
  EXPECT_EQ(api::stringAt(rel["spec"]["binaries"][0], "image")
                .rfind("registry.example:5000/edgeplane/edgecore@sha256:", 0),
            0u);
  // The topmost layer held it: the lower one was never downloaded.
  EXPECT_EQ(std::count(oci_->fetched.begin(), oci_->fetched.end(),
                       digest::sha256Of(layer("usr/bin/edgecore", elf(62, 10)))),
            0);
  EXPECT_EQ(oci_->seen.front(), "registry.example:5000/edgeplane/edgecore:2.0.0 as ");

  // Importing again changes nothing.
  const std::string rv = api::stringAt(rel, "metadata.resourceVersion");
  ASSERT_TRUE(
      importer_->importNow({"k2", "registry.example:5000/edgeplane/edgecore", "2.0.0", ""}).isOk());
  EXPECT_EQ(api::stringAt(release("2.0.0"), "metadata.resourceVersion"), rv);
}

TEST_F(ImageImporterTest, APushedBinaryIsNeverReplacedAndMissingArchitecturesAreAdded) {
  const std::string pushed = "sha256:" + std::string(64, 'b');
  Json rel = {{"metadata", {{"name", "3.0.0"}}},
              {"spec",
               {{"version", "3.0.0"},
                {"binaries", {{{"architecture", "amd64"}, {"digest", pushed}, {"size", 7}}}}}}};
  ASSERT_TRUE(
      reg()
          .create(*api::findByApiVersionKind("upgrade.edgeplane.io/v1alpha1", "EdgecoreRelease"),
                  "", rel)
          .isOk());
  const std::string arm = elf(183, 100);
  oci_->tag("3.0.0", {{"amd64", oci_->image("amd64", {layer("usr/bin/edgecore", elf(62, 99))})},
                      {"arm64", oci_->image("arm64", {layer("usr/bin/edgecore", arm)})}});
  ASSERT_TRUE(importer_->importNow({"k", "r.example/e", "3.0.0", ""}).isOk());
  Json got = release("3.0.0");
  EXPECT_EQ(api::releaseBinaryFor(got, "amd64")->digest, pushed);
  ASSERT_TRUE(api::releaseBinaryFor(got, "arm64"));
  EXPECT_EQ(api::releaseBinaryFor(got, "arm64")->digest, digest::sha256Of(arm));
  // Nothing is left in the scratch directory.
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path() + "/work"));
}

TEST_F(ImageImporterTest, AnImportCutOffByStopIsQueuedAgainAfterTheNextStart) {
  oci_->tag("2.0.0", {{"amd64", oci_->image("amd64", {layer("usr/bin/edgecore", elf(62, 10))})}});
  oci_->hold = true;  // blobs wait until the importer cancels
  EXPECT_FALSE(importer_->request({"k", "r.example/e", "2.0.0", ""}).done);
  ASSERT_TRUE(ep::testing::eventually([&] { return oci_->holding.load(); }));
  importer_->stop();
  oci_->hold = false;
  ASSERT_TRUE(importer_->start().isOk());
  std::atomic<int> ended{0};
  importer_->setListener([&] { ++ended; });
  EXPECT_FALSE(importer_->request({"k", "r.example/e", "2.0.0", ""}).done);  // queued again
  ASSERT_TRUE(ep::testing::eventually([&] { return ended.load() == 1; }));
  EXPECT_TRUE(importer_->request({"k", "r.example/e", "2.0.0", ""}).done);
  importer_->setListener({});
}

TEST_F(ImageImporterTest, AnImportPastItsTimeoutFailsSayingSo) {
  importer_.reset();
  auto fake = std::make_unique<FakeOci>();
  oci_ = fake.get();
  importer_ = std::make_unique<ImageImporter>(
      ImageImporterOptions{.workDir = dir_.path() + "/work",
                           .importTimeout = std::chrono::milliseconds(300)},
      reg(), blobs_, std::move(fake), env_.clock);
  ASSERT_TRUE(importer_->start().isOk());
  oci_->tag("2.0.0", {{"amd64", oci_->image("amd64", {layer("usr/bin/edgecore", elf(62, 10))})}});
  oci_->hold = true;
  importer_->request({"k", "r.example/e", "2.0.0", ""});
  ASSERT_TRUE(ep::testing::eventually([&] {
    return !importer_->request({"k", "r.example/e", "2.0.0", ""}).error.empty();
  }));
  EXPECT_NE(importer_->request({"k", "r.example/e", "2.0.0", ""})
                .error.find("the import took longer than 300ms"),
            std::string::npos);
}

TEST_F(ImageImporterTest, NamesWhatIsWrongWithTheImage) {
  auto importError = [&](const std::string& image, const std::string& version) {
    Status s = importer_->importNow({"k", image, version, ""});
    EXPECT_FALSE(s.isOk());
    return s.message();
  };
  // Missing tag.
  EXPECT_NE(importError("r.example/e", "9.9.9").find("404 Not Found"), std::string::npos);
  // Deleted by a whiteout above.
  oci_->tag(
      "1",
      {{"amd64", oci_->image("amd64", {layer("usr/bin/edgecore", elf(62, 10)),
                                       gzip(TarBuilder().add("usr/bin/.wh.edgecore").finish())})}});
  EXPECT_NE(importError("r.example/e", "1").find("deletes or hides /usr/bin/edgecore (a whiteout"),
            std::string::npos);
  // Not there at all; the entrypoint names where to look.
  oci_->tag("2", {{"amd64", oci_->image("amd64", {layer("usr/bin/other", elf(62, 10))},
                                        Json::array({"/opt/edgecore", "--flag"}))}});
  EXPECT_NE(importError("r.example/e", "2").find("no /opt/edgecore in the image's layers"),
            std::string::npos);
  // The wrong architecture for the platform.
  oci_->tag("3", {{"amd64", oci_->image("amd64", {layer("usr/bin/edgecore", elf(183, 10))})}});
  EXPECT_NE(importError("r.example/e", "3").find("/usr/bin/edgecore in layer 0 (sha256:"),
            std::string::npos);
  EXPECT_NE(importError("r.example/e", "3")
                .find("is an executable for arm64, the image's platform is linux/amd64"),
            std::string::npos);
  // A layer whose bytes do not match the manifest.
  const std::string good = layer("usr/bin/edgecore", elf(62, 100));
  const std::string manifestDigest = oci_->image("amd64", {good});
  oci_->blobs[digest::sha256Of(good)] = layer("usr/bin/edgecore", elf(62, 101));
  oci_->tag("4", {{"amd64", manifestDigest}});
  EXPECT_NE(importError("r.example/e", "4").find("do not match the manifest's digest and size"),
            std::string::npos);
  EXPECT_EQ(release("4"), Json());
  // A reference that is not one.
  EXPECT_NE(importError("r.example/E", "1").find("spec.image: \"r.example/E\""), std::string::npos);
}

TEST_F(ImageImporterTest, UsesTheNamedSecretForItsRegistryOnly) {
  oci_->user = "robot";
  oci_->tag("2.0.0", {{"amd64", oci_->image("amd64", {layer("usr/bin/edgecore", elf(62, 10))})}});
  auto secret = [&](const std::string& name, const std::string& host) {
    Json auths = {{"auths", {{host, {{"auth", api::base64Encode("robot:pw")}}}}}};
    Json s = {{"metadata", {{"name", name}, {"namespace", "kube-system"}}},
              {"type", "kubernetes.io/dockerconfigjson"},
              {"data", {{".dockerconfigjson", api::base64Encode(auths.dump())}}}};
    ASSERT_TRUE(reg().create(*api::findByApiVersionKind("v1", "Secret"), "kube-system", s).isOk());
  };
  // A basic-auth Secret names no registry: refused for imports.
  Json basic = {
      {"metadata", {{"name", "basic"}, {"namespace", "kube-system"}}},
      {"type", "kubernetes.io/basic-auth"},
      {"data", {{"username", api::base64Encode("robot")}, {"password", api::base64Encode("pw")}}}};
  ASSERT_TRUE(
      reg().create(*api::findByApiVersionKind("v1", "Secret"), "kube-system", basic).isOk());
  Status b = importer_->importNow({"k", "r.example/e", "2.0.0", "basic"});
  EXPECT_NE(b.message().find("is of type \"kubernetes.io/basic-auth\"; it must be "
                             "kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg"),
            std::string::npos)
      << b.message();
  EXPECT_TRUE(oci_->seen.empty());  // nothing was sent anywhere
  secret("other-registry", "elsewhere.example");
  Status s = importer_->importNow({"k", "r.example/e", "2.0.0", "kube-system/other-registry"});
  EXPECT_NE(s.message().find("image pull secret kube-system/other-registry holds no credentials "
                             "for r.example (no entry for that registry in its auths)"),
            std::string::npos)
      << s.message();
  s = importer_->importNow({"k", "r.example/e", "2.0.0", "missing"});
  EXPECT_NE(s.message().find("image pull secret kube-system/missing"), std::string::npos);
  secret("regcred", "https://r.example");
  s = importer_->importNow({"k", "r.example/e", "2.0.0", "regcred"});
  EXPECT_TRUE(s.isOk()) << s.toString();
  EXPECT_TRUE(api::releaseBinaryFor(release("2.0.0"), "amd64"));
}

TEST_F(ImageImporterTest, RequestsRunOnTheWorkerAndEndInAState) {
  oci_->tag("2.0.0", {{"amd64", oci_->image("amd64", {layer("usr/bin/edgecore", elf(62, 10))})}});
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  importer_->setListener([&] {
    std::lock_guard l(mu);
    ++calls;
    cv.notify_all();
  });
  auto st = importer_->request({"ok", "r.example/e", "2.0.0", ""});
  EXPECT_FALSE(st.done);
  importer_->request({"bad", "r.example/e", "7.7.7", ""});
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return calls == 2; }));
  }
  EXPECT_TRUE(importer_->request({"ok", "r.example/e", "2.0.0", ""}).done);
  auto bad = importer_->request({"bad", "r.example/e", "7.7.7", ""});
  EXPECT_FALSE(bad.done);
  EXPECT_NE(bad.error.find("404"), std::string::npos) << bad.error;
  // Forgotten keys start over.
  importer_->retain({"ok"});
  EXPECT_TRUE(importer_->request({"ok", "r.example/e", "2.0.0", ""}).done);
  auto again = importer_->request({"bad", "r.example/e", "7.7.7", ""});
  EXPECT_TRUE(!again.done && again.error.empty());
  importer_->setListener({});
}

TEST(ImageRef, KubeEdgesFormIsTaggedWithTheVersion) {
  auto r = imageRefFor("kubeedge/installation-package", "v1.20.0");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->registry, "docker.io");
  EXPECT_EQ(r->repository, "kubeedge/installation-package");
  EXPECT_EQ(r->tag, "v1.20.0");
  r = imageRefFor("localhost:5000/edgeplane/edgecore:custom", "1.0.0");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->registry, "localhost:5000");
  EXPECT_EQ(r->tag, "custom");
  r = imageRefFor("r.example/e@sha256:" + std::string(64, 'a'), "1.0.0");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->digest, "sha256:" + std::string(64, 'a'));
  EXPECT_FALSE(imageRefFor("", "1").isOk());
  EXPECT_FALSE(imageRefFor("r.example/e", "bad+version").isOk());
}

}  // namespace
}  // namespace ep::upgrades::testing
