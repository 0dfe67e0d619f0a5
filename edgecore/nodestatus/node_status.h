#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "edgecore/config.h"
#include "edgecore/metamanager/metamanager.h"

namespace ep::edgecore::nodestatus {

// Facts about the host the Node object reports.
struct HostFacts {
  std::string hostname;
  std::string internalIp;  // "" when none found
  int cpus = 1;
  uint64_t memoryKi = 0;
  std::string architecture;  // Kubernetes spelling: amd64, arm64
  std::string kernelVersion;
  std::string osImage;
  std::string containerRuntimeVersion;  // "containerd://1.6.20"; "" when not known (yet)
};

// Seam for host inspection: the real one reads getifaddrs, /proc/meminfo, uname and
// /etc/os-release; tests use a fixed one. Implementations are thread-safe.
class HostInfo {
 public:
  virtual ~HostInfo() = default;
  virtual HostFacts collect() = 0;
};

class SystemHostInfo final : public HostInfo {
 public:
  HostFacts collect() override;
};

struct NodeIdentity {
  std::string nodeName;
  std::map<std::string, std::string> labels;  // from config; well-known labels are added
  std::vector<Taint> taints;
  std::string edgecoreVersion;
  std::string containerRuntimeVersion;  // "containerd://1.6.20"; "" when unknown
};

// The full Node JSON (registration + status) at `nowMillis`. Pure function.
nlohmann::json buildNode(const NodeIdentity& id, const HostFacts& facts, int64_t nowMillis);

// Enqueues a REPORT_KIND_NODE_STATUS outbox entry (the full Node JSON) at start() and every
// `interval` after, on its own thread. Host facts are collected each time (cheap).
// start()/stop() from one owner thread; stop() joins.
class NodeStatusReporter {
 public:
  NodeStatusReporter(NodeIdentity identity, std::chrono::milliseconds interval, HostInfo& host,
                     metamanager::Outbox& outbox, Clock& clock);
  ~NodeStatusReporter();

  // Reports once synchronously (the error is returned), then starts the heartbeat thread.
  Status start();
  void stop();
  // Builds and enqueues one report now. Thread-safe.
  Status reportOnce();

 private:
  void run();

  const NodeIdentity identity_;
  const std::chrono::milliseconds interval_;
  HostInfo& host_;
  metamanager::Outbox& outbox_;
  Clock& clock_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;     // owned by the start()/stop() caller
};

}  // namespace ep::edgecore::nodestatus
