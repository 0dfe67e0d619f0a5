#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace ep::digest {

// Incremental SHA-256. Two implementations share this header: ep_sha256 (OpenSSL, cloudcore and
// edgectl) and ep_sha256_edge (wolfSSL, the edge's crypto library; docs/performance.md), so a
// binary links exactly one of them. Not thread-safe; one object per stream of bytes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // The digest as "sha256:" + 64 lower-case hex digits. Ends the stream: call once.
  std::string finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One-shot: "sha256:HEX" of `bytes`.
std::string sha256Of(std::string_view bytes);

// The digest and size of a whole file, read in 1 MiB blocks. kNotFound when it cannot be
// opened, kInternal on a read error (both name the path).
Result<std::pair<std::string, uint64_t>> sha256OfFile(const std::string& path);

}  // namespace ep::digest
