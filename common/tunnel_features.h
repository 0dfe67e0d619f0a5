#pragma once

// Optional tunnel messages beyond protocol 1 (proto/tunnel.proto): a cloud lists those it accepts
// in HelloReply.features, and an edge sends such a message only to a cloud that listed it.
namespace ep {

// ResourceMetrics (edgecore/stats -> cloudcore/resourcemetrics; docs/metrics.md).
inline constexpr const char* kFeatureResourceMetrics = "resource-metrics";

}  // namespace ep
