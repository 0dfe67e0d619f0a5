#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/edged/runtime/container_runtime.h"
#include "proto/tunnel.pb.h"

// Resource use of the node and of the containers edged runs, sampled for metrics.k8s.io
// (docs/metrics.md). The edge side of `kubectl top`.
namespace ep::edgecore::stats {

// Counters of the whole node at one moment.
struct NodeSample {
  uint64_t cpuBusyNs = 0;              // cumulative non-idle CPU time of all cores since boot
  uint64_t memoryWorkingSetBytes = 0;  // MemTotal - MemAvailable
};

// The busy CPU time in the first ("cpu ") line of /proc/stat, in ns: user, nice, system, irq and
// softirq (guest time is already inside user; idle, iowait and steal are not this node's use), at
// `ticksPerSecond` (USER_HZ). Pure.
Result<uint64_t> parseProcStatBusyNs(std::string_view text, long ticksPerSecond);
// MemTotal - MemAvailable of /proc/meminfo, in bytes. Pure.
Result<uint64_t> parseMemInfoWorkingSetBytes(std::string_view text);

// Seam for the node's counters: the real one reads /proc; tests use a fixed one. Thread-safe.
class NodeUsageSource {
 public:
  virtual ~NodeUsageSource() = default;
  virtual Result<NodeSample> sample() = 0;
};

class ProcNodeUsage final : public NodeUsageSource {
 public:
  explicit ProcNodeUsage(std::string procDir = "/proc") : procDir_(std::move(procDir)) {}
  Result<NodeSample> sample() override;

 private:
  const std::string procDir_;
};

struct StatsOptions {
  std::string nodeName;
  // How often a sample is taken and sent; CPU rates are averaged over the time between two.
  std::chrono::milliseconds interval{15000};
};

// Sends one message on the tunnel if it is up (EdgeHub::sendIfConnected); false otherwise.
using MetricsSender = std::function<bool(edgeplane::tunnel::v1::EdgeMessage&&)>;

// Samples the node (NodeUsageSource) and the running containers edged created for this node
// (ContainerRuntime::listContainerStats, filtered by the node label) every `interval`, turns the
// cumulative CPU counters into rates against the previous sample, and sends a ResourceMetrics
// message while the tunnel is up. Nothing is stored: with the cloud away samples are dropped.
// A container appears from its second sample on (a rate needs two); the node likewise.
//
// Threads: start() starts one thread that samples and sends; sampleOnce() is thread-safe (one
// mutex holds the previous samples). start()/stop() from one owner thread; stop() joins.
class StatsReporter {
 public:
  StatsReporter(StatsOptions options, edged::ContainerRuntime& runtime, NodeUsageSource& node,
                MetricsSender send, const Clock& clock);
  ~StatsReporter();
  StatsReporter(const StatsReporter&) = delete;
  StatsReporter& operator=(const StatsReporter&) = delete;

  void start();
  void stop();

  // Takes one sample; the message when there is a previous node sample to compute rates from.
  // Runtime and /proc errors are returned (the previous samples are kept).
  Result<std::optional<edgeplane::tunnel::v1::ResourceMetrics>> sampleOnce();

  // Samples taken, messages sent, and the last error ("" when the last sample worked), for
  // edgecore's /status.
  struct Counters {
    uint64_t samples = 0;
    uint64_t sent = 0;
    std::string lastError;
  };
  Counters counters() const;

 private:
  struct Previous {
    int64_t atNs = 0;
    uint64_t cpuNs = 0;
  };
  void run();

  const StatsOptions options_;
  edged::ContainerRuntime& runtime_;
  NodeUsageSource& node_;
  const MetricsSender send_;
  const Clock& clock_;

  mutable Mutex mu_;
  std::optional<Previous> nodePrevious_ EP_GUARDED_BY(mu_);
  std::map<std::string, Previous> containerPrevious_ EP_GUARDED_BY(mu_);  // by container id
  Counters counters_ EP_GUARDED_BY(mu_);

  Mutex runMu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(runMu_) = false;
  std::thread thread_;  // owned by the start()/stop() caller
};

}  // namespace ep::edgecore::stats
