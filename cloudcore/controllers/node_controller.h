#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::controllers {

struct NodeControllerOptions {
  // A node whose Ready heartbeat is older than this is marked Ready=Unknown.
  std::chrono::seconds gracePeriod{40};
  // How often a pass over the nodes runs on the controller thread.
  std::chrono::milliseconds interval{5000};
  // Least time between two takes of the watches' events on the controller thread: renewals
  // arriving meanwhile are taken together (at 1,000 renewals a second, one wake-up takes ~100).
  std::chrono::milliseconds drainGap{100};
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
// What it knows of Nodes and Leases comes from two watches, as an informer's cache: a pass
// reads only that cache (a few fields per node), and reads the store only for a node it is
// about to mark, or a Lease it is about to delete, to decide on the current object. A watch
// that ends (expired history, store error) is opened again and its kind's cache rebuilt from
// its initial list. No list of every Node and Lease per pass: at 10,000 nodes that was most of
// an idle cloudcore's CPU.
//
// Threading: one thread takes the watches' events (woken by them, at most once per drainGap)
// and runs a pass every interval; reconcileOnce() does the same on the caller's thread (tests
// with a FakeClock), serialized with the thread by mu_. start()/stop() from one owner thread.
class NodeController {
 public:
  NodeController(registry::Registry& registry, Clock& clock, NodeControllerOptions options = {});
  ~NodeController();
  NodeController(const NodeController&) = delete;
  NodeController& operator=(const NodeController&) = delete;

  // Starts the thread, which opens the watches (retried once per interval while they fail)
  // and runs the first pass one interval later.
  Status start();
  void stop();

  // Takes in every event the watches have now (opening them first when they are not open),
  // then one pass over the nodes. With the SQLite store, an event is there by the time its
  // write returned. Returns how many nodes were marked Unknown, or the watch error.
  Result<int> reconcileOnce();

 private:
  // What a pass needs of a Node.
  struct NodeSeen {
    std::string uid;
    int64_t heartbeat = -1;  // Ready's lastHeartbeatTime, else creationTimestamp (Unix ms)
    bool unknown = false;    // Ready is Unknown already
  };
  // What a pass needs of a node Lease.
  struct LeaseSeen {
    std::string uid;
    std::string ownerUid;  // the owning Node's uid, "" when no Node owns it
    std::string resourceVersion;
    int64_t renewed = -1;  // spec.renewTime (Unix ms)
  };

  std::unique_ptr<registry::ObjectWatch>& watchOf(bool leases) EP_REQUIRES(mu_);
  Status openWatch(bool leases) EP_REQUIRES(mu_);
  // Takes every event available now into the caches; opens a watch that is not open (a failed
  // open is retried once per interval) or ended. An error: a cache is not complete.
  Status drain() EP_REQUIRES(mu_);
  // Drops both watches (and so, at the next drain, both caches).
  void resetWatches() EP_REQUIRES(mu_);
  void observe(bool leases, const registry::WatchEvent& e) EP_REQUIRES(mu_);
  static NodeSeen seeNode(const registry::Json& node);
  int pass() EP_REQUIRES(mu_);
  bool isStale(const NodeSeen& node, int64_t leaseRenewed) const;
  // Marks one node Unknown if it is still stale, judged on the objects read now; retries on
  // conflicts.
  Result<bool> markIfStale(const std::string& name);
  // The node's Lease renewTime (Unix ms), read now; -1 without one.
  int64_t leaseRenewedNow(const std::string& name);
  // Deletes the node Lease `name` if its owning Node (by ownerUid) is gone, judged on the Node
  // read now.
  void collectLease(const std::string& name, const LeaseSeen& lease);
  void run();
  void wake() EP_EXCLUDES(wakeMu_);

  registry::Registry& registry_;
  Clock& clock_;
  const NodeControllerOptions options_;

  Mutex mu_;  // held by a pass and every take of events
  std::unique_ptr<registry::ObjectWatch> nodeWatch_ EP_GUARDED_BY(mu_);
  std::unique_ptr<registry::ObjectWatch> leaseWatch_ EP_GUARDED_BY(mu_);
  std::unordered_map<std::string, NodeSeen> nodes_ EP_GUARDED_BY(mu_);
  std::unordered_map<std::string, LeaseSeen> leases_ EP_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point nodeRetryAt_ EP_GUARDED_BY(mu_){};
  std::chrono::steady_clock::time_point leaseRetryAt_ EP_GUARDED_BY(mu_){};

  Mutex wakeMu_ EP_ACQUIRED_AFTER(mu_);  // never held while taking mu_
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(wakeMu_) = false;
  bool notified_ EP_GUARDED_BY(wakeMu_) = false;
  std::thread thread_;
};

}  // namespace ep::controllers
