// The cloud's content-addressed blob store: resumable uploads checked against their digest,
// chunk reads verified against the index (corruption reported, never served), collection.
#include "cloudcore/models/blob_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/api/models.h"
#include "common/digest/sha256.h"
#include "tests/testing/temp_dir.h"

namespace ep::models {
namespace {

std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(store_.start().isOk()); }
  testing::TempDir dir_;
  BlobStore store_{{.dir = dir_.path() + "/blobs", .maxBlobBytes = 4u << 20}};
};

TEST_F(BlobStoreTest, UploadResumesFromItsOffsetAndCommitsVerifiedBytes) {
  const std::string data = randomBytes(api::kBlobChunkBytes * 2 + 17, 1);
  const std::string digest = digest::sha256Of(data);
  auto st = store_.uploadState(digest);
  ASSERT_TRUE(st.isOk());
  EXPECT_EQ(st->offset, 0u);
  EXPECT_FALSE(st->complete);

  ASSERT_TRUE(store_.append(digest, 0, std::string_view(data).substr(0, 1000)).isOk());
  // A client that lost the answer and sends from the wrong offset learns where the upload is.
  auto wrong = store_.append(digest, 0, "xx");
  ASSERT_FALSE(wrong.isOk());
  EXPECT_EQ(wrong.status().code(), Code::kConflict);
  EXPECT_NE(wrong.status().message().find("is at 1000 bytes"), std::string::npos);
  EXPECT_EQ(store_.uploadState(digest)->offset, 1000u);
  ASSERT_TRUE(store_.append(digest, 1000, std::string_view(data).substr(1000)).isOk());
  auto info = store_.commit(digest);
  ASSERT_TRUE(info.isOk()) << info.status().message();
  EXPECT_EQ(info->size, data.size());
  EXPECT_TRUE(store_.uploadState(digest)->complete);
  // Committed blobs answer complete to further appends (content addressing: same bytes).
  EXPECT_TRUE(store_.append(digest, 0, "anything")->complete);

  std::string back;
  for (uint64_t off = 0; off < data.size(); off += api::kBlobChunkBytes) {
    auto c = store_.readChunk(digest, off);
    ASSERT_TRUE(c.isOk()) << c.status().message();
    EXPECT_EQ(c->sha256, digest::sha256Of(c->data));
    EXPECT_EQ(c->blobSize, data.size());
    back += c->data;
  }
  EXPECT_EQ(back, data);
  EXPECT_EQ(store_.readChunk(digest, 5).status().code(), Code::kInvalid);
  EXPECT_EQ(store_.readChunk(digest, api::kBlobChunkBytes * 3).status().code(), Code::kInvalid);
  // Files are private to cloudcore.
  struct stat st2 {};
  ASSERT_EQ(::stat((dir_.path() + "/blobs").c_str(), &st2), 0);
  EXPECT_EQ(st2.st_mode & 0777, 0700u);
}

TEST_F(BlobStoreTest, DigestMismatchDiscardsTheUpload) {
  const std::string data = "not what the digest says";
  const std::string digest = digest::sha256Of("something else");
  ASSERT_TRUE(store_.append(digest, 0, data).isOk());
  auto info = store_.commit(digest);
  ASSERT_FALSE(info.isOk());
  EXPECT_EQ(info.status().code(), Code::kInvalid);
  EXPECT_NE(info.status().message().find("digest mismatch"), std::string::npos);
  EXPECT_EQ(store_.uploadState(digest)->offset, 0u);
  EXPECT_EQ(store_.stat(digest).status().code(), Code::kNotFound);
}

TEST_F(BlobStoreTest, RefusesOversizedUploadsAndBadDigests) {
  const std::string digest = "sha256:" + std::string(64, 'b');
  auto big = store_.append(digest, 0, std::string((4u << 20) + 1, 'x'));
  ASSERT_FALSE(big.isOk());
  EXPECT_EQ(big.status().code(), Code::kTooLarge);
  EXPECT_EQ(store_.uploadState(digest)->offset, 0u);  // nothing partial kept
  for (const char* bad : {"sha256:ABC", "md5:0000", "sha256:../../etc/passwd", ""}) {
    EXPECT_EQ(store_.append(bad, 0, "x").status().code(), Code::kInvalid) << bad;
    EXPECT_EQ(store_.readChunk(bad, 0).status().code(), Code::kInvalid) << bad;
  }
}

TEST_F(BlobStoreTest, CorruptionAtRestIsReportedNotServed) {
  const std::string data = randomBytes(api::kBlobChunkBytes + 10, 2);
  const std::string digest = digest::sha256Of(data);
  ASSERT_TRUE(store_.append(digest, 0, data).isOk());
  ASSERT_TRUE(store_.commit(digest).isOk());
  const std::string path = dir_.path() + "/blobs/sha256/" + digest.substr(7);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(api::kBlobChunkBytes + 3));
    f.put('!');
  }
  EXPECT_TRUE(store_.readChunk(digest, 0).isOk());  // the first chunk is intact
  auto bad = store_.readChunk(digest, api::kBlobChunkBytes);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kInternal);
  EXPECT_NE(bad.status().message().find("corrupted: chunk 1"), std::string::npos);

  // A damaged index is refused as well (a fresh store: nothing cached).
  std::ofstream(path + ".index", std::ios::trunc) << "ep-blob-index 1\nsize 12\nchunk 262144\n";
  BlobStore fresh({.dir = dir_.path() + "/blobs"});
  auto idx = fresh.readChunk(digest, 0);
  ASSERT_FALSE(idx.isOk());
  EXPECT_NE(idx.status().message().find("index"), std::string::npos);
}

TEST_F(BlobStoreTest, CollectRemovesUnreferencedBlobsAfterTheRetention) {
  const std::string a = "model a", b = "model b";
  for (const auto& d : {a, b}) {
    ASSERT_TRUE(store_.append(digest::sha256Of(d), 0, d).isOk());
    ASSERT_TRUE(store_.commit(digest::sha256Of(d)).isOk());
  }
  ASSERT_TRUE(store_.append(digest::sha256Of("abandoned"), 0, "aband").isOk());
  const int64_t now = ::time(nullptr);
  // Within the retention nothing goes.
  EXPECT_EQ(store_.collect({digest::sha256Of(a)}, now, 3600), 0u);
  EXPECT_EQ(store_.collect({digest::sha256Of(a)}, now + 7200, 3600), 2u);  // b and the upload
  EXPECT_TRUE(store_.stat(digest::sha256Of(a)).isOk());
  EXPECT_EQ(store_.stat(digest::sha256Of(b)).status().code(), Code::kNotFound);
  EXPECT_EQ(store_.uploadState(digest::sha256Of("abandoned"))->offset, 0u);
  EXPECT_EQ(store_.list().size(), 1u);
}

}  // namespace
}  // namespace ep::models
