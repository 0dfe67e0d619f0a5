#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "cloudcore/auth/authorizer.h"

namespace ep::registry {
class Registry;
}

namespace ep::auth {

// Kubernetes' node authorizer for API requests made with node certificates (user
// system:node:NAME in group system:nodes): a node may
//   - get, update and patch its own Node (and nodes/status);
//   - get pods bound to it (spec.nodeName) and update/patch their status;
//   - create, update and patch events;
//   - get the Secrets and ConfigMaps that pods bound to it reference (volumes, env, envFrom,
//     imagePullSecrets, projected sources);
//   - get devices bound to it (devices.kubeedge.io, spec.nodeName) and update their status.
// Anything else is left to the other authorizers (RBAC grants nodes nothing by default). The
// same rule decides what the tunnel sends a node.
//
// Reads the store (the objects named by the request, and the node's pods in a namespace for
// Secrets and ConfigMaps): called on the API worker pool. Thread-safe; stateless.
class NodeAuthorizer final : public Authorizer {
 public:
  explicit NodeAuthorizer(registry::Registry& registry);
  Decision authorize(const UserInfo& user, const RequestAttributes& request) const override;
  // Nothing for users that are not nodes; for a node, incomplete (its grants depend on the
  // objects bound to it, which rules cannot express), as in Kubernetes.
  RulesResult rulesFor(const UserInfo& user, const std::string& ns) const override;

 private:
  bool boundTo(const std::string& kindApiVersion, const std::string& kind, const std::string& ns,
               const std::string& name, const std::string& node) const;
  bool referencedByPodOf(const std::string& resource, const std::string& ns,
                         const std::string& name, const std::string& node) const;

  registry::Registry& registry_;
};

// The names of the Secrets (resource "secrets") or ConfigMaps ("configmaps") a pod references.
// Pure; never throws.
std::vector<std::string> podReferences(const nlohmann::json& pod, const std::string& resource);

}  // namespace ep::auth
