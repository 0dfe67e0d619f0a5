#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/metamanager/cache.h"
#include "edgecore/serviceproxy/service_rules.h"

namespace ep::edgecore::serviceproxy {

// Where the proxy's rules go: the seam between the proxy and the host's packet filter.
// Implementations are called from the proxy's thread only.
class RuleApplier {
 public:
  virtual ~RuleApplier() = default;
  // The nat table's chains whose names start with `prefix`. kUnavailable when the packet filter
  // cannot be read (no iptables, not root).
  virtual Result<std::set<std::string>> listChains(const std::string& prefix) = 0;
  // Applies iptables-restore input with --noflush (only the chains it declares change).
  virtual Status restore(const std::string& rules) = 0;
  // Makes sure PREROUTING and OUTPUT jump to kServicesChain and POSTROUTING to
  // kPostroutingChain (once each).
  virtual Status ensureJumps() = 0;
};

// The real applier: iptables-save, iptables-restore and iptables from PATH (Debian's iptables,
// nf_tables backend), each run with a timeout and waiting for the xtables lock.
std::unique_ptr<RuleApplier> makeIptablesApplier();

struct ServiceProxyOptions {
  std::string nodeName;
  // Rules are re-applied this often even when nothing changed (another program may have flushed
  // the nat table), and the cache is re-read.
  std::chrono::milliseconds resync{std::chrono::seconds(60)};
  // Changes arriving in a burst are applied together, at most once per minGap.
  std::chrono::milliseconds minGap{std::chrono::milliseconds(200)};
};

struct ServiceProxyCounters {
  uint64_t servicePorts = 0;  // service ports with a local ready endpoint, as last applied
  uint64_t backends = 0;
  uint64_t applies = 0;   // successful rule writes
  std::string lastError;  // "" after a successful pass
};

// The edge's service proxy (docs/services.md): DNATs each Service's cluster IP:port, and its
// node ports on this host's addresses, to the ready endpoints on this node, from the Services
// and EndpointSlices in the edge cache — so it keeps working with the cloud gone and across
// restarts. The rules live in chains named EDGEPLANE-* of the nat table; they stay when edgecore
// stops (running pods keep their service traffic) and are rewritten from the cache at start.
// A node that never had a Service with a local endpoint never touches the packet filter.
//
// Threading: start() opens cache subscriptions to Services and EndpointSlices and starts one
// thread that calls syncOnce() after changes (coalesced, minGap apart) and every resync.
// syncOnce() is public for tests (with the thread not started); counters() from any thread.
class ServiceProxy {
 public:
  ServiceProxy(ServiceProxyOptions options, metamanager::CacheReader& cache, RuleApplier& applier);
  ~ServiceProxy();
  ServiceProxy(const ServiceProxy&) = delete;
  ServiceProxy& operator=(const ServiceProxy&) = delete;

  void start();
  void stop();

  // Reads the cache, computes the rules, and applies them when they differ from what was last
  // applied (always when `force`). An error (cache, packet filter) is returned and kept in
  // counters().lastError; the next pass retries.
  Status syncOnce(bool force);

  ServiceProxyCounters counters() const;
  nlohmann::json statusJson() const;

 private:
  void run();
  void subscribe();

  const ServiceProxyOptions options_;
  metamanager::CacheReader& cache_;
  RuleApplier& applier_;

  // Proxy thread only (syncOnce is not reentrant).
  bool known_ = false;            // the chains that exist were read from the packet filter
  bool listFailed_ = false;       // reading them failed while there was nothing to program
  std::set<std::string> chains_;  // chains of ours that exist
  std::string applied_;           // rules last applied ("" = none)
  std::vector<std::shared_ptr<metamanager::Subscription>> subs_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  bool dirty_ EP_GUARDED_BY(mu_) = false;
  ServiceProxyCounters counters_ EP_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace ep::edgecore::serviceproxy
