#pragma once

#include <functional>
#include <vector>

#include "cloudcore/auth/authenticator.h"
#include "cloudcore/auth/authorizer.h"
#include "common/clock.h"
#include "common/http/server_types.h"

namespace ep::audit {
class AuditLog;
}

namespace ep::apiserver {

// The front of the API: every request is authenticated, authorized and audited here before
// `next` (the ApiHandler) sees it, as Kubernetes' handler chain does.
//   - Authentication (auth::Authenticator): bad credentials, and anonymous requests other than
//     /healthz, /livez, /readyz and /version (and their sub-paths), get 401.
//   - Authorization: the authorizers are asked in order; the first that allows wins. A denial
//     is a 403 Status naming the user, verb and resource.
//   - SelfSubjectReview (kubectl auth whoami), SelfSubjectAccessReview (kubectl auth can-i)
//     and SelfSubjectRulesReview (kubectl auth can-i --list) are answered here, since they are
//     about the caller.
//   - Audit: one audit.k8s.io/v1 Event per request (stage ResponseComplete, or ResponseStarted
//     for watches, log streams and exec) when an AuditLog is given.
// handle() is thread-safe (called on the HTTP worker pool); everything it borrows must outlive
// it.
class AuthFilter {
 public:
  using Next = std::function<http::ServerResponse(http::ServerRequest&)>;
  // What a request asks to do; default auth::requestAttributes (the API's paths). The router's
  // REST entry passes its own.
  using Attributes = std::function<auth::RequestAttributes(const http::ServerRequest&)>;

  AuthFilter(const auth::Authenticator& authenticator,
             std::vector<const auth::Authorizer*> authorizers, audit::AuditLog* audit, Clock& clock,
             Next next, Attributes attributes = nullptr);

  http::ServerResponse handle(http::ServerRequest& request);

 private:
  auth::Decision authorize(const auth::UserInfo& user, const auth::RequestAttributes& a) const;
  http::ServerResponse selfSubjectReview(const auth::UserInfo& user);
  http::ServerResponse selfSubjectAccessReview(const auth::UserInfo& user,
                                               const http::ServerRequest& request);
  http::ServerResponse selfSubjectRulesReview(const auth::UserInfo& user,
                                              const http::ServerRequest& request);
  void audit(const http::ServerRequest& request, const auth::UserInfo* user,
             const auth::RequestAttributes& a, const http::ServerResponse& response,
             int64_t receivedMicros, const std::string& decision, const std::string& reason);

  const auth::Authenticator& authenticator_;
  const std::vector<const auth::Authorizer*> authorizers_;
  audit::AuditLog* const audit_;
  Clock& clock_;
  const Next next_;
  const Attributes attributes_;
};

// Allows everything to members of system:masters (Kubernetes' privileged group authorizer).
class PrivilegedGroupAuthorizer final : public auth::Authorizer {
 public:
  auth::Decision authorize(const auth::UserInfo& user,
                           const auth::RequestAttributes& request) const override;
  // Everything ("*" on every resource and path) for members of system:masters.
  auth::RulesResult rulesFor(const auth::UserInfo& user, const std::string& ns) const override;
};

}  // namespace ep::apiserver
