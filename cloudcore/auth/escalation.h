#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "cloudcore/auth/authorizer.h"
#include "common/api/kinds.h"
#include "common/status.h"

namespace ep::registry {
class Registry;
}

namespace ep::auth {

// Kubernetes' RBAC escalation prevention: a user may create or change a Role or ClusterRole
// only if it already holds every permission the role grants (where the role applies), or may
// "escalate" it; and may create a RoleBinding or ClusterRoleBinding only if it holds every
// permission of the role it binds, or may "bind" that role. So the right to write RBAC objects
// never becomes more rights than the writer has. Bindings whose roleRef is unchanged (roleRef is
// immutable) and roles whose rules are unchanged are not checked again.
//
// What the user holds is the union of the authorizers' rulesFor() (RBAC, system:masters).
// Thread-safe and stateless apart from what it borrows; reads the referenced role from the
// registry (API worker pool).
class RbacEscalationCheck {
 public:
  RbacEscalationCheck(registry::Registry& registry, std::vector<const Authorizer*> authorizers);

  // kForbidden with Kubernetes' wording (listing the permissions not held) when `user` may not
  // write `next` (`current` is the stored object for an update, null for a create); OK for
  // objects of other kinds.
  [[nodiscard]] Status admit(const UserInfo& user, const api::KindInfo& kind, const std::string& ns,
                             const nlohmann::json* current, const nlohmann::json& next) const;

 private:
  bool allowed(const UserInfo& user, const std::string& verb, const std::string& resource,
               const std::string& ns, const std::string& name) const;
  std::vector<PolicyRule> heldRules(const UserInfo& user, const std::string& ns) const;

  registry::Registry& registry_;
  const std::vector<const Authorizer*> authorizers_;
};

// The rules of `requested` that `owner` does not cover, broken down to one verb, API group,
// resource (and name) or URL each, as Kubernetes' Covers() compares them. Pure.
std::vector<PolicyRule> uncoveredRules(const std::vector<PolicyRule>& owner,
                                       const std::vector<PolicyRule>& requested);

}  // namespace ep::auth
