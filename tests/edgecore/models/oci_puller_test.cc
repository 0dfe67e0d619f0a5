// Models from OCI registries at the edge, against a scripted registry (FakeRegistry): a pulled
// file is verified before it becomes visible and its url's resolution recorded; a partial file
// resumes with a Range request, and a registry that ignores the Range is handled; corrupt bytes
// or a registry error never become visible and are tried again; a digest reference whose file
// is on the node needs no registry. Also the parsers of what a registry sends (challenges,
// manifests) and the content store's resolution records.
#include "edgecore/models/oci_puller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/digest/sha256.h"
#include "common/oci/registry.h"
#include "edgecore/models/content_store.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::models {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;
using ep::testing::eventually;

std::string bytesOf(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 9));
  return s;
}

// A registry holding one artifact; what it answers is scripted per test.
class FakeRegistry final : public OciRegistry {
 public:
  explicit FakeRegistry(std::string blob) : blob_(std::move(blob)) {}

  Result<OciArtifact> resolve(const api::OciRef& ref, const RegistryCredentials& creds) override {
    std::lock_guard l(mu_);
    ++resolves;
    if (!resolveError.empty()) return Status(Code::kNotFound, resolveError);
    if (requireUser && creds.username != "u")
      return Status(Code::kUnauthorized, "401 Unauthorized");
    OciArtifact a;
    a.digest = digest::sha256Of(blob_);
    a.size = blob_.size();
    a.file = "model.onnx";
    a.manifestDigest = "sha256:" + std::string(64, 'm');
    return a;
  }
  // The puller resolves; it never asks for raw manifests.
  Result<oci::OciManifest> manifest(const api::OciRef&, const RegistryCredentials&) override {
    return Status(Code::kInternal, "not used by the puller");
  }
  Status fetch(const api::OciRef& ref, const RegistryCredentials& creds, const OciArtifact& a,
               uint64_t offset,
               const std::function<Status(uint64_t, std::string_view)>& onData) override {
    std::string data;
    uint64_t from = 0;
    {
      std::lock_guard l(mu_);
      offsets.push_back(offset);
      data = blob_;
      if (corruptAt >= 0) data[static_cast<size_t>(corruptAt)] ^= 1;
      from = ignoreRange ? 0 : offset;
      if (cutAfter > 0 && cutAfter > from) data.resize(cutAfter);
    }
    for (uint64_t pos = from; pos < data.size(); pos += 4096) {
      auto n = std::min<uint64_t>(4096, data.size() - pos);
      if (auto s = onData(pos, std::string_view(data).substr(pos, n)); !s.isOk()) return s;
    }
    std::lock_guard l(mu_);
    if (cutAfter > 0) {
      cutAfter = 0;
      return unavailableError("connection reset");
    }
    return {};
  }

  std::mutex mu_;
  std::string blob_;
  int resolves = 0;
  std::vector<uint64_t> offsets;
  std::string resolveError;
  bool requireUser = false;
  bool ignoreRange = false;
  int64_t corruptAt = -1;
  uint64_t cutAfter = 0;  // the first fetch ends with an error after this many bytes
};

class OciPullerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.start().isOk()); }
  void TearDown() override {
    if (puller_) puller_->stop();
  }
  FakeRegistry& start(std::string blob) {
    auto reg = std::make_unique<FakeRegistry>(std::move(blob));
    registry_ = reg.get();
    OciPullerOptions o;
    o.retryDelay = 50ms;
    o.syncEveryBytes = 16 * 1024;
    puller_ = std::make_unique<OciPuller>(o, std::move(reg), store_, [this] { ++changes_; });
    puller_->start();
    return *registry_;
  }
  OciJob job(const std::string& url, const std::string& ns = "ns") {
    OciJob j;
    j.key = api::ociPullKey(ns, "", url);
    j.url = url;
    j.ref = *api::parseOciUrl(url);
    j.user = "ns/digits";
    return j;
  }
  bool resolvedTo(const std::string& url, const std::string& digest, const std::string& ns = "ns") {
    auto r = store_.resolution(api::ociPullKey(ns, "", url));
    return r && r->digest == digest && store_.complete(digest);
  }

  testing::TempDir dir_;
  ContentStore store_{dir_.path() + "/models"};
  FakeRegistry* registry_ = nullptr;
  std::unique_ptr<OciPuller> puller_;
  std::atomic<int> changes_{0};
  const std::string url_ = "oci://registry.example:5443/models/digits:v1";
};

TEST_F(OciPullerTest, PullsVerifiesAndRecordsTheResolution) {
  const std::string blob = bytesOf(100 * 1024, 1);
  start(blob);
  puller_->want({job(url_)});
  ASSERT_TRUE(eventually([&] { return resolvedTo(url_, digest::sha256Of(blob)); }));
  auto r = store_.resolution(api::ociPullKey("ns", "", url_));
  EXPECT_EQ(r->url, url_);
  EXPECT_EQ(r->file, "model.onnx");
  EXPECT_EQ(r->size, blob.size());
  EXPECT_EQ(r->manifestDigest, "sha256:" + std::string(64, 'm'));
  std::ifstream in(*store_.complete(r->digest), std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, blob);
  EXPECT_TRUE(eventually([&] { return changes_ > 0; }));
  EXPECT_TRUE(puller_->errors().empty());
  EXPECT_TRUE(store_.partialDigests().empty());
}

TEST_F(OciPullerTest, ACutTransferResumesWithARangeRequest) {
  const std::string blob = bytesOf(200 * 1024, 2);
  FakeRegistry& reg = start(blob);
  reg.cutAfter = 64 * 1024;
  puller_->want({job(url_)});
  ASSERT_TRUE(eventually([&] { return resolvedTo(url_, digest::sha256Of(blob)); }));
  std::lock_guard l(reg.mu_);
  ASSERT_EQ(reg.offsets.size(), 2u);
  EXPECT_EQ(reg.offsets[0], 0u);
  EXPECT_EQ(reg.offsets[1], 64u * 1024);  // only the missing bytes asked for
}

TEST_F(OciPullerTest, ARegistryIgnoringTheRangeStartsOver) {
  const std::string blob = bytesOf(200 * 1024, 3);
  FakeRegistry& reg = start(blob);
  reg.cutAfter = 64 * 1024;
  reg.ignoreRange = true;
  puller_->want({job(url_)});
  ASSERT_TRUE(eventually([&] { return resolvedTo(url_, digest::sha256Of(blob)); }));
  std::lock_guard l(reg.mu_);
  EXPECT_EQ(reg.offsets.back(), 64u * 1024);  // asked for the rest, got everything: still right
}

TEST_F(OciPullerTest, CorruptBytesNeverBecomeVisibleAndAreFetchedAgain) {
  const std::string blob = bytesOf(50 * 1024, 4);
  FakeRegistry& reg = start(blob);
  {
    std::lock_guard l(reg.mu_);
    reg.corruptAt = 1000;
  }
  puller_->want({job(url_)});
  const std::string key = api::ociPullKey("ns", "", url_);
  ASSERT_TRUE(eventually([&] { return puller_->errors().count(key) > 0; }));
  EXPECT_NE(puller_->errors()[key].find("hash to"), std::string::npos) << puller_->errors()[key];
  EXPECT_FALSE(store_.resolution(key));
  EXPECT_FALSE(store_.complete(digest::sha256Of(blob)));
  {
    std::lock_guard l(reg.mu_);
    reg.corruptAt = -1;  // the registry heals: the next attempt succeeds
  }
  ASSERT_TRUE(eventually([&] { return resolvedTo(url_, digest::sha256Of(blob)); }));
  EXPECT_TRUE(eventually([&] { return puller_->errors().empty(); }));
}

TEST_F(OciPullerTest, RegistryErrorsAreReportedAndNewCredentialsTriedAtOnce) {
  const std::string blob = bytesOf(10 * 1024, 5);
  FakeRegistry& reg = start(blob);
  {
    std::lock_guard l(reg.mu_);
    reg.requireUser = true;
  }
  puller_->want({job(url_)});
  const std::string key = api::ociPullKey("ns", "", url_);
  ASSERT_TRUE(eventually([&] { return puller_->errors().count(key) > 0; }));
  EXPECT_NE(puller_->errors()[key].find("401"), std::string::npos);
  OciJob j = job(url_);
  j.creds.username = "u";
  puller_->want({j});
  ASSERT_TRUE(eventually([&] { return resolvedTo(url_, digest::sha256Of(blob)); }));
}

// A pull recorded with its file on the node is not asked of the registry again, even after a
// restart with the registry gone (IfNotPresent); another namespace's Model naming the same url
// gets no share of it: it pulls with its own (here: refused) credentials.
TEST_F(OciPullerTest, APullOnTheNodeNeedsNoRegistryAndIsNotSharedAcrossNamespaces) {
  const std::string blob = bytesOf(10 * 1024, 6);
  FakeRegistry& reg = start(blob);
  puller_->want({job(url_)});
  ASSERT_TRUE(eventually([&] { return resolvedTo(url_, digest::sha256Of(blob)); }));
  {
    std::lock_guard l(reg.mu_);
    EXPECT_EQ(reg.resolves, 1);
    reg.requireUser = true;  // the other namespace has no credentials
  }
  puller_->want({job(url_), job(url_, "other")});
  const std::string otherKey = api::ociPullKey("other", "", url_);
  ASSERT_TRUE(eventually([&] { return puller_->errors().count(otherKey) > 0; }));
  EXPECT_FALSE(store_.resolution(otherKey));
  EXPECT_EQ(puller_->errors().count(api::ociPullKey("ns", "", url_)), 0u);
  puller_->stop();

  // A restart (a new puller over the same store) with the registry unreachable.
  auto reg2 = std::make_unique<FakeRegistry>(blob);
  FakeRegistry* r2 = reg2.get();
  {
    std::lock_guard l(r2->mu_);
    r2->resolveError = "the registry is gone";
  }
  OciPuller again({}, std::move(reg2), store_, nullptr);
  again.start();
  again.want({job(url_)});
  EXPECT_TRUE(eventually([&] { return !again.digestsInUse().empty(); }));
  again.stop();
  EXPECT_EQ(r2->resolves, 0);
  EXPECT_TRUE(again.errors().empty());
}

// A Secret that went missing keeps the pull wanted (nothing pulled, nothing lost); back, the
// pull goes on at once.
TEST_F(OciPullerTest, ABlockedPullWaitsWithoutLosingItsPlace) {
  const std::string blob = bytesOf(10 * 1024, 7);
  FakeRegistry& reg = start(blob);
  OciJob j = job(url_);
  j.blocked = "spec.credentialName: secret ns/pull is not on this node (yet)";
  puller_->want({j});
  // Nothing to wait for: a short look that no request went out.
  EXPECT_FALSE(eventually(
      [&] {
        std::lock_guard l(reg.mu_);
        return reg.resolves > 0;
      },
      300ms));
  j.blocked.clear();
  puller_->want({j});
  ASSERT_TRUE(eventually([&] { return resolvedTo(url_, digest::sha256Of(blob)); }));
}

TEST(OciRegistryParsers, Challenges) {
  auto c = oci::parseAuthChallenge(
      "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
      "scope=\"repository:models/digits:pull\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example/token");
  EXPECT_EQ(c->params["service"], "registry.example");
  EXPECT_EQ(c->params["scope"], "repository:models/digits:pull");
  c = oci::parseAuthChallenge("Basic realm=\"Registry \\\"Realm\\\"\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->params["realm"], "Registry \"Realm\"");
  EXPECT_FALSE(oci::parseAuthChallenge(""));
}

TEST(OciRegistryParsers, Manifests) {
  const std::string d = "sha256:" + std::string(64, 'b');
  auto layer = [&](const std::string& title) {
    Json l = {{"mediaType", "application/octet-stream"}, {"digest", d}, {"size", 42}};
    if (!title.empty()) l["annotations"] = {{"org.opencontainers.image.title", title}};
    return l;
  };
  Json m = {{"schemaVersion", 2}, {"layers", {layer("digits.onnx")}}};
  auto a = oci::parseModelManifest(m.dump());
  ASSERT_TRUE(a.isOk()) << a.status().message();
  EXPECT_EQ(a->digest, d);
  EXPECT_EQ(a->size, 42u);
  EXPECT_EQ(a->file, "digits.onnx");
  // Untitled single layer, or a title that is no file name: "model".
  m["layers"] = {layer("")};
  EXPECT_EQ(oci::parseModelManifest(m.dump())->file, "model");
  m["layers"] = {layer("../etc/passwd")};
  EXPECT_EQ(oci::parseModelManifest(m.dump())->file, "model");
  // Several layers: the titled one; none titled is refused.
  m["layers"] = {layer(""), layer("b.onnx")};
  EXPECT_EQ(oci::parseModelManifest(m.dump())->file, "b.onnx");
  m["layers"] = {layer(""), layer("")};
  EXPECT_NE(oci::parseModelManifest(m.dump()).status().message().find("none titled"),
            std::string::npos);
  // An index, no layers, a bad digest or size: refused, naming the field.
  EXPECT_NE(oci::parseModelManifest(R"({"mediaType":"application/vnd.oci.image.index.v1+json"})")
                .status()
                .message()
                .find("image index"),
            std::string::npos);
  EXPECT_NE(oci::parseModelManifest(R"({"layers":[]})").status().message().find("layers"),
            std::string::npos);
  m["layers"] = {{{"digest", "md5:abc"}, {"size", 1}}};
  EXPECT_NE(oci::parseModelManifest(m.dump()).status().message().find("layers[0].digest"),
            std::string::npos);
  m["layers"] = {{{"digest", d}, {"size", -1}}};
  EXPECT_NE(oci::parseModelManifest(m.dump()).status().message().find("layers[0].size"),
            std::string::npos);
  EXPECT_FALSE(oci::parseModelManifest("not json").isOk());
  EXPECT_FALSE(oci::parseModelManifest(R"({"mediaType":7,"layers":7})").isOk());
}

TEST(ContentStoreResolutions, RoundTripAndDamagedRecordsReadAsNone) {
  testing::TempDir dir;
  ContentStore store(dir.path() + "/models");
  ASSERT_TRUE(store.start().isOk());
  const std::string url = "oci://r.example/a:v1";
  const std::string key = api::ociPullKey("ns", "pull", url);
  OciResolution r{key,      url, "sha256:" + std::string(64, 'c'),
                  "a.onnx", 7,   "sha256:" + std::string(64, 'd')};
  ASSERT_TRUE(store.putResolution(r).isOk());
  EXPECT_FALSE(store.resolution(api::ociPullKey("other", "pull", url)));
  auto got = store.resolution(key);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->digest, r.digest);
  EXPECT_EQ(got->file, "a.onnx");
  EXPECT_EQ(got->size, 7u);
  ASSERT_EQ(store.resolutions().size(), 1u);
  // Damaged on disk: read as none (the url is resolved again), never served.
  std::string path = dir.path() + "/models/refs/" + digest::sha256Of(key).substr(7);
  std::ofstream(path, std::ios::trunc) << "{\"url\":\"" << url << "\",\"digest\":\"sha2";
  EXPECT_FALSE(store.resolution(key));
  EXPECT_TRUE(store.resolutions().empty());
  store.removeResolution(key);
  EXPECT_FALSE(store.resolution(key));
}

}  // namespace
}  // namespace ep::edgecore::models
