#pragma once

#include <string>

#include "cloudcore/auth/request_info.h"
#include "cloudcore/auth/user_info.h"

namespace ep::auth {

struct Decision {
  bool allowed = false;
  // Why (for the audit log and debugging): the binding that allowed it, or the denial.
  std::string reason;
};

// Decides whether a user may do what a request asks. Implementations are thread-safe; they run
// on the API worker pool (RBAC decides from memory, the node authorizer reads the store).
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual Decision authorize(const UserInfo& user, const RequestAttributes& request) const = 0;
};

// The message of a 403, worded as Kubernetes words it:
//   pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" in the
//   namespace "default"
//   forbidden: User "bob" cannot get path "/metrics"
std::string forbiddenMessage(const UserInfo& user, const RequestAttributes& request);

}  // namespace ep::auth
