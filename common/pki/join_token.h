#pragma once

// Join tokens: what `edgectl token create` prints and `edgecore --token` takes. One string
// carries a bootstrap token (kubeadm's ID.SECRET: 6 and 16 characters of [a-z0-9]) and the
// sha256 of the cluster CA's public key, so a node can check the CA it is given before it
// trusts it (what kubeadm needs a token and a discovery hash for):
//
//   abcdef.0123456789abcdef.8e3f...64 hex...
//
// The bootstrap token itself is stored as Kubernetes stores it: a Secret
// kube-system/bootstrap-token-ID of type bootstrap.kubernetes.io/token. Pure functions;
// thread-safe.

#include <string>
#include <string_view>

#include "common/status.h"

namespace ep::pki {

struct JoinToken {
  std::string id;      // 6 characters [a-z0-9]
  std::string secret;  // 16 characters [a-z0-9]
  std::string caHash;  // "sha256:<64 lower-case hex>" (publicKeyHash form)

  std::string bootstrapToken() const { return id + "." + secret; }
  // The one-line form above.
  std::string toString() const;
};

// Parses the one-line form. kInvalid naming the part that is wrong ("join token: the CA hash
// must be 64 hexadecimal characters"); the secret never appears in a message.
Result<JoinToken> parseJoinToken(std::string_view text);

// Parses a bare bootstrap token ID.SECRET (what the cloud receives). Errors as above.
Result<JoinToken> parseBootstrapToken(std::string_view text);

// The Secret name that holds token `id`.
inline std::string bootstrapTokenSecretName(const std::string& id) {
  return "bootstrap-token-" + id;
}

// Compares secrets in time independent of where they differ.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace ep::pki
