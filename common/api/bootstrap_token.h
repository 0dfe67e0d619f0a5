#pragma once

// The Secret that stores a join token's bootstrap token (kube-system/bootstrap-token-ID, type
// bootstrap.kubernetes.io/token, kubeadm's fields; docs/security.md, "Joining a node"), built
// the same way by `edgectl token create` and cloudcore's --join-token-file. Pure.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace ep::api {

struct BootstrapTokenSpec {
  std::string id;           // 6 of [a-z0-9]
  std::string secret;       // 16 of [a-z0-9]
  std::string description;  // "" for none
  std::string expiration;   // RFC 3339, "" for never
  int64_t usages = 0;       // joins allowed, 0 for unlimited
};

nlohmann::json bootstrapTokenSecret(const BootstrapTokenSpec& spec);

}  // namespace ep::api
