#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
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

// What the reporter needs of the tunnel (edgehub) to renew the node's Lease instead of sending
// its whole status. Implementations are thread-safe and never block.
class LeaseChannel {
 public:
  virtual ~LeaseChannel() = default;
  // A number naming the current connection (a new one gets a new number) when it is accepted by
  // a cloud that takes lease renewals (kFeatureNodeLease); 0 otherwise.
  virtual uint64_t leaseConnection() = 0;
  // Sends one LeaseRenewal on the connection numbered `connection` (leaseConnection()); false
  // when it could not go, or that connection was replaced meanwhile (the new one gets the full
  // status first).
  virtual bool renewLease(uint64_t connection) = 0;
};

// The node's status with what changes on every heartbeat left out: the conditions' times and
// messages (DiskPressure's message carries the free space), except the EdgecoreUpgrade
// condition's message (it names the upgrade it is about). Two heartbeats with the same
// fingerprint say the same thing about the node.
std::string statusFingerprint(const nlohmann::json& node);

struct ReporterOptions {
  std::chrono::milliseconds interval{10000};  // heartbeat interval
  // The full status goes at least this often (kubelet's nodeStatusReportFrequency).
  std::chrono::milliseconds statusReportFrequency{std::chrono::minutes(5)};
  DiskReserve reserve;
  // Null: every heartbeat is the full status (as with a cloud that does not take renewals).
  LeaseChannel* leases = nullptr;
  // Conditions added to Ready and DiskPressure on every heartbeat (edgecore's EdgecoreUpgrade,
  // docs/upgrades.md). Called on the heartbeat thread; must not block.
  std::function<std::vector<nlohmann::json>()> extraConditions;
};

// The node's heartbeat, on its own thread: at start() and every `interval` after, either a
// REPORT_KIND_NODE_STATUS outbox entry (the full Node JSON) or a LeaseRenewal. The full status
// goes when the lease channel has no connection (offline: the pending entry in the outbox is
// replaced, so the latest waits), on a new connection, when statusFingerprint() changed, when
// `statusReportFrequency` passed since the last one, and when the previous heartbeat is more than
// two intervals ago (the cloud may have marked the node Unknown meanwhile). Otherwise a renewal,
// which the outbox never sees (no write on the edge's disk). Host facts are collected each time
// (cheap). start()/stop() from one owner thread; stop() joins.
class NodeStatusReporter {
 public:
  NodeStatusReporter(NodeIdentity identity, ReporterOptions options, HostInfo& host,
                     metamanager::Outbox& outbox, Clock& clock);
  ~NodeStatusReporter();

  // Reports once synchronously (the error is returned), then starts the heartbeat thread.
  Status start();
  void stop();
  // One heartbeat now (releasing the disk reserve when the disk is full). Thread-safe.
  Status reportOnce();

  // Heartbeats so far of each kind (tests, /status). Thread-safe.
  uint64_t fullReports() const { return fullReports_.load(); }
  uint64_t leaseRenewals() const { return leaseRenewals_.load(); }

 private:
  void run();
  // Enqueues the full status; the disk reserve is released when the disk is full.
  Status enqueueFull(const HostFacts& raw, const std::string& node) EP_REQUIRES(reportMu_);
  // Creates the reserve file when it is missing and the filesystem has room.
  void keepReserve(const HostFacts& facts);

  const NodeIdentity identity_;
  const ReporterOptions options_;
  HostInfo& host_;
  metamanager::Outbox& outbox_;
  Clock& clock_;
  Mutex reportMu_;  // serializes reportOnce(): the heartbeat state below and the disk reserve
  // What the last full report said, when and on which connection (0: none); the last heartbeat.
  std::string lastFingerprint_ EP_GUARDED_BY(reportMu_);
  int64_t lastFullMillis_ EP_GUARDED_BY(reportMu_) = 0;
  uint64_t lastFullConnection_ EP_GUARDED_BY(reportMu_) = 0;
  int64_t lastBeatMillis_ EP_GUARDED_BY(reportMu_) = 0;
  std::atomic<uint64_t> fullReports_{0};
  std::atomic<uint64_t> leaseRenewals_{0};

  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread thread_;  // owned by the start()/stop() caller
};

}  // namespace ep::edgecore::nodestatus
