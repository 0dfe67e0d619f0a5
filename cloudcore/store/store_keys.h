#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

// Helpers both Store implementations share: how a key is named in errors and logs, and the
// opaque continue tokens of paginated lists. No state; thread-safe.
namespace ep::store {

// `pods "ns/name"` (or `nodes "name"` for cluster-scoped keys), for messages.
std::string keyString(const std::string& resource, const std::string& ns, const std::string& name);

// Continue tokens: "<revision>/<namespace>/<name>" of the last item returned, hex-encoded so they
// are opaque and URL-safe. decodeContinue returns false for anything else.
std::string encodeContinue(int64_t rev, const std::string& ns, const std::string& name);
[[nodiscard]] bool decodeContinue(const std::string& token, int64_t& rev, std::string& ns,
                                  std::string& name);

// kExpired, as Kubernetes words it, for a continue token older than the compacted revision.
Status continueExpired();

}  // namespace ep::store
