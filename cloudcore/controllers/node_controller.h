#pragma once

#include <chrono>
#include <string>
#include <unordered_map>
#include <vector>

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

// Marks nodes whose edgecore stopped heartbeating (docs/tunnel.md, "Node lifecycle"): for each
// Node whose last heartbeat is older than gracePeriod, sets Ready and the pressure conditions to
// Unknown, reason NodeStatusUnknown, through the status subresource with compare-and-swap
// retries. The last heartbeat is the later of the Ready condition's lastHeartbeatTime and the
// renewTime of the node's Lease in kube-node-lease (what most heartbeats renew). Nodes
// heartbeating within the grace period are never touched, so a live node never flaps; the
// node's next full status report sets Ready back to True. Also deletes node Leases whose Node is
// gone (those with an ownerReference to a Node that no longer exists by that uid).
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
  // `leaseRenewed`: the renewTime of the node's Lease (Unix ms), -1 without one.
  bool isStale(const registry::Json& node, int64_t leaseRenewed) const;
  // The node's Lease renewTime (Unix ms), read now; -1 without one.
  int64_t leaseRenewedNow(const std::string& name);
  // Deletes the Leases in `leases` (kube-node-lease) whose owning Node is gone; `nodeUids`:
  // name -> uid of the Nodes listed before them.
  void collectLeases(const std::vector<registry::Json>& leases,
                     const std::unordered_map<std::string, std::string>& nodeUids);

  registry::Registry& registry_;
  Clock& clock_;
  const NodeControllerOptions options_;

  PeriodicTask task_;  // runs reconcileOnce() every interval
};

}  // namespace ep::controllers
