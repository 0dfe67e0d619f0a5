#pragma once

// The `scale` subresource of Deployments and ReplicaSets (autoscaling/v1 Scale), so
// `kubectl scale` and autoscalers work: GET returns the Scale, PUT and PATCH (merge, strategic
// merge, JSON patch) set spec.replicas of the object. A metadata.resourceVersion in the body is
// a precondition, as in Kubernetes.

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/registry/registry.h"

namespace ep::apiserver {

// Registers deployments/scale and replicasets/scale on `handler`. `registry` must outlive it.
// Call before the server starts; the routes are then thread-safe like the Registry.
void installScaleSubresource(ApiHandler& handler, registry::Registry& registry);

}  // namespace ep::apiserver
