#pragma once

// `edgectl delete`: by manifest (-f), by name, by label selector or --all.

#include <chrono>
#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct DeleteOptions {
  std::vector<std::string> args;   // KIND NAME... | KIND/NAME... | KIND (with -l / --all)
  std::vector<std::string> files;  // -f
  bool recursive = false;
  std::string labelSelector;
  bool all = false;
  bool ignoreNotFound = false;
  bool wait = true;                    // poll until the objects are gone
  std::string cascade = "background";  // background | foreground | orphan
  int gracePeriod = -1;                // seconds; -1: server default
  std::chrono::milliseconds waitTimeout{std::chrono::seconds(60)};
  std::chrono::milliseconds pollInterval{std::chrono::milliseconds(500)};
};

// Returns the process exit status.
int runDelete(Context& ctx, const DeleteOptions& options);

}  // namespace ep::edgectl
