#include "cloudcore/resourcemetrics/resource_metrics_store.h"

#include <spdlog/spdlog.h>

#include <set>
#include <tuple>

#include "proto/tunnel.pb.h"

namespace ep::resourcemetrics {

namespace tv1 = edgeplane::tunnel::v1;

namespace {

constexpr int64_t kMaxWindowMs = 3600 * 1000;
constexpr size_t kMaxNameBytes = 253;

Status checkName(const std::string& value, const std::string& field) {
  if (value.empty()) return invalidError(field + ": must not be empty");
  if (value.size() > kMaxNameBytes) {
    return invalidError(field + ": longer than " + std::to_string(kMaxNameBytes) + " bytes");
  }
  return {};
}

// Older than max(3 windows, 60 s) at `now`.
bool stale(const NodeSample& sample, std::chrono::steady_clock::time_point now) {
  const auto maxAge = std::max(std::chrono::milliseconds(3 * sample.windowMs),
                               std::chrono::milliseconds(std::chrono::seconds(60)));
  return now - sample.received > maxAge;
}

}  // namespace

Status validateResourceMetrics(const tv1::ResourceMetrics& m) {
  if (m.timestamp_ms() <= 0) return invalidError("timestamp_ms: must be positive");
  if (m.window_ms() <= 0 || m.window_ms() > kMaxWindowMs) {
    return invalidError("window_ms: must be between 1 ms and 1 h");
  }
  if (static_cast<size_t>(m.pods_size()) > kMaxPodsPerNode) {
    return invalidError("pods: more than " + std::to_string(kMaxPodsPerNode));
  }
  size_t containers = 0;
  std::set<std::tuple<std::string, std::string, std::string>> pods;
  for (int i = 0; i < m.pods_size(); ++i) {
    const auto& p = m.pods(i);
    const std::string field = "pods[" + std::to_string(i) + "]";
    if (auto s = checkName(p.namespace_(), field + ".namespace"); !s.isOk()) return s;
    if (auto s = checkName(p.name(), field + ".name"); !s.isOk()) return s;
    if (p.uid().size() > kMaxNameBytes) return invalidError(field + ".uid: too long");
    if (!pods.emplace(p.namespace_(), p.name(), p.uid()).second) {
      return invalidError(field + ": pod " + p.namespace_() + "/" + p.name() + " uid \"" + p.uid() +
                          "\" listed twice");
    }
    containers += static_cast<size_t>(p.containers_size());
    if (containers > kMaxContainersPerNode) {
      return invalidError(field + ".containers: more than " +
                          std::to_string(kMaxContainersPerNode) + " containers on the node");
    }
    std::set<std::string> names;
    for (int j = 0; j < p.containers_size(); ++j) {
      const std::string cfield = field + ".containers[" + std::to_string(j) + "].name";
      if (auto s = checkName(p.containers(j).name(), cfield); !s.isOk()) return s;
      if (!names.insert(p.containers(j).name()).second) {
        return invalidError(cfield + ": \"" + p.containers(j).name() + "\" listed twice");
      }
    }
  }
  return {};
}

void ResourceMetricsStore::onResourceMetrics(const std::string& node,
                                             const tv1::ResourceMetrics& m) {
  if (Status s = validateResourceMetrics(m); !s.isOk()) {
    uint64_t n = 0;
    {
      MutexLock lock(mu_);
      n = ++rejected_;
    }
    // One line per power of two: a node sending nonsense every interval does not flood the log.
    if ((n & (n - 1)) == 0) {
      spdlog::warn("resource metrics from node {} dropped ({} so far): {}", node, n, s.message());
    }
    return;
  }
  auto sample = std::make_shared<NodeSample>();
  sample->timestampMs = m.timestamp_ms();
  sample->windowMs = m.window_ms();
  sample->received = clock_.steadyNow();
  sample->node = {m.node().cpu_nano_cores(), m.node().memory_working_set_bytes()};
  for (const auto& p : m.pods()) {
    PodUsage pod{p.uid(), {}};
    pod.containers.reserve(static_cast<size_t>(p.containers_size()));
    for (const auto& c : p.containers()) {
      pod.containers.push_back(
          {c.name(), {c.usage().cpu_nano_cores(), c.usage().memory_working_set_bytes()}});
    }
    sample->pods[{p.namespace_(), p.name()}].push_back(std::move(pod));
  }
  std::vector<std::shared_ptr<const NodeSample>> old;  // freed outside the lock
  MutexLock lock(mu_);
  old.push_back(std::exchange(nodes_[node], std::move(sample)));
  // Samples of nodes that stopped sending go with the next sweep, at most once a minute.
  const auto now = clock_.steadyNow();
  if (now - lastSweep_ >= std::chrono::minutes(1)) {
    lastSweep_ = now;
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (stale(*it->second, now)) {
        old.push_back(std::move(it->second));
        it = nodes_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

const std::vector<ContainerUsage>* NodeSample::containersOf(const std::string& ns,
                                                            const std::string& name,
                                                            const std::string& uid) const {
  auto it = pods.find({ns, name});
  if (it == pods.end()) return nullptr;
  for (const auto& p : it->second) {
    if (p.uid == uid || p.uid.empty()) return &p.containers;
  }
  return nullptr;
}

std::shared_ptr<const NodeSample> ResourceMetricsStore::node(const std::string& name) const {
  std::shared_ptr<const NodeSample> sample;
  {
    MutexLock lock(mu_);
    auto it = nodes_.find(name);
    if (it == nodes_.end()) return nullptr;
    sample = it->second;
  }
  return stale(*sample, clock_.steadyNow()) ? nullptr : sample;
}

size_t ResourceMetricsStore::nodeCount() const {
  MutexLock lock(mu_);
  return nodes_.size();
}

uint64_t ResourceMetricsStore::rejected() const {
  MutexLock lock(mu_);
  return rejected_;
}

}  // namespace ep::resourcemetrics
