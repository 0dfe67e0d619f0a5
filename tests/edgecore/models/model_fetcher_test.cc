// The edge's model downloader against a scripted cloud: the wanted file comes in chunks and is
// verified; a corrupted chunk is refused and fetched again; a connection cut mid-transfer resumes
// from what is on disk (bytes resent bounded by one chunk); a whole-file mismatch never becomes
// visible; files no Model refers to are removed.
#include "edgecore/models/model_fetcher.h"

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "common/api/models.h"
#include "common/api/upgrades.h"
#include "common/digest/sha256.h"
#include "edgecore/metamanager/metamanager.h"
#include "proto/tunnel.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/sync_changes.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::models {
namespace {

namespace tv1 = edgeplane::tunnel::v1;
using Json = nlohmann::json;
using namespace std::chrono_literals;

std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string readFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ModelFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = std::make_unique<metamanager::MetaManager>(
        metamanager::MetaManagerOptions{.dataDir = dir_.path() + "/cache"});
    ASSERT_TRUE(cache_->start().isOk());
    blob_ = randomBytes(3 * api::kBlobChunkBytes + 1000, 7);  // 4 chunks, the last short
    digest_ = digest::sha256Of(blob_);
  }
  void TearDown() override {
    if (fetcher_) fetcher_->stop();
    cache_->stop();
  }

  void startFetcher(ModelFetcherOptions o = {}) {
    fetcher_ =
        std::make_unique<ModelFetcher>(o, *cache_, *cache_, store_, [this] { ++available_; });
    ASSERT_TRUE(fetcher_->start().isOk());
  }
  void put(const std::string& resource, const std::string& name, const Json& obj) {
    tv1::Sync sync;
    sync.set_revision(++revision_);
    Json named = obj;
    named["metadata"]["name"] = name;
    named["metadata"]["namespace"] = "default";
    testing::addPutChange(sync, resource, named, revision_);
    ASSERT_TRUE(cache_->applySync(sync).isOk());
  }
  void putModelAndPod(const std::string& digest) {
    Json model = {{"metadata", {{"name", "digits"}, {"namespace", "default"}}}};
    api::setModelVersion(model,
                         {"v1", api::blobUrl(digest, "d.onnx"), "onnx", digest, "d.onnx", 0, ""});
    put(api::kModelResource, "digits", model);
    Json pod = {{"metadata", {{"name", "app"}, {"namespace", "default"}, {"uid", "u1"}}},
                {"spec",
                 {{"nodeName", "edge-1"},
                  {"volumes", Json::array({{{"name", "m"},
                                            {"csi",
                                             {{"driver", "models.edgeplane.io"},
                                              {"volumeAttributes", {{"model", "digits"}}}}}}})}}}};
    put("pods", "app", pod);
  }

  // The scripted cloud: requests sent by the fetcher.
  edgehub::StreamSender sender() {
    return [this](tv1::EdgeMessage&& m) {
      std::lock_guard l(mu_);
      if (!up_) return false;
      requests_.push_back(m.blob_request());
      return true;
    };
  }
  std::optional<tv1::BlobRequest> nextRequest() {
    std::lock_guard l(mu_);
    if (requests_.empty()) return std::nullopt;
    auto r = requests_.front();
    requests_.pop_front();
    return r;
  }
  tv1::BlobChunk answer(const tv1::BlobRequest& r) {
    tv1::BlobChunk c;
    c.set_id(r.id());
    c.set_digest(r.digest());
    c.set_offset(r.offset());
    std::string data = blob_.substr(r.offset(), api::kBlobChunkBytes);
    c.set_chunk_sha256(digest::sha256Of(data));
    c.set_data(data);
    c.set_blob_size(blob_.size());
    return c;
  }
  // Answers every request as it comes until the file is complete (or `maxAnswers`).
  void serve(int maxAnswers = 1000) {
    for (int served = 0; served < maxAnswers;) {
      auto r = nextRequest();
      if (!r) {
        if (store_.complete(digest_) && fetcher_->stats().downloadsCompleted > 0) return;
        std::this_thread::sleep_for(1ms);
        continue;
      }
      fetcher_->onBlobChunk(answer(*r));
      ++served;
    }
  }
  void tunnelUp() {
    {
      std::lock_guard l(mu_);
      up_ = true;
    }
    fetcher_->onTunnelUp(sender());
  }
  void tunnelDown() {
    {
      std::lock_guard l(mu_);
      up_ = false;
      requests_.clear();
    }
    fetcher_->onTunnelDown();
  }

  testing::TempDir dir_;
  ContentStore store_{dir_.path() + "/models"};
  std::unique_ptr<metamanager::MetaManager> cache_;
  std::unique_ptr<ModelFetcher> fetcher_;
  int64_t revision_ = 0;
  std::string blob_;
  std::string digest_;
  std::atomic<int> available_{0};
  std::mutex mu_;
  bool up_ = false;
  std::deque<tv1::BlobRequest> requests_;
};

TEST_F(ModelFetcherTest, FetchesTheWantedFileInVerifiedChunks) {
  startFetcher();
  putModelAndPod(digest_);
  tunnelUp();
  serve();
  ASSERT_TRUE(testing::eventually([&] { return store_.complete(digest_).has_value(); }));
  EXPECT_EQ(readFile(*store_.complete(digest_)), blob_);
  EXPECT_TRUE(testing::eventually([&] { return available_.load() == 1; }));
  auto st = fetcher_->stats();
  EXPECT_EQ(st.bytesReceived, blob_.size());
  EXPECT_EQ(st.chunksReceived, 4u);
  EXPECT_EQ(st.duplicateBytes, 0u);
  EXPECT_EQ(st.downloadsCompleted, 1u);
  // Every request named the Model it is for and a chunk-aligned offset.
  // (Checked by the cloud too: BlobServer refuses anything else.)
}

TEST_F(ModelFetcherTest, FetchesTheEdgecoreBinaryOfAJobUpgradingThisNode) {
  startFetcher({.nodeName = "edge-1", .architecture = "amd64"});
  auto putCluster = [&](const std::string& resource, Json obj) {
    tv1::Sync sync;
    sync.set_revision(++revision_);
    testing::addPutChange(sync, resource, obj, revision_);
    ASSERT_TRUE(cache_->applySync(sync).isOk());
  };
  putCluster(api::kEdgecoreReleaseResource,
             {{"metadata", {{"name", "2.0.0"}}},
              {"spec",
               {{"version", "2.0.0"},
                {"binaries",
                 {{{"architecture", "arm64"}, {"digest", "sha256:" + std::string(64, '0')}},
                  {{"architecture", "amd64"}, {"digest", digest_}}}}}}});
  putCluster(api::kNodeUpgradeJobResource,
             {{"metadata", {{"name", "j"}}},
              {"spec", {{"version", "2.0.0"}}},
              {"status", {{"nodeStatus", {{{"nodeName", "edge-1"}, {"state", "InProgress"}}}}}}});
  tunnelUp();
  ASSERT_TRUE(testing::eventually([&] {
    std::lock_guard l(mu_);
    return !requests_.empty();
  }));
  {
    std::lock_guard l(mu_);
    // The release names what the binary is for (the cloud authorizes by it), this node's arch.
    EXPECT_EQ(requests_.front().release(), "2.0.0");
    EXPECT_EQ(requests_.front().digest(), digest_);
    EXPECT_EQ(requests_.front().model(), "");
  }
  serve();
  ASSERT_TRUE(testing::eventually([&] { return store_.complete(digest_).has_value(); }));
  EXPECT_EQ(readFile(*store_.complete(digest_)), blob_);
}

TEST_F(ModelFetcherTest, RefusesACorruptedChunkAndFetchesItAgain) {
  startFetcher();
  putModelAndPod(digest_);
  tunnelUp();
  bool corrupted = false;
  for (;;) {
    auto r = nextRequest();
    if (!r) {
      if (store_.complete(digest_)) break;
      std::this_thread::sleep_for(1ms);
      continue;
    }
    auto c = answer(*r);
    if (!corrupted && r->offset() == api::kBlobChunkBytes) {
      (*c.mutable_data())[10] ^= 0x55;  // damaged in transit; the chunk digest no longer matches
      corrupted = true;
    }
    fetcher_->onBlobChunk(std::move(c));
  }
  EXPECT_EQ(readFile(*store_.complete(digest_)), blob_);
  EXPECT_EQ(fetcher_->stats().chunksRejected, 1u);
}

// A "busy" answer (retryable: the cloud's queue or this node's share is full) costs only that
// chunk a short wait, not the download a retryDelay (set to a minute here).
TEST_F(ModelFetcherTest, ABusyAnswerIsAskedAgainShortlyForThatChunkOnly) {
  startFetcher({.retryDelay = std::chrono::minutes(1)});
  putModelAndPod(digest_);
  tunnelUp();
  bool refused = false;
  const auto started = std::chrono::steady_clock::now();
  while (!store_.complete(digest_) &&
         std::chrono::steady_clock::now() - started < std::chrono::seconds(20)) {
    auto r = nextRequest();
    if (!r) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    if (!refused && r->offset() == 2 * api::kBlobChunkBytes) {
      refused = true;
      tv1::BlobChunk busy;
      busy.set_id(r->id());
      busy.set_digest(r->digest());
      busy.set_offset(r->offset());
      busy.set_error("cloudcore is busy serving blobs; ask again");
      busy.set_retryable(true);
      busy.set_busy(true);
      fetcher_->onBlobChunk(std::move(busy));
      continue;
    }
    fetcher_->onBlobChunk(answer(*r));
  }
  ASSERT_TRUE(store_.complete(digest_));
  EXPECT_EQ(readFile(*store_.complete(digest_)), blob_);
  auto st = fetcher_->stats();
  EXPECT_EQ(st.busyAnswers, 1u);
  EXPECT_EQ(st.chunksReceived, 4u);
  EXPECT_EQ(st.duplicateBytes, 0u);  // only the refused chunk was asked again
}

TEST_F(ModelFetcherTest, ResumesAfterADisconnectWithoutRefetchingWhatItHas) {
  startFetcher({.window = 1});
  putModelAndPod(digest_);
  tunnelUp();
  serve(2);  // two chunks arrive
  ASSERT_TRUE(testing::eventually([&] {
    return store_.partialSize(digest_) == 2 * api::kBlobChunkBytes;
  })) << store_.partialSize(digest_)
      << " " << fetcher_->statusJson().dump();
  tunnelDown();
  // Offline: nothing is asked for, what is on disk stays.
  EXPECT_FALSE(nextRequest().has_value());
  EXPECT_EQ(store_.partialSize(digest_), 2 * api::kBlobChunkBytes);

  // A new fetcher (edgecore restarted) on a new connection resumes at the partial size.
  fetcher_->stop();
  startFetcher({.window = 1});
  tunnelUp();
  ASSERT_TRUE(testing::eventually([&] {
    std::lock_guard l(mu_);
    return !requests_.empty();
  }));
  {
    std::lock_guard l(mu_);
    EXPECT_EQ(requests_.front().offset(), 2 * api::kBlobChunkBytes);
  }
  serve();
  ASSERT_TRUE(testing::eventually([&] { return store_.complete(digest_).has_value(); }));
  EXPECT_EQ(readFile(*store_.complete(digest_)), blob_);
  // Resent: nothing (what was on disk was not asked for again).
  EXPECT_LE(fetcher_->stats().duplicateBytes, api::kBlobChunkBytes);
  EXPECT_EQ(fetcher_->stats().bytesReceived, blob_.size() - 2 * api::kBlobChunkBytes);
}

TEST_F(ModelFetcherTest, AWholeFileMismatchNeverBecomesVisible) {
  startFetcher({.retryDelay = 50ms});
  // The Model claims a digest the bytes do not have (a cloud serving the wrong file).
  const std::string claimed = "sha256:" + std::string(64, 'a');
  putModelAndPod(claimed);
  tunnelUp();
  for (int i = 0; i < 4;) {
    auto r = nextRequest();
    if (!r) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    fetcher_->onBlobChunk(answer(*r));
    ++i;
  }
  ASSERT_TRUE(testing::eventually([&] { return fetcher_->stats().downloadsFailed >= 1; }));
  EXPECT_FALSE(store_.complete(claimed).has_value());
  EXPECT_EQ(available_.load(), 0);
}

TEST_F(ModelFetcherTest, CorruptedFilesAtRestAreRemovedAtStartAndUnusedOnesCollected) {
  ASSERT_TRUE(store_.start().isOk());
  const std::string other = randomBytes(100, 9);
  const std::string otherDigest = digest::sha256Of(other);
  ASSERT_TRUE(store_.appendPartial(otherDigest, 0, other).isOk());
  ASSERT_TRUE(store_.finish(otherDigest).isOk());
  ASSERT_TRUE(store_.appendPartial(digest_, 0, blob_).isOk());
  ASSERT_TRUE(store_.finish(digest_).isOk());
  // Damage the wanted one on disk.
  std::string p = *store_.complete(digest_);
  std::filesystem::permissions(p, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5);
    f.put('X');
  }
  putModelAndPod(digest_);
  startFetcher();
  tunnelUp();
  serve();  // the damaged file was removed at start and is fetched again
  ASSERT_TRUE(testing::eventually([&] { return store_.complete(digest_).has_value(); }));
  EXPECT_EQ(readFile(*store_.complete(digest_)), blob_);
  // The file no Model refers to goes at the first collection.
  EXPECT_TRUE(testing::eventually([&] { return !store_.complete(otherDigest).has_value(); }));
}

}  // namespace
}  // namespace ep::edgecore::models
