#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/api/node_lease.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::registry {
class Registry;
}

namespace ep::cloudhub {

using api::kNodeLeaseNamespace;

// How NodeLeases writes renewals (see "Bursts" below).
struct NodeLeaseBatching {
  std::chrono::milliseconds window{0};  // 0: each renewal handed to the executor at once
  size_t parallel = 8;                  // tasks per burst (the executor's threads)
};

// The nodes' heartbeat Leases (docs/tunnel.md, "Node lifecycle"): coordination.k8s.io/v1 Lease
// kube-node-lease/NODE, holderIdentity NODE, leaseDurationSeconds the node grace period,
// renewTime the cloud's clock (never the edge's) when the node last showed it was alive: a
// LeaseRenewal or a NODE_STATUS report. Owned by its Node (an ownerReference; the node
// controller deletes Leases whose Node is gone). No Lease is made for a node that has no Node.
//
// A renewal that finds the Lease expired (renewTime older than its duration: the node controller
// may have marked the node Unknown meanwhile) calls `onLapsed(node)` after writing it; cloudhub
// then ends the node's stream, so that the edge reconnects and sends its full status (which
// sets Ready back), instead of renewing a Lease of an Unknown node for up to 5 minutes.
//
// Threads: renew() is a non-blocking reaction (the tunnel's I/O thread): it marks the node due
// and, unless a write of its Lease is queued or running, hands one to the executor; renewals
// while it is queued change nothing (it writes the time it runs), renewals while it runs
// coalesce into one more write after it, so a node has at most one write in flight and the
// bookkeeping holds only nodes with one. The executor is never called with the lock held. The
// writes (registry calls) run on the executor. Thread-safe; the executor and the registry must
// outlive it, and drain() must return before it is destroyed (cloudhub joins its worker pool
// first). renew() may be called only while the executor runs tasks (cloudhub: between start() and
// stop()).
//
// Bursts (Batching::window > 0): renewals are gathered for `window` by a thread of its own
// (start()/stop()) and then handed to the executor as `parallel` tasks that write them one
// after the other. Renewals trickle in one at a time (1,000 a second at 10,000 nodes), so
// written as they come each is an fsynced store commit of its own; written in bursts, the
// store's group commit puts up to `parallel` of them in one commit. A renewal's write waits at
// most `window` more (its renewTime is the time it is written).
class NodeLeases {
 public:
  using Batching = NodeLeaseBatching;
  using Executor = std::function<void(std::function<void()>)>;
  // Called on the executor's thread; must not block.
  using LapsedCallback = std::function<void(const std::string& node)>;

  enum class Renewal {
    kRenewed,  // written
    kLapsed,   // written, and it had expired before
    kNoNode,   // not written: the node has no Node (not registered yet, or deleted)
  };

  NodeLeases(registry::Registry& registry, Clock& clock, Executor executor,
             std::chrono::seconds leaseDuration, LapsedCallback onLapsed = nullptr,
             Batching batching = {});
  ~NodeLeases();
  NodeLeases(const NodeLeases&) = delete;
  NodeLeases& operator=(const NodeLeases&) = delete;

  // With a window: starts the thread that hands bursts to the executor. stop() hands what is
  // due to the executor at once and joins it; renewals after stop() go to the executor as they
  // come. From one owner thread; stop() is idempotent.
  void start() EP_EXCLUDES(mu_);
  void stop() EP_EXCLUDES(mu_);

  void renew(const std::string& node) EP_EXCLUDES(mu_);
  // Writes the node's Lease now, on the caller's thread (the executor's task; the report
  // applier, which runs on the executor already; tests). Errors: the registry's (a missing
  // kube-node-lease namespace is kNotFound), kConflict after repeated conflicting writes.
  [[nodiscard]] Result<Renewal> renewNow(const std::string& node) EP_EXCLUDES(mu_);
  // Drops what it keeps of the node's Lease (its node disconnected): its next renewal reads it.
  void forget(const std::string& node) EP_EXCLUDES(mu_);
  // Blocks until no write is queued or running.
  void drain() EP_EXCLUDES(mu_);

  uint64_t written() const { return written_.load(); }
  uint64_t coalesced() const { return coalesced_.load(); }
  uint64_t failed() const { return failed_.load(); }
  uint64_t bursts() const { return bursts_.load(); }

 private:
  void run(const std::string& node) EP_EXCLUDES(mu_);
  void burstLoop();
  // Hands `nodes` to the executor as up to batching_.parallel tasks.
  void handOut(std::vector<std::string> nodes) EP_EXCLUDES(mu_);
  // Keeps `lease` (as the registry returned it after a write) as the node's Lease for its next
  // renewal.
  void remember(const std::string& node, const nlohmann::json& lease) EP_EXCLUDES(mu_);

  registry::Registry& registry_;
  Clock& clock_;
  const Executor executor_;
  const std::chrono::seconds leaseDuration_;
  const LapsedCallback onLapsed_;
  const Batching batching_;
  Mutex mu_;
  std::condition_variable idle_;
  std::condition_variable dueCv_;  // due_ gained a node, or stopping_
  // Nodes renewed, waiting for the next burst (each is in pending_ too).
  std::vector<std::string> due_ EP_GUARDED_BY(mu_);
  bool bursting_ EP_GUARDED_BY(mu_) = false;  // the burst thread runs
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread burster_;
  // Where a node's write is: waiting (for its burst or the executor: a renewal then changes
  // nothing, the write takes the time it runs), running, or running and renewed since it
  // started (one more write after it).
  enum class Write { kQueued, kRunning, kAgain };
  // Nodes with a write queued or running.
  std::unordered_map<std::string, Write> pending_ EP_GUARDED_BY(mu_);
  // Each connected node's Lease as last written here (JSON text, resourceVersion included):
  // the next renewal writes from it without reading the store. About 0.5 KiB per node; dropped
  // by forget() (a write finishing after it may keep the entry until the node's next
  // disconnect: at most one per node name).
  std::unordered_map<std::string, std::string> lastWritten_ EP_GUARDED_BY(mu_);
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> coalesced_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> bursts_{0};
};

}  // namespace ep::cloudhub
