#pragma once

// cloudcore --join-token-file FILE (docs/install.md, "Cloud and edges in containers"): a join
// token kept in a file that edge containers read with `edgecore --token-file`, so a compose
// project or a CI job needs no step between starting the cloud and starting its edges.

#include <string>

#include "cloudcore/registry/registry.h"
#include "common/status.h"

namespace ep::certs {

// Keeps the token FILE holds when its Secret (kube-system/bootstrap-token-ID) exists with that
// secret and the token's CA hash is `caHash`; otherwise creates a token (unlimited joins, no
// expiry, description "cloudcore --join-token-file") and writes FILE (0600, written aside and
// renamed, then synced). Errors name the file.
[[nodiscard]] Status ensureJoinTokenFile(registry::Registry& registry, const std::string& caHash,
                                         const std::string& path);

}  // namespace ep::certs
