#pragma once

// `edgectl token create|list|delete`: bootstrap tokens for joining edge nodes
// (docs/security.md, "Joining a node"). Tokens are Secrets kube-system/bootstrap-token-ID of
// type bootstrap.kubernetes.io/token, as in Kubernetes; `create` prints the join token, which
// also carries the cluster CA's public-key hash. Single-threaded, against the Context's
// ApiTransport.

#include <chrono>
#include <string>
#include <vector>

#include "edgectl/context.h"

namespace ep::edgectl {

struct TokenOptions {
  std::string action;                                     // create | list | delete
  std::vector<std::string> args;                          // delete: ID or ID.SECRET (one or more)
  std::chrono::milliseconds ttl{std::chrono::hours(24)};  // create: 0 = never expires
  int64_t usages = 0;                                     // create: joins allowed, 0 = unlimited
  std::string description;                                // create
  bool noHeaders = false;                                 // list
  // The cluster CA (PEM) from the kubeconfig; used when the server publishes none
  // (kube-public/cluster-info).
  std::string kubeconfigCaPem;
};

// Returns the process exit status.
int runToken(Context& ctx, const TokenOptions& options);

}  // namespace ep::edgectl
