#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cloudcore/cloudhub/tunnel_server.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::resourcemetrics {

// Bounds on one node's sample (a message beyond them is dropped whole, with a warning naming
// the field): what a node can run, with room to spare.
inline constexpr size_t kMaxPodsPerNode = 1000;
inline constexpr size_t kMaxContainersPerNode = 4000;

struct Usage {
  uint64_t cpuNanoCores = 0;
  uint64_t memoryBytes = 0;
};

struct ContainerUsage {
  std::string name;
  Usage usage;
};

// One pod's containers; `uid` is the pod's metadata.uid ("" from an edge that did not send it).
struct PodUsage {
  std::string uid;
  std::vector<ContainerUsage> containers;
};

// The latest sample a node sent (edgecore/stats), as kept.
struct NodeSample {
  int64_t timestampMs = 0;  // when the edge sampled (Unix ms)
  int64_t windowMs = 0;     // the span its CPU rates average over
  std::chrono::steady_clock::time_point received;
  Usage node;
  // By namespace and name; more than one while a pod was replaced by one of the same name.
  std::map<std::pair<std::string, std::string>, std::vector<PodUsage>> pods;

  // The containers of the pod with that namespace, name and uid; null when the sample has none.
  const std::vector<ContainerUsage>* containersOf(const std::string& ns, const std::string& name,
                                                  const std::string& uid) const;
};

// Checks a ResourceMetrics message: timestamps, window, names (a pod's namespace, name and uid
// once, a container's name once per pod), the bounds above. kInvalid naming the field. Pure.
Status validateResourceMetrics(const edgeplane::tunnel::v1::ResourceMetrics& m);

// The latest resource sample of every node, in memory only (docs/metrics.md): a node's sample
// replaces its previous one; a sample older than max(3 x its window, 60 s) counts as gone (the
// node stopped sending: offline, or stats turned off), as metrics-server forgets nodes it
// cannot scrape, and is removed by the next sweep (at most once a minute, as a sample arrives).
// cloudhub hands samples in on its reaction threads (never blocks: a map swap under one mutex); the
// metrics API reads them. Thread-safe.
class ResourceMetricsStore final : public cloudhub::ResourceMetricsSink {
 public:
  explicit ResourceMetricsStore(const Clock& clock) : clock_(clock) {}

  void onResourceMetrics(const std::string& node,
                         const edgeplane::tunnel::v1::ResourceMetrics& metrics) override;

  // The node's latest sample if it is fresh; null otherwise.
  std::shared_ptr<const NodeSample> node(const std::string& name) const;
  // Messages dropped for failing validateResourceMetrics.
  uint64_t rejected() const;
  // Nodes with a sample kept (fresh or not yet swept).
  size_t nodeCount() const;

 private:
  const Clock& clock_;
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<const NodeSample>> nodes_ EP_GUARDED_BY(mu_);
  uint64_t rejected_ EP_GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point lastSweep_ EP_GUARDED_BY(mu_);
};

}  // namespace ep::resourcemetrics
