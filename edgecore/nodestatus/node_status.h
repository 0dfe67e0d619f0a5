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
#include "common/thread_annotations.h"
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
  // The filesystem of edgecore's data dir (statvfs); 0 when unknown.
  uint64_t diskCapacityBytes = 0;
  uint64_t diskAvailableBytes = 0;
};

// DiskPressure is True, as a kubelet's default eviction threshold says (nodefs.available<10%),
// when less than this share of the data dir's filesystem is available.
inline constexpr double kDiskPressureAvailableShare = 0.10;

// Seam for host inspection: the real one reads getifaddrs, /proc/meminfo, uname and
// /etc/os-release; tests use a fixed one. Implementations are thread-safe.
class HostInfo {
 public:
  virtual ~HostInfo() = default;
  virtual HostFacts collect() = 0;
};

class SystemHostInfo final : public HostInfo {
 public:
  // `diskPath`: a path on the filesystem whose space is reported (edgecore's data dir).
  explicit SystemHostInfo(std::string diskPath = "/") : diskPath_(std::move(diskPath)) {}
  HostFacts collect() override;

 private:
  const std::string diskPath_;
};

// Space kept back on the data dir's filesystem (a file of `bytes` at `path`) so that, when the
// disk fills up, the node can still write the heartbeat that reports DiskPressure: an outbox
// write that fails for lack of space releases it and is tried again. While it is released its
// size counts as taken in what is reported. Made again once the filesystem has room for it
// with its size to spare above the DiskPressure threshold. Empty path: none.
struct DiskReserve {
  std::string path;
  uint64_t bytes = 8u << 20;
};

struct NodeIdentity {
  std::string nodeName;
  std::map<std::string, std::string> labels;  // from config; well-known labels are added
  std::vector<Taint> taints;
  std::string edgecoreVersion;
  std::string containerRuntimeVersion;  // "containerd://1.6.20"; "" when unknown
};

// The full Node JSON (registration + status) at `nowMillis`: conditions Ready and DiskPressure,
// capacity with ephemeral-storage when the disk's size is known. Pure function.
nlohmann::json buildNode(const NodeIdentity& id, const HostFacts& facts, int64_t nowMillis);

// Enqueues a REPORT_KIND_NODE_STATUS outbox entry (the full Node JSON) at start() and every
// `interval` after, on its own thread. Host facts are collected each time (cheap).
// start()/stop() from one owner thread; stop() joins.
class NodeStatusReporter {
 public:
  NodeStatusReporter(NodeIdentity identity, std::chrono::milliseconds interval, HostInfo& host,
                     metamanager::Outbox& outbox, Clock& clock, DiskReserve reserve = {});
  ~NodeStatusReporter();

  // Reports once synchronously (the error is returned), then starts the heartbeat thread.
  Status start();
  void stop();
  // Builds and enqueues one report now (releasing the disk reserve when the disk is full).
  // Thread-safe.
  Status reportOnce();

 private:
  void run();
  // Creates the reserve file when it is missing and the filesystem has room.
  void keepReserve(const HostFacts& facts);

  const NodeIdentity identity_;
  const std::chrono::milliseconds interval_;
  HostInfo& host_;
  metamanager::Outbox& outbox_;
  Clock& clock_;
  const DiskReserve reserve_;
  Mutex reserveMu_;  // serializes reportOnce()'s reserve handling

  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread thread_;  // owned by the start()/stop() caller
};

}  // namespace ep::edgecore::nodestatus
