#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest/sha256.h"
#include "common/status.h"

namespace ep::edgecore::models {

// The edge's content store of model files (docs/models.md), one file per digest under `dir`
// (DATA_DIR/models, 0700):
//   blobs/HEX    complete and verified (sha256 checked before the rename that makes it appear),
//                0444; pod volumes hard-link it, so a version is stored once however many pods use
//                it
//   partial/HEX  a download in progress: the bytes received so far, in order, so a download
//                resumes from its length after a disconnect or a restart
//   refs/HEX     what a pull of an oci:// url resolved to (HEX = sha256 of its api::ociPullKey:
//                namespace, credential Secret, url): the model file's digest and name, written
//                once that file is complete; a node that restarts offline serves it
// A partial file is never visible to pods. verify() rehashes a complete blob (done once per
// start) and removes it when it no longer matches, so corruption at rest is fetched again.
//
// Thread-compatible: the ModelFetcher's worker writes blobs fetched over the tunnel and its OCI
// puller those pulled from registries. Should one digest be wanted from both sources at once,
// appendPartial refuses the out-of-place write (kConflict) and finish() checks the hash, so the
// worst case is a download started over, never a bad file. complete() and resolution() may be
// called from any thread (edged's pod workers): a complete blob never changes and a resolution is
// replaced by one rename. What a pull of an oci:// url resolved to (refs/HEX; see ContentStore).
struct OciResolution {
  std::string key;  // api::ociPullKey
  std::string url;
  std::string digest;  // the model file's blob digest
  std::string file;    // its name in the volume
  uint64_t size = 0;
  std::string manifestDigest;  // the manifest it came from
};

class ContentStore {
 public:
  explicit ContentStore(std::string dir);

  Status start();

  // The path of the complete blob, when present.
  std::optional<std::string> complete(const std::string& digest) const;
  // Feeds the download's bytes so far to `hash` (1 MiB at a time); `*bytes` says how many.
  Status hashPartial(const std::string& digest, digest::Sha256& hash, uint64_t* bytes) const;
  // Bytes of the download in progress (0 when none).
  uint64_t partialSize(const std::string& digest) const;
  // Appends `data` to the download; `offset` must equal partialSize (kConflict otherwise).
  // With `sync`, durable (fdatasync) when it returns. Bytes written without sync that a power
  // loss takes away only make the final check fail (the download then starts over); they are
  // never served.
  Status appendPartial(const std::string& digest, uint64_t offset, std::string_view data,
                       bool sync = true);
  // Checks the download: `computed` is its digest when the caller hashed the bytes as it wrote
  // them, else ("") the file is hashed here. A match is made durable and becomes the complete
  // blob; a mismatch removes it and returns kInvalid naming both digests.
  Status finish(const std::string& digest, const std::string& computed = "");
  // Rehashes a complete blob; removes it and returns kInvalid when it does not match.
  Status verify(const std::string& digest);
  void remove(const std::string& digest);
  void removePartial(const std::string& digest);
  // Digests of complete blobs / downloads in progress.
  std::vector<std::string> completeDigests() const;
  std::vector<std::string> partialDigests() const;

  // Records `r` durably (replacing the previous resolution of r.key).
  Status putResolution(const OciResolution& r);
  // The resolution recorded under `key` when well formed (a damaged record reads as none, so the
  // url is pulled again).
  std::optional<OciResolution> resolution(const std::string& key) const;
  void removeResolution(const std::string& key);
  std::vector<OciResolution> resolutions() const;

  const std::string& dir() const { return dir_; }

 private:
  std::string blobPath(const std::string& digest) const;
  std::string partialPath(const std::string& digest) const;
  std::string refPath(const std::string& key) const;
  std::optional<OciResolution> readResolution(const std::string& path) const;

  const std::string dir_;
};

}  // namespace ep::edgecore::models
