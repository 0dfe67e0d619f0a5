#pragma once

// Optional tunnel messages beyond protocol 1 (proto/tunnel.proto): a cloud lists those it accepts
// in HelloReply.features, and an edge sends such a message only to a cloud that listed it.
namespace ep {

// ResourceMetrics (edgecore/stats -> cloudcore/resourcemetrics; docs/metrics.md).
inline constexpr const char* kFeatureResourceMetrics = "resource-metrics";

// LeaseRenewal heartbeats (edgecore/nodestatus -> cloudcore/cloudhub/node_leases; docs/tunnel.md
// "Node lifecycle"). An edge without it sends its full status with every heartbeat.
inline constexpr const char* kFeatureNodeLease = "node-lease";

// The other way: an edge lists in Hello.features what it accepts, and a cloud uses it only with
// such an edge. Interactive exec and attach (StreamOpen.stdin/tty, STREAM_KIND_ATTACH,
// StreamInput; docs/tunnel.md "Streams").
inline constexpr const char* kFeatureInteractiveStreams = "interactive-streams";
// Port-forward streams (STREAM_KIND_PORT_FORWARD; docs/tunnel.md "Streams").
inline constexpr const char* kFeaturePortForward = "port-forward";

}  // namespace ep
