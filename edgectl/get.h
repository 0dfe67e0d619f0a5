#pragma once

// `edgectl get`: tables rendered from the server's metav1 Table answers, -o yaml/json/name, and
// watches. Single-threaded; output goes to the Context streams.

#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct GetOptions {
  std::vector<std::string> args;  // KIND[,KIND...] [NAME...] | KIND/NAME...
  std::string output;             // "", "wide", "yaml", "json", "name"
  std::string labelSelector;
  std::string fieldSelector;
  bool watch = false;
  bool watchOnly = false;
  bool outputWatchEvents = false;
  bool showLabels = false;
  bool noHeaders = false;
  bool ignoreNotFound = false;
  bool showManagedFields = false;  // -o json|yaml keep metadata.managedFields (kubectl hides them)
  // Stop watching after this many events (0: forever). Lets tests end a watch.
  int maxWatchEvents = 0;
};

// Returns the process exit status.
int runGet(Context& ctx, const GetOptions& options);

}  // namespace ep::edgectl
