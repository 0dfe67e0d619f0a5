#pragma once

// edgectl top node|pod: CPU and memory use from cloudcore's metrics.k8s.io (docs/metrics.md),
// printed as kubectl top prints them.

#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct TopOptions {
  std::vector<std::string> args;  // node|nodes|no [NAME] | pod|pods|po [NAME]
  std::string selector;           // -l
  std::string sortBy;             // --sort-by: cpu | memory (highest first)
  bool containers = false;        // --containers (pods): one line per container
  bool noHeaders = false;         // --no-headers
  bool showCapacity = false;      // --show-capacity (nodes): percentages of capacity
};

// Returns the process exit code; errors go to ctx.err in kubectl's words.
int runTop(Context& ctx, const TopOptions& options);

}  // namespace ep::edgectl
