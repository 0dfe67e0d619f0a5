#pragma once

// cloudcore --join-token-file FILE (docs/install.md, "Cloud and edges in containers"): a join
// token kept in a file that edge containers read with `edgecore --token-file`, so a compose
// project or a CI job needs no step between starting the cloud and starting its edges.

#include <string>

#include "cloudcore/registry/registry.h"
#include "common/status.h"

namespace ep::certs {

// Called once at cloudcore's start. Keeps the token FILE holds when its Secret
// (kube-system/bootstrap-token-ID) exists with that secret, no expiry, and the token's CA hash
// is `caHash`. Otherwise creates a token (unlimited joins, no expiry, description "cloudcore
// --join-token-file", label edgeplane.io/join-token-file) and writes FILE: a private temporary
// file beside it (synced), then the Secret, then the rename (and the directory synced), so no
// token exists without its file; the previous token's Secret is deleted when it carries the
// label. A store error other than NotFound is returned, not taken for a missing token. To
// revoke: delete the Secret and restart without the flag. Errors name the file.
[[nodiscard]] Status ensureJoinTokenFile(registry::Registry& registry, const std::string& caHash,
                                         const std::string& path);

}  // namespace ep::certs
