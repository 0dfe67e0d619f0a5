#pragma once

#include <cstdint>

#include "cloudcore/models/blob_store.h"
#include "cloudcore/store/store.h"

namespace ep::models {

// Removes the blobs no Model refers to (spec.url or its version history) nor any
// EdgecoreRelease (spec.binaries[].digest), and uploads nobody
// finished, once they are older than `retentionSeconds` (docs/models.md, "Garbage
// collection"). A store that cannot be listed removes nothing. Returns how many went.
size_t collectUnusedBlobs(store::Store& store, BlobStore& blobs, int64_t nowSeconds,
                          int64_t retentionSeconds);

}  // namespace ep::models
