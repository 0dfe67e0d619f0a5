#pragma once

namespace ep::api {

// Where the nodes' heartbeat Leases live (coordination.k8s.io/v1 Lease NODE), as in Kubernetes
// (docs/tunnel.md, "Node lifecycle").
inline constexpr const char* kNodeLeaseNamespace = "kube-node-lease";

}  // namespace ep::api
