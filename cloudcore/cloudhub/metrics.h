#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/thread_annotations.h"

namespace ep::cloudhub {

// Counters of one node. Updated lock-free by the dispatcher, sessions and the node state
// store; read by render().
struct NodeCounters {
  std::atomic<uint64_t> changesSent{0};
  std::atomic<uint64_t> syncsSent{0};
  std::atomic<int64_t> ackedRevision{0};
};

// cloudhub's metrics, rendered in the Prometheus text format (GET /metrics). Thread-safe. The
// per-node counter objects are created once under a mutex and then updated with atomics, so
// the send path never takes a shared lock after a node's first message.
class Metrics {
 public:
  // The counters of `node`, created on first use. Never null; valid as long as the Metrics.
  std::shared_ptr<NodeCounters> node(const std::string& name);

  void setConnectedNodes(int64_t n) { connected_ = n; }
  void addReportApplied() { reportsApplied_++; }
  void addReportDuplicate() { reportsDuplicate_++; }
  void addReportRejected() { reportsRejected_++; }
  void addRefused(const std::string& reason);
  void addTlsHandshake(bool resumed) { (resumed ? tlsResumed_ : tlsFull_)++; }

  int64_t connectedNodes() const { return connected_; }
  uint64_t reportsApplied() const { return reportsApplied_; }
  uint64_t reportsDuplicate() const { return reportsDuplicate_; }
  uint64_t reportsRejected() const { return reportsRejected_; }
  uint64_t refused(const std::string& reason) const;
  uint64_t tlsHandshakes(bool resumed) const { return resumed ? tlsResumed_ : tlsFull_; }

  // Prometheus text exposition format 0.0.4.
  std::string render() const;

 private:
  std::atomic<int64_t> connected_{0};
  std::atomic<uint64_t> reportsApplied_{0};
  std::atomic<uint64_t> reportsDuplicate_{0};
  std::atomic<uint64_t> reportsRejected_{0};
  std::atomic<uint64_t> tlsFull_{0};
  std::atomic<uint64_t> tlsResumed_{0};
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<NodeCounters>> nodes_ EP_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> refused_ EP_GUARDED_BY(mu_);
};

}  // namespace ep::cloudhub
