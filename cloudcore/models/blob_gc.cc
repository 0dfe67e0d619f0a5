#include "cloudcore/models/blob_gc.h"

#include <spdlog/spdlog.h>

#include "common/api/json_limits.h"
#include "common/api/models.h"
#include "common/api/upgrades.h"

namespace ep::models {

size_t collectUnusedBlobs(store::Store& store, BlobStore& blobs, int64_t nowSeconds,
                          int64_t retentionSeconds) {
  store::ListOptions options;
  options.resource = api::kModelResource;
  auto list = store.list(options);
  if (!list.isOk()) {
    spdlog::warn("models: blob collection skipped: {}", list.status().toString());
    return 0;
  }
  std::set<std::string> keep;
  for (const auto& o : list->items) {
    auto model = api::parseJsonBounded(o.value, 64);
    for (const auto& d : api::modelDigests(model)) keep.insert(d);
  }
  // Edgecore binaries (docs/upgrades.md) stay while their EdgecoreRelease exists.
  options.resource = api::kEdgecoreReleaseResource;
  auto releases = store.list(options);
  if (!releases.isOk()) {
    spdlog::warn("models: blob collection skipped: {}", releases.status().toString());
    return 0;
  }
  for (const auto& o : releases->items) {
    for (const auto& b : api::releaseBinaries(api::parseJsonBounded(o.value, 64))) {
      keep.insert(b.digest);
    }
  }
  const size_t removed = blobs.collect(keep, nowSeconds, retentionSeconds);
  if (removed > 0) spdlog::info("models: removed {} unused model file(s)", removed);
  return removed;
}

}  // namespace ep::models
