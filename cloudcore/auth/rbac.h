#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cloudcore/auth/authorizer.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::registry {
class Registry;
}
namespace ep::controllers {
class ControllerLoop;
}

namespace ep::auth {

// The rules of a Role or ClusterRole object (malformed entries skipped).
std::vector<PolicyRule> policyRulesOf(const nlohmann::json& role);

// Whether one rule allows the request (Kubernetes' RuleAllows).
bool ruleAllows(const PolicyRule& rule, const RequestAttributes& request);

struct RbacSubject {
  std::string kind;  // User, Group, ServiceAccount
  std::string name;
  std::string ns;  // ServiceAccount only
};

struct RbacBinding {
  std::string name;
  std::string ns;        // "" for a ClusterRoleBinding
  std::string roleKind;  // Role or ClusterRole
  std::string roleName;
  std::vector<RbacSubject> subjects;
};

// An immutable snapshot of every Role, ClusterRole and binding.
struct RbacPolicy {
  std::map<std::string, std::vector<PolicyRule>> clusterRoles;
  std::map<std::pair<std::string, std::string>, std::vector<PolicyRule>> roles;  // (ns, name)
  std::vector<RbacBinding> clusterRoleBindings;
  std::multimap<std::string, RbacBinding> roleBindings;  // by namespace

  // Adds one object of a RBAC kind (kind from the object). Malformed parts are skipped (the
  // API validated what it stored); returns false when the object was not usable at all.
  bool add(const nlohmann::json& object);
};

// Evaluates a snapshot: allowed when a binding whose subjects include the user grants a rule
// that allows the request (ClusterRoleBindings everywhere, RoleBindings in their namespace).
Decision evaluateRbac(const RbacPolicy& policy, const UserInfo& user,
                      const RequestAttributes& request);

// Every rule of every role bound to the user by a ClusterRoleBinding, or by a RoleBinding in
// `ns`, split into resource and non-resource rules (Kubernetes' RulesFor). Bindings to roles
// that do not exist are skipped and reported in evaluationError.
RulesResult rbacRulesFor(const RbacPolicy& policy, const UserInfo& user, const std::string& ns);

// RBAC over the store: keeps a snapshot rebuilt (relisted) whenever one of the four RBAC kinds
// changes, so decisions are made from memory. authorize() is thread-safe; start()/stop() from
// one owner thread.
class RbacAuthorizer final : public Authorizer {
 public:
  explicit RbacAuthorizer(registry::Registry& registry);
  ~RbacAuthorizer() override;

  // Loads the first snapshot (an error is returned) and starts following changes.
  Status start();
  void stop();

  Decision authorize(const UserInfo& user, const RequestAttributes& request) const override;
  RulesResult rulesFor(const UserInfo& user, const std::string& ns) const override;

  // Replaces the snapshot (tests).
  void setPolicy(std::shared_ptr<const RbacPolicy> policy);

 private:
  Status reload();

  registry::Registry& registry_;
  std::unique_ptr<controllers::ControllerLoop> loop_;
  mutable Mutex mu_;
  std::shared_ptr<const RbacPolicy> policy_ EP_GUARDED_BY(mu_);  // never null after construction
};

// Creates the default ClusterRoles (cluster-admin, admin, edit, view, system:discovery,
// system:basic-user, system:public-info-viewer) and their ClusterRoleBindings when missing,
// as Kubernetes' bootstrap policy does. Existing objects are left as the operator made them.
Status ensureBootstrapPolicy(registry::Registry& registry);

// The default ClusterRoles and ClusterRoleBindings as objects (exposed for tests).
std::vector<nlohmann::json> bootstrapPolicyObjects();

}  // namespace ep::auth
