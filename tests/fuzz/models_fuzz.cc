// Fuzzes what model delivery reads from outside: a Model as stored (its spec.url and the
// user-writable history annotation) and a pod's volumes, as cloudcore's node authorization and
// GC and edgecore's downloader and volumes read them. Input: a blob URL line, then JSON (a Model
// or a Pod). Invariants: no crash; a parsed blob URL prints back to itself, and so does a parsed
// oci:// url; every digest a Model refers to is well formed; resolving a version yields a blob
// or an oci:// url of that Model.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "common/api/json_limits.h"
#include "common/api/models.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  if (auto ref = ep::api::parseBlobUrl(text.substr(0, nl))) {
    if (ep::api::blobUrl(ref->digest, ref->file) != text.substr(0, nl)) std::abort();
    if (!ep::api::isSha256Digest(ref->digest)) std::abort();
  }
  if (auto oci = ep::api::parseOciUrl(text.substr(0, nl)); oci.isOk()) {
    std::string back = "oci://" + oci->registry + "/" + oci->repository;
    if (!oci->tag.empty()) back += ":" + oci->tag;
    if (!oci->digest.empty()) back += "@" + oci->digest;
    if (back != text.substr(0, nl) || oci->reference().empty()) std::abort();
  }
  if (nl == std::string::npos) return 0;
  auto doc = ep::api::parseJsonBounded(text.substr(nl + 1), 64);
  if (!doc.is_object()) return 0;
  auto digests = ep::api::modelDigests(doc);
  for (const auto& d : digests) {
    if (!ep::api::isSha256Digest(d)) std::abort();
  }
  for (const std::string v : {"", "v1"}) {
    auto r = ep::api::resolveModelVersion(doc, v);
    if (r.isOk() && !r->oci && !digests.count(r->digest)) std::abort();
    if (r.isOk() && r->oci && !ep::api::modelOciUrls(doc).count(r->url)) std::abort();
  }
  (void)ep::api::modelVolumes(doc);
  nlohmann::json copy = doc;
  ep::api::setModelVersion(copy, ep::api::currentModelVersion(doc));
  if (ep::api::modelHistory(copy).size() > ep::api::kMaxModelHistory) std::abort();
  return 0;
}
