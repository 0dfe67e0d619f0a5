#pragma once

#include <chrono>

#include "cloudcore/controllers/periodic_task.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct NodeControllerOptions {
  // A node whose Ready heartbeat is older than this is marked Ready=Unknown.
  std::chrono::seconds gracePeriod{40};
  // How often reconcileOnce() runs on the controller thread.
  std::chrono::milliseconds interval{5000};
};

// Marks nodes whose edgecore stopped posting status (docs/tunnel.md, "Node lifecycle"): for
// each Node whose Ready condition's lastHeartbeatTime is older than gracePeriod, sets Ready (and
// only Ready) to Unknown, reason NodeStatusUnknown, through the status subresource with
// compare-and-swap retries. Nodes heartbeating within the grace period are never touched, so
// a live node never flaps; the next heartbeat (a node status report) sets Ready back to True.
//
// Threading: one thread runs reconcileOnce() every interval; reconcileOnce() is also callable
// directly (tests with a FakeClock). start()/stop() from one owner thread.
class NodeController {
 public:
  NodeController(registry::Registry& registry, Clock& clock, NodeControllerOptions options = {});
  ~NodeController();
  NodeController(const NodeController&) = delete;
  NodeController& operator=(const NodeController&) = delete;

  Status start();
  void stop();

  // One pass over all nodes. Returns how many nodes were marked Unknown, or the list error.
  Result<int> reconcileOnce();

 private:
  // Marks one node Unknown if it is still stale; retries on conflicts.
  Result<bool> markIfStale(const std::string& name);
  bool isStale(const registry::Json& node) const;

  registry::Registry& registry_;
  Clock& clock_;
  const NodeControllerOptions options_;

  PeriodicTask task_;  // runs reconcileOnce() every interval
};

}  // namespace ep::controllers
