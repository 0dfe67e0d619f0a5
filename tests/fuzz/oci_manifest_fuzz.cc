// Fuzzes what the edge's model puller reads from an OCI registry (common/oci/registry.h):
// a WWW-Authenticate challenge (the first line) and a manifest (the rest). Invariants: no crash;
// a manifest accepted names a sha256 layer and a valid file name; challenge parameters are
// bounded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/api/models.h"
#include "common/oci/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  if (auto c = ep::oci::parseAuthChallenge(text.substr(0, nl))) {
    if (c->params.size() > 16) std::abort();
  }
  if (nl == std::string::npos) return 0;
  auto a = ep::oci::parseModelManifest(text.substr(nl + 1));
  if (a.isOk()) {
    if (!ep::api::isSha256Digest(a->digest)) std::abort();
    if (!ep::api::validateModelFileName(a->file).isOk()) std::abort();
  }
  return 0;
}
