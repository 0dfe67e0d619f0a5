#pragma once

#include <chrono>

#include "cloudcore/controllers/periodic_task.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct PodEvictionOptions {
  // Pods on a node whose Ready condition has not been True for longer than this are deleted.
  // 0 disables eviction (the default: edge autonomy keeps pods on a disconnected node).
  std::chrono::seconds timeout{0};
  std::chrono::milliseconds interval{std::chrono::seconds(5)};
};

// Deletes the pods of nodes that stayed NotReady/Unknown longer than the eviction timeout, so
// their controllers recreate them elsewhere (docs/workloads.md, "Pod eviction"). "Not ready
// since" is the Ready condition's lastTransitionTime (else lastHeartbeatTime, else the node's
// creationTimestamp). A pod that tolerates the node.kubernetes.io/unreachable (Ready=Unknown) or
// node.kubernetes.io/not-ready (Ready=False) NoExecute taint is kept: forever without
// tolerationSeconds, else for tolerationSeconds instead of the timeout. Each eviction records a
// Normal "TaintManagerEviction" Event on the pod.
//
// Threading: like NodeController, one thread runs reconcileOnce() every interval; start() does
// nothing when the timeout is 0. reconcileOnce() is callable from tests.
class PodEvictionController {
 public:
  PodEvictionController(registry::Registry& registry, Clock& clock, PodEvictionOptions options);
  ~PodEvictionController();
  PodEvictionController(const PodEvictionController&) = delete;
  PodEvictionController& operator=(const PodEvictionController&) = delete;

  Status start();
  void stop();

  // One pass. Returns how many pods were deleted (0 when disabled).
  Result<int> reconcileOnce();

 private:
  registry::Registry& registry_;
  Clock& clock_;
  const PodEvictionOptions options_;
  PeriodicTask task_;  // runs reconcileOnce() every interval
};

}  // namespace ep::controllers
