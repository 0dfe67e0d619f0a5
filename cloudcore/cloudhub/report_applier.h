#pragma once

#include <cstdint>
#include <string>

#include "cloudcore/registry/registry.h"
#include "common/clock.h"

namespace ep::devicedata {
class DeviceDataStore;
}

namespace ep::cloudhub {

class NodeLeases;

// With node Leases, a NODE_STATUS report whose status says what the stored one says (heartbeat
// times aside) is written only when the stored heartbeat is at least this old (or ahead of the
// cloud's clock): the Lease, renewed instead, carries the node's liveness. Shorter than
// edgecore's default nodeStatusReportFrequency (5 min), so that its periodic full report lands;
// an edge set to report more often than this has some of its reports only renew the Lease.
inline constexpr std::chrono::minutes kUnchangedNodeStatusWriteAfter{4};

// Mirrors edgeplane.tunnel.v1.ReportKind (kept free of protobuf for this seam).
enum class ReportKind : int {
  kUnspecified = 0,
  kNodeStatus = 1,
  kPodStatus = 2,
  kEvent = 3,
  kDeviceTwin = 4,
  kData = 5,  // device data samples (docs/devices.md, "Device data")
  kCommandResult = 6,
  kRoutedMessage = 7,  // a message an edge app published on a Rule's topic (docs/rules.md)
  kModelStatus = 8,    // a node's state of one Model (docs/models.md, "Status")
};

// Takes messages of eventbus -> rest Rules from the edge (implemented by the router). The
// message must be durably queued when this returns OK: the report is then acknowledged.
// `sequence` is the report's (with the node, it identifies a delivery made twice). An empty
// rule namespace and name is an upload (KubeEdge's $hw/events/upload/#): no Rule, kept as the
// node's time series.
// kNotFound/kInvalid refuse the message (no such rule for this node); kUnavailable asks the
// edge to send it again later. Blocking (a database write); thread-safe.
class RoutedMessageSink {
 public:
  virtual ~RoutedMessageSink() = default;
  virtual Status routeFromEdge(const std::string& node, uint64_t sequence,
                               const std::string& ruleNamespace, const std::string& ruleName,
                               const std::string& topic, std::string payload,
                               int64_t timestampMillis) = 0;
};

struct ReportInput {
  uint64_t sequence = 0;
  int kind = 0;  // ReportKind value as received (may be unknown)
  std::string namespace_;
  std::string name;
  std::string payload;
};

enum class ReportOutcome {
  kApplied,   // written through the registry (or accepted as a no-op)
  kRejected,  // invalid or not allowed: logged, counted, acknowledged so it leaves the outbox
  kRetry,     // transient failure (store unavailable, conflicts exhausted): not acknowledged
};

struct ReportResult {
  ReportOutcome outcome = ReportOutcome::kApplied;
  std::string detail;  // why, for logs
};

// Applies one edge report through the registry (docs/tunnel.md, "Edge -> cloud: Report").
// Blocking (store writes): call it on the worker pool. Stateless; thread-safe.
// `deviceData` (may be null: data reports are then acknowledged and not kept) receives the
// samples of REPORT_KIND_DATA reports; it must outlive the applier.
class ReportApplier {
 public:
  // `routed` (may be null: routed messages are then refused) takes REPORT_KIND_ROUTED_MESSAGE
  // reports; it must outlive the applier.
  // `leases` (may be null: every NODE_STATUS report is written) is renewed by every NODE_STATUS
  // report, and lets unchanged ones skip the Node write (kUnchangedNodeStatusWriteAfter, on
  // `clock`); it must outlive the applier.
  ReportApplier(registry::Registry& registry, bool autoRegister,
                devicedata::DeviceDataStore* deviceData = nullptr,
                RoutedMessageSink* routed = nullptr, NodeLeases* leases = nullptr,
                Clock& clock = SystemClock::instance());

  ReportResult apply(const std::string& node, const ReportInput& report);

 private:
  ReportResult applyNodeStatus(const std::string& node, const ReportInput& report);
  ReportResult applyPodStatus(const std::string& node, const ReportInput& report);
  ReportResult applyEvent(const std::string& node, const ReportInput& report);
  ReportResult applyDeviceTwin(const std::string& node, const ReportInput& report);
  ReportResult applyData(const std::string& node, const ReportInput& report);
  ReportResult applyRoutedMessage(const std::string& node, const ReportInput& report);
  ReportResult applyModelStatus(const std::string& node, const ReportInput& report);

  registry::Registry& registry_;
  const bool autoRegister_;
  devicedata::DeviceDataStore* const deviceData_;
  RoutedMessageSink* const routed_;
  NodeLeases* const leases_;
  Clock& clock_;
};

}  // namespace ep::cloudhub
