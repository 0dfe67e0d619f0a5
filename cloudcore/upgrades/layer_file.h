#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::upgrades {

// Finds one file in a container image layer read as a stream: a tar archive (ustar, pax and GNU
// long names), gzip-compressed or not (told by its first bytes). Used to take an edgecore binary
// out of an image (docs/upgrades.md, "From an image").
//
// The file's bytes go to onData as they arrive. An entry that deletes it for the layers below
// (OCI whiteouts: ".wh.NAME" beside it, ".wh.NAME" of a parent directory, or an opaque
// ".wh..wh..opq" in a parent directory) makes the outcome kDeleted unless the layer holds the
// file itself. Errors are kInvalid and say what is wrong where ("layer: entry 3 (usr/bin/x): ..."):
// a malformed archive or gzip stream, the file as a symlink, hard link or directory, the file
// twice, the file over maxFileBytes, a pax or long-name record over 1 MiB.
//
// Thread-compatible: one thread feeds a finder.
class LayerFileFinder {
 public:
  enum class Outcome { kAbsent, kFound, kDeleted };

  // path: absolute or relative, "/usr/bin/edgecore" and "usr/bin/edgecore" alike.
  LayerFileFinder(std::string path, uint64_t maxFileBytes,
                  std::function<Status(std::string_view)> onData);
  ~LayerFileFinder();
  LayerFileFinder(const LayerFileFinder&) = delete;
  LayerFileFinder& operator=(const LayerFileFinder&) = delete;

  // The next bytes of the layer blob. After an error every call returns it.
  [[nodiscard]] Status feed(std::string_view bytes);
  // The blob ended: an error when it ended inside an entry or a gzip stream.
  [[nodiscard]] Status finish();

  Outcome outcome() const;
  uint64_t fileSize() const;  // when kFound

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep::upgrades
