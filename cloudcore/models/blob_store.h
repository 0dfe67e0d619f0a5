#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::models {

struct BlobStoreOptions {
  std::string dir;                            // DATA_DIR/blobs by default (cloudcore's config)
  uint64_t maxBlobBytes = uint64_t{2} << 30;  // an upload may not grow beyond this
};

// An upload in progress or done: `offset` bytes are stored; `complete` once committed.
struct UploadState {
  uint64_t offset = 0;
  bool complete = false;
};

struct BlobInfo {
  std::string digest;
  uint64_t size = 0;
  int64_t modifiedSeconds = 0;  // Unix time of the commit (GC age)
};

// One verified piece of a blob.
struct BlobChunkData {
  uint64_t offset = 0;
  std::string data;
  std::string sha256;  // "sha256:HEX" of data
  uint64_t blobSize = 0;
};

// The content-addressed store of model files (docs/models.md). Layout under `dir` (0700, files
// 0600):
//   sha256/HEX        a committed blob, never changed after the commit
//   sha256/HEX.index  its chunk index: size, chunk size and the sha256 of every 256 KiB chunk,
//                     written at the commit from the verified bytes
//   uploads/HEX       an upload in progress: the bytes received so far, in order
// An upload is resumable: its offset is the length of uploads/HEX, and the client sends the
// rest from there. The commit hashes the whole upload and refuses it (removing it) when the
// digest differs. Every chunk read back is checked against the index, so corruption at rest is
// reported (kInternal "... corrupted") and never served.
//
// Thread-safe: uploads and commits are serialized by uploadMu_ (an append writes at most one
// request body); chunk reads take indexMu_ only to look up the cached index.
class BlobStore {
 public:
  explicit BlobStore(BlobStoreOptions options);

  // Creates the directories. Call once before anything else.
  Status start();

  // Where the upload of `digest` stands. kInvalid for a malformed digest.
  Result<UploadState> uploadState(const std::string& digest);
  // Appends `data` at `offset`, which must equal the upload's current offset (kConflict naming
  // the current one otherwise; a committed blob answers complete). kTooLarge beyond
  // maxBlobBytes. Durable (fdatasync) when it returns.
  Result<UploadState> append(const std::string& digest, uint64_t offset, std::string_view data);
  // Verifies the upload against `digest` and makes it a blob. kInvalid "digest mismatch" (the
  // upload is discarded), kNotFound when nothing was uploaded. Idempotent for a committed blob.
  Result<BlobInfo> commit(const std::string& digest);

  // A committed blob. kNotFound when absent.
  Result<BlobInfo> stat(const std::string& digest);
  // The chunk at `offset` (a multiple of api::kBlobChunkBytes), verified. kInvalid for a bad
  // offset, kNotFound, kInternal when the blob or its index is corrupted.
  Result<BlobChunkData> readChunk(const std::string& digest, uint64_t offset);
  // Every committed blob.
  std::vector<BlobInfo> list();

  // Removes committed blobs not in `keep` and uploads whose last write is older than
  // `olderThanSeconds` before `nowSeconds`. Returns how many it removed.
  size_t collect(const std::set<std::string>& keep, int64_t nowSeconds, int64_t olderThanSeconds);

  const std::string& dir() const { return options_.dir; }

 private:
  struct Index {
    uint64_t size = 0;
    uint32_t chunkBytes = 0;
    std::vector<std::string> chunks;  // "sha256:HEX"
  };
  std::string blobPath(const std::string& digest) const;
  std::string indexPath(const std::string& digest) const;
  std::string uploadPath(const std::string& digest) const;
  Result<std::shared_ptr<const Index>> loadIndex(const std::string& digest);

  const BlobStoreOptions options_;
  Mutex uploadMu_;
  Mutex indexMu_;
  std::map<std::string, std::shared_ptr<const Index>> indexes_ EP_GUARDED_BY(indexMu_);
};

}  // namespace ep::models
