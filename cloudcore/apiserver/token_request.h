#pragma once

// The TokenRequest API (the `token` subresource of ServiceAccounts), which `kubectl create
// token` uses: POST /api/v1/namespaces/NS/serviceaccounts/NAME/token with an
// authentication.k8s.io/v1 TokenRequest, as JSON or as Kubernetes protobuf (kubectl's default),
// answers 201 with the TokenRequest, its spec defaulted, and status {token,
// expirationTimestamp}, always as JSON.
//
// spec.audiences defaults to [auth::kServiceAccountIssuer]; spec.expirationSeconds to 3600, at
// least 600 (422 below, as Kubernetes), and is shortened to 48 h with a Warning header above
// that. spec.boundObjectRef may name a Pod (running as this ServiceAccount) or a Secret in the
// namespace: the token then stops working when that object is deleted. Errors are Kubernetes
// Status objects: 404 when the ServiceAccount (or the bound object) does not exist, 400 for a
// malformed body or an unsupported bound kind, 409 for a bound uid that does not match, 405 for
// another method. Authorization (create on serviceaccounts/token) is the auth filter's.

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/auth/service_account_tokens.h"
#include "cloudcore/registry/registry.h"

namespace ep::apiserver {

// Longest token lifetime handed out; longer requests are shortened to it.
inline constexpr int64_t kMaxTokenExpirationSeconds = 48 * 3600;

// Registers serviceaccounts/token on `handler`. `registry` and `tokens` must outlive it. Call
// before the server starts; the route is then thread-safe like its parts.
void installTokenRequest(ApiHandler& handler, registry::Registry& registry,
                         auth::ServiceAccountTokens& tokens);

}  // namespace ep::apiserver
