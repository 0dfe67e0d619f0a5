#pragma once

// The `eviction` subresource of pods (policy/v1 Eviction), which `kubectl drain` uses: POST an
// Eviction (JSON or protobuf) and the pod is deleted as a DELETE with the Eviction's
// deleteOptions would delete it — gracefully by default (Terminating until its node confirms),
// preconditions and dry run honoured — answered with a 201 Success Status, as in Kubernetes.
// PodDisruptionBudgets are not served, so no eviction is refused for one.

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/registry/registry.h"

namespace ep::apiserver {

// Registers pods/eviction on `handler`. `registry` must outlive it. Call before the server
// starts; the route is then thread-safe like the Registry.
void installEviction(ApiHandler& handler, registry::Registry& registry);

}  // namespace ep::apiserver
