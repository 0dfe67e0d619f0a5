#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cloudcore/store/store.h"

namespace ep::store {

// Copies every object of `resources` from `from` into `to`, the stored bytes unchanged (so
// Secrets stay ciphertext under the same key: copy between the raw stores, under any
// EncryptingStore). For moving a cluster from one store to another with cloudcore stopped
// (cloudcore --migrate-store-to, docs/store.md). Revisions are the target's: resourceVersions
// change, creation timestamps and uids do not.
//
// Refuses (kAlreadyExists, naming the resource) a target that already holds objects of any of
// the resources, and stops at the first object it cannot read (a damaged row: run
// cloudcore --verify first) or write. Blocking; single-threaded.
Result<size_t> copyObjects(Store& from, const std::vector<std::string>& resources, Store& to);

}  // namespace ep::store
