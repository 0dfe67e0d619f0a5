#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/controllers/workload_util.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct SchedulerOptions {
  // Full pass even without watch events (retries unschedulable pods).
  std::chrono::milliseconds resync{std::chrono::seconds(10)};
  // Minimum time between two event-driven passes (bursts are coalesced).
  std::chrono::milliseconds minGap{std::chrono::milliseconds(100)};
  // Only pods whose spec.schedulerName is this (or empty) are scheduled.
  std::string schedulerName = "default-scheduler";
};

// Per-pass result, for tests and logs.
struct SchedulePassResult {
  int bound = 0;
  int unschedulable = 0;
};

// Binds pending pods to nodes (docs/workloads.md, "Scheduling").
//
// A pod is pending when it has no spec.nodeName, no deletionTimestamp, is not terminal and names
// this scheduler. Feasible nodes are Ready=True, not spec.unschedulable, tolerated (NoSchedule and
// NoExecute taints), matching spec.nodeSelector and required node affinity, and with room for the
// pod's cpu/memory requests and one more pod within status.allocatable (falling back to
// status.capacity; a resource the node reports neither for is not limited). The feasible node with
// the largest free cpu+memory fraction wins (ties: fewest pods, then name).
//
// Binding sets spec.nodeName with an update guarded by the pod's resourceVersion (the registry
// allows spec.nodeName to change only from empty), then PodScheduled=True through the status
// subresource and a Normal "Scheduled" Event. A pod that fits nowhere gets PodScheduled=False,
// reason Unschedulable, with kube-scheduler's summary message, and a Warning "FailedScheduling"
// Event — written only when that message changes, so retries of a stuck pod are quiet.
//
// Threading: a ControllerLoop thread runs reconcileOnce() on pod/node changes (only while pods
// are pending, for node and bound-pod changes) and every resync while pods are pending (or the
// last pass failed); a resync with nothing pending is skipped. reconcileOnce() is also callable
// directly from tests (with the loop stopped). start()/stop() from one owner thread.
class Scheduler {
 public:
  Scheduler(registry::Registry& registry, Clock& clock, SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  Status start();
  void stop();

  // One pass: lists nodes and pods once, schedules every pending pod in creation order.
  Result<SchedulePassResult> reconcileOnce();
  // Resync passes the loop skipped because no pod was pending (tests).
  uint64_t skippedPasses() const { return skipped_.load(); }

 private:
  bool interesting(const api::KindInfo& kind, const registry::WatchEvent& e);
  Status bind(Json pod, const std::string& node);
  Status markUnschedulable(const Json& pod, const std::string& message);

  registry::Registry& registry_;
  Clock& clock_;
  const SchedulerOptions options_;
  std::atomic<int> pending_{0};  // pending pods seen by the last pass
  // Loop thread only (atomic for tests' reads): an event asked for a pass since the last one;
  // the last pass succeeded; resync passes skipped (nothing pending).
  std::atomic<bool> asked_{false};
  std::atomic<bool> lastPassOk_{false};
  std::atomic<uint64_t> skipped_{0};
  // What the scheduler reads of each node, as last seen by interesting() (loop thread only).
  std::map<std::string, std::string> nodeFingerprints_;
  std::unique_ptr<ControllerLoop> loop_;
};

// Exposed for tests: the pod's scheduling requests (cpu in millicores, memory in bytes): the sum
// over containers, each container's request defaulting to its limit, and the max with any init
// container.
struct PodRequests {
  int64_t milliCpu = 0;
  int64_t memory = 0;
};
PodRequests podRequests(const Json& pod);

// Exposed for tests: true when `tolerations` (a pod's spec.tolerations) tolerate `taint`.
bool toleratesTaint(const Json& tolerations, const Json& taint);
// Exposed for tests: required node affinity and nodeSelector of `pod` match `nodeLabels`.
bool matchesNodeSelectorAndAffinity(const Json& pod,
                                    const std::map<std::string, std::string>& nodeLabels);

}  // namespace ep::controllers
