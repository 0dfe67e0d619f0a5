#pragma once

#include <string>
#include <vector>

#include "cloudcore/auth/request_info.h"
#include "cloudcore/auth/user_info.h"

namespace ep::auth {

struct Decision {
  bool allowed = false;
  // Why (for the audit log and debugging): the binding that allowed it, or the denial.
  std::string reason;
};

// rbac.authorization.k8s.io/v1 PolicyRule.
struct PolicyRule {
  std::vector<std::string> verbs;
  std::vector<std::string> apiGroups;
  std::vector<std::string> resources;  // "pods", "pods/log", "*", "*/scale"
  std::vector<std::string> resourceNames;
  std::vector<std::string> nonResourceURLs;  // "/healthz", "/api/*", "*"
};

// What a user may do in one namespace, as a SelfSubjectRulesReview reports it (kubectl auth
// can-i --list): resource rules (cluster-wide and the namespace's) and non-resource rules.
struct RulesResult {
  std::vector<PolicyRule> resourceRules;
  std::vector<PolicyRule> nonResourceRules;
  // True when an authorizer cannot list what it allows (e.g. the node authorizer), so the
  // rules above may be fewer than what the user can actually do.
  bool incomplete = false;
  std::string evaluationError;
};

// Decides whether a user may do what a request asks. Implementations are thread-safe; they run
// on the API worker pool (RBAC decides from memory, the node authorizer reads the store).
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual Decision authorize(const UserInfo& user, const RequestAttributes& request) const = 0;
  // The rules this authorizer grants `user` in namespace `ns` ("" = cluster-wide only). The
  // default: nothing it could list, so incomplete.
  virtual RulesResult rulesFor(const UserInfo& user, const std::string& ns) const {
    (void)user;
    (void)ns;
    return {{}, {}, true, "this authorizer does not support rule resolution"};
  }
};

// The message of a 403, worded as Kubernetes words it:
//   pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" in the
//   namespace "default"
//   forbidden: User "bob" cannot get path "/metrics"
std::string forbiddenMessage(const UserInfo& user, const RequestAttributes& request);

}  // namespace ep::auth
