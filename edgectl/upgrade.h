#pragma once

// edgectl upgrade push FILE --version V [--arch A]: an edgecore binary into cloudcore's blob
// store (the `upload` subresource of upgrade.edgeplane.io/v1alpha1 EdgecoreRelease V: resumable,
// sha256-checked) and into the release's spec.binaries for its architecture, which
// NodeUpgradeJobs with spec.version V deliver to nodes (docs/upgrades.md).

#include <cstdint>
#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct UpgradeOptions {
  std::vector<std::string> args;  // push FILE
  std::string version;            // --version (required): the release's name
  std::string arch;               // --arch (default: from FILE's ELF header)
  uint64_t chunkBytes = 2u << 20;
  int retries = 20;
};

int runUpgradePush(Context& ctx, const UpgradeOptions& options);

}  // namespace ep::edgectl
