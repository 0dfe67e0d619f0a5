#pragma once

// Everything a command needs besides its own flags. Owned by main(); commands borrow it for one
// run. Not thread-safe.

#include <iosfwd>
#include <string>

#include "common/clock.h"
#include "edgectl/api_client.h"

namespace ep::edgectl {

struct Context {
  ApiTransport* api = nullptr;
  std::ostream* out = nullptr;  // results (stdout)
  std::ostream* err = nullptr;  // errors and notes (stderr)
  std::istream* in = nullptr;   // "-f -"
  std::string ns = "default";   // -n, or the default namespace
  bool nsExplicit = false;      // -n was given
  bool allNamespaces = false;   // -A
  const Clock* clock = nullptr;
  int verbosity = 0;
};

}  // namespace ep::edgectl
