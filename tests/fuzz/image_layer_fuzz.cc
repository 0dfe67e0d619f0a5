// Fuzzes what cloudcore reads from an image to take an edgecore binary out of it
// (cloudcore/upgrades/layer_file.h, common/oci/image.h): the first byte picks the parser, the
// rest is its input: a layer (tar, or gzip when it starts so) fed in pieces of the size the
// second byte gives, or an index, manifest or image config. Invariants: no crash; a file found
// has the bytes and size the finder reports, within the limit; parsed descriptors have sha256
// digests.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cloudcore/upgrades/layer_file.h"
#include "common/api/models.h"
#include "common/oci/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 4) {
    case 0: {
      constexpr uint64_t kMax = 1 << 16;
      uint64_t got = 0;
      ep::upgrades::LayerFileFinder finder("/usr/bin/edgecore", kMax,
                                           [&](std::string_view b) -> ep::Status {
                                             got += b.size();
                                             return {};
                                           });
      const size_t piece = 1 + data[1];
      ep::Status s;
      for (size_t i = 0; i < in.size() && s.isOk(); i += piece)
        s = finder.feed(in.substr(i, piece));
      if (s.isOk()) s = finder.finish();
      if (s.isOk() && finder.outcome() == ep::upgrades::LayerFileFinder::Outcome::kFound &&
          (got != finder.fileSize() || got > kMax)) {
        std::abort();
      }
      break;
    }
    case 1: {
      auto r = ep::oci::parseImageIndex(in);
      if (r.isOk()) {
        for (const auto& d : *r) {
          if (!ep::api::isSha256Digest(d.digest)) std::abort();
        }
      }
      break;
    }
    case 2: {
      auto r = ep::oci::parseImageManifest(in);
      if (r.isOk()) {
        if (!ep::api::isSha256Digest(r->config.digest)) std::abort();
        for (const auto& d : r->layers) {
          if (!ep::api::isSha256Digest(d.digest)) std::abort();
        }
      }
      break;
    }
    default: {
      auto r = ep::oci::parseImageConfig(in);
      if (r.isOk() && (r->entrypoint.size() > 256 || r->cmd.size() > 256)) std::abort();
      break;
    }
  }
  return 0;
}
