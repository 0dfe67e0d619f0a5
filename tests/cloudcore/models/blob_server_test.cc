// The cloud's blob server against a real SQLite store and blob store: node authorization (a pod
// on the node uses a Model that refers to the digest), verified chunks, and the bound on chunk
// bytes held in memory for the nodes' connections.
#include "cloudcore/models/blob_server.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <random>
#include <vector>

#include "cloudcore/cloudhub/dispatcher.h"
#include "cloudcore/store/sqlite_store.h"
#include "common/api/models.h"
#include "common/api/upgrades.h"
#include "common/clock.h"
#include "common/digest/sha256.h"
#include "proto/tunnel.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/temp_dir.h"

namespace ep::models {
namespace {

namespace pb = edgeplane::tunnel::v1;
using nlohmann::json;
using namespace std::chrono_literals;

// A connection that keeps what it is sent until release(): the messages stand for chunks a
// slow node has not read yet.
class HoldingSink final : public cloudhub::SyncSink {
 public:
  bool send(cloudhub::CloudMessagePtr m) override {
    std::lock_guard l(mu_);
    held_.push_back(std::move(m));
    return true;
  }
  void close(const std::string&) override {}
  size_t count() {
    std::lock_guard l(mu_);
    return held_.size();
  }
  std::vector<cloudhub::CloudMessagePtr> take() {
    std::lock_guard l(mu_);
    return std::move(held_);
  }

 private:
  std::mutex mu_;
  std::vector<cloudhub::CloudMessagePtr> held_;
};

class BlobServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteStoreOptions o;
    o.dataDir = dir_.path();
    o.compactionInterval = 0s;
    store_ = std::make_unique<store::SqliteStore>(o, clock_);
    ASSERT_TRUE(store_->start().isOk());
    ASSERT_TRUE(blobs_.start().isOk());
    std::mt19937 rng(3);
    data_.resize(api::kBlobChunkBytes * 6 + 100);
    for (auto& c : data_) c = static_cast<char>(rng() & 0xff);
    digest_ = digest::sha256Of(data_);
    ASSERT_TRUE(blobs_.append(digest_, 0, data_).isOk());
    ASSERT_TRUE(blobs_.commit(digest_).isOk());
    json model = {{"apiVersion", "sedna.io/v1alpha1"},
                  {"kind", "Model"},
                  {"metadata", {{"name", "digits"}, {"namespace", "default"}}},
                  {"spec", {{"url", api::blobUrl(digest_, "m.onnx")}, {"format", "onnx"}}}};
    ASSERT_TRUE(store_->create(api::kModelResource, "default", "digits", model.dump()).isOk());
    putPod("app", "node-a");
  }
  void TearDown() override {
    if (server_) server_->stop();
    store_->stop();
  }
  void putPod(const std::string& name, const std::string& node) {
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", {{"name", name}, {"namespace", "default"}}},
        {"spec",
         {{"nodeName", node},
          {"containers", {{{"name", "c"}, {"image", "busybox"}}}},
          {"volumes",
           {{{"name", "m"},
             {"csi",
              {{"driver", api::kModelDriver}, {"volumeAttributes", {{"model", "digits"}}}}}}}}}}};
    ASSERT_TRUE(store_->create("pods", "default", name, pod.dump()).isOk());
  }
  void startServer(BlobServerOptions o) {
    server_ = std::make_unique<BlobServer>(blobs_, *store_, o);
    server_->start();
  }
  void request(const std::string& node, const std::shared_ptr<HoldingSink>& sink, uint64_t offset,
               const std::string& model = "digits") {
    pb::BlobRequest r;
    r.set_id(offset + 1);
    r.set_digest(digest_);
    r.set_offset(offset);
    r.set_namespace_("default");
    r.set_model(model);
    server_->onBlobRequest(node, sink, r);
  }

  testing::TempDir dir_;
  FakeClock clock_{1704067800000};
  std::unique_ptr<store::SqliteStore> store_;
  BlobStore blobs_{{.dir = dir_.path() + "/blobs", .maxBlobBytes = 16u << 20}};
  std::unique_ptr<BlobServer> server_;
  std::string data_;
  std::string digest_;
};

TEST_F(BlobServerTest, ServesVerifiedChunksOnlyToNodesWhosePodsUseTheModel) {
  startServer({});
  auto sink = std::make_shared<HoldingSink>();
  request("node-a", sink, 0);
  request("node-a", sink, api::kBlobChunkBytes * 6);  // the short last chunk
  request("node-b", sink, 0);                         // no pod of node-b uses the model
  request("node-a", sink, 0, "other");                // a Model that does not exist
  ASSERT_TRUE(testing::eventually([&] { return sink->count() == 4; }));
  std::map<std::string, const pb::BlobChunk*> byKey;
  auto got = sink->take();
  int refused = 0;
  for (const auto& m : got) {
    const auto& c = m->blob_chunk();
    if (!c.error().empty()) {
      ++refused;
      EXPECT_FALSE(c.retryable()) << c.error();
      continue;
    }
    EXPECT_EQ(c.blob_size(), data_.size());
    EXPECT_EQ(c.data(), data_.substr(c.offset(), api::kBlobChunkBytes));
    EXPECT_EQ(c.chunk_sha256(), digest::sha256Of(c.data()));
  }
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(server_->stats().refused, 2u);
  EXPECT_EQ(server_->stats().chunksSent, 2u);
}

TEST_F(BlobServerTest, EdgecoreBinariesGoOnlyToNodesAJobIsUpgrading) {
  json release = {
      {"metadata", {{"name", "2.0.0"}}},
      {"spec",
       {{"version", "2.0.0"}, {"binaries", {{{"architecture", "amd64"}, {"digest", digest_}}}}}}};
  ASSERT_TRUE(store_->create(api::kEdgecoreReleaseResource, "", "2.0.0", release.dump()).isOk());
  json job = {{"metadata", {{"name", "j"}}},
              {"spec", {{"version", "2.0.0"}, {"nodeNames", {"node-a", "node-b"}}}},
              {"status",
               {{"nodeStatus",
                 {{{"nodeName", "node-a"}, {"state", "InProgress"}},
                  {{"nodeName", "node-b"}, {"state", "Init"}}}}}}};
  ASSERT_TRUE(store_->create(api::kNodeUpgradeJobResource, "", "j", job.dump()).isOk());
  startServer({});
  auto sink = std::make_shared<HoldingSink>();
  auto ask = [&](const std::string& node, const std::string& rel) {
    pb::BlobRequest r;
    r.set_id(1);
    r.set_digest(digest_);
    r.set_offset(0);
    r.set_release(rel);
    server_->onBlobRequest(node, sink, r);
  };
  ask("node-a", "2.0.0");  // upgrading: served
  ask("node-b", "2.0.0");  // waiting its turn
  ask("node-c", "2.0.0");  // not in the job
  ask("node-a", "3.0.0");  // no such release
  ASSERT_TRUE(testing::eventually([&] { return sink->count() == 4; }));
  std::vector<std::string> errors;
  for (const auto& m : sink->take()) errors.push_back(m->blob_chunk().error());
  std::sort(errors.begin(), errors.end());
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "",
                        "edgecore release 3.0.0 not found",
                        "no NodeUpgradeJob to 2.0.0 is upgrading node node-b",
                        "no NodeUpgradeJob to 2.0.0 is upgrading node node-c",
                    }));
}

TEST_F(BlobServerTest, ChunkBytesHeldForSlowConnectionsAreBounded) {
  // Room for two chunks: a node that reads nothing holds two; the readers wait for the rest.
  startServer({.threads = 2, .maxBytesInFlight = 2 * api::kBlobChunkBytes});
  auto slow = std::make_shared<HoldingSink>();
  for (uint64_t i = 0; i < 6; ++i) request("node-a", slow, i * api::kBlobChunkBytes);
  ASSERT_TRUE(testing::eventually([&] { return server_->stats().readersWaiting == 2; }));
  EXPECT_EQ(slow->count(), 2u);
  EXPECT_EQ(server_->stats().bytesInFlight, 2 * api::kBlobChunkBytes);
  // The connection writes (drops) what it held: room again, the next ones follow.
  size_t delivered = 0;
  while (delivered < 6) {
    ASSERT_TRUE(testing::eventually([&] { return slow->count() > 0; })) << delivered;
    auto batch = slow->take();
    EXPECT_LE(batch.size(), 2u);
    delivered += batch.size();
  }
  ASSERT_TRUE(testing::eventually([&] { return server_->stats().bytesInFlight == 0; }));
  EXPECT_EQ(server_->stats().chunksSent, 6u);
  // A message that outlives the server (queued in a connection) holds the budget alive: no
  // use after free when it goes (ASan, which CI runs the unit tests under, would say).
  request("node-a", slow, 0);
  ASSERT_TRUE(testing::eventually([&] { return slow->count() == 1; }));
  server_->stop();
  server_.reset();
  slow->take();  // no crash: the budget lives as long as its messages
}

TEST_F(BlobServerTest, ANodeThatDoesNotDrainIsLimitedToItsShare) {
  putPod("app-b", "node-b");
  startServer({.threads = 2, .maxBytesInFlightPerNode = 2 * api::kBlobChunkBytes});
  // node-a reads nothing: two chunks wait in its connection, the next requests are told to
  // ask again (no reader waits for node-a's room).
  auto stuck = std::make_shared<HoldingSink>();
  for (uint64_t i = 0; i < 4; ++i) request("node-a", stuck, i * api::kBlobChunkBytes);
  ASSERT_TRUE(testing::eventually([&] { return stuck->count() == 4; }));
  EXPECT_EQ(server_->stats().bytesInFlight, 2 * api::kBlobChunkBytes);
  EXPECT_EQ(server_->stats().readersWaiting, 0u);
  int busy = 0;
  auto held = stuck->take();
  for (const auto& m : held) {
    if (!m->blob_chunk().error().empty()) {
      EXPECT_TRUE(m->blob_chunk().retryable());
      ++busy;
    }
  }
  EXPECT_EQ(busy, 2);
  // Another node is served meanwhile.
  auto other = std::make_shared<HoldingSink>();
  request("node-b", other, 0);
  ASSERT_TRUE(testing::eventually([&] { return other->count() == 1; }));
  EXPECT_TRUE(other->take()[0]->blob_chunk().error().empty());
  // node-a's connection drains: its share is free again.
  held.clear();
  ASSERT_TRUE(testing::eventually([&] { return server_->stats().bytesInFlight == 0; }));
  request("node-a", stuck, 0);
  ASSERT_TRUE(testing::eventually([&] { return stuck->count() == 1; }));
  EXPECT_TRUE(stuck->take()[0]->blob_chunk().error().empty());
}

TEST_F(BlobServerTest, StopWakesReadersWaitingForRoom) {
  startServer({.threads = 1, .maxBytesInFlight = api::kBlobChunkBytes});
  auto slow = std::make_shared<HoldingSink>();
  request("node-a", slow, 0);
  request("node-a", slow, api::kBlobChunkBytes);
  ASSERT_TRUE(testing::eventually([&] { return server_->stats().readersWaiting == 1; }));
  // stop() returns (the waiting reader gives up) instead of hanging the test.
  auto stopped = std::async(std::launch::async, [&] { server_->stop(); });
  ASSERT_EQ(stopped.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(slow->count(), 1u);
}

}  // namespace
}  // namespace ep::models
