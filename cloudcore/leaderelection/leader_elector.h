#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace ep::leaderelection {

struct LeaderElectionOptions {
  // The coordination.k8s.io/v1 Lease the replicas compete for.
  std::string leaseNamespace = "kube-system";
  std::string leaseName = "cloudcore";
  // This replica's name in spec.holderIdentity; unique per replica (required).
  std::string identity;
  // How long a holder's claim lasts after its last renewal, as seen by the others (written to
  // spec.leaseDurationSeconds, whole seconds).
  std::chrono::milliseconds leaseDuration{10000};
  // A leader that could not renew for this long steps down; shorter than leaseDuration, so it
  // has stopped before another replica may take over.
  std::chrono::milliseconds renewDeadline{7000};
  // Between two attempts to acquire or renew.
  std::chrono::milliseconds retryPeriod{2000};
};

// Leader election through a Lease in the store, with the semantics of client-go's
// leaderelection package: the Lease names its holder; a replica takes it over when it is free
// (no holder) or when the holder's record has not changed for the record's leaseDurationSeconds
// of this replica's monotonic clock (never by comparing wall clocks across machines). Every
// write is a compare-and-swap on the Lease's resourceVersion, so two replicas never both win the
// same term. The leader renews every retryPeriod and steps down after renewDeadline without a
// successful renewal; a leader stopping normally releases the Lease (no holder), so another
// replica takes over at its next attempt instead of waiting out the lease.
//
// Worst-case failover after the leader dies: retryPeriod (to notice its last renewal) +
// leaseDuration + retryPeriod (10 + 2 + 2 = 14 s with the defaults).
//
// Callbacks run on the elector's thread (or the caller of tick()/stop()):
//   onStartedLeading: this replica now holds the Lease. Returns an error when what it starts
//     could not start; the elector then releases the Lease and tries again later.
//   onStoppedLeading: this replica no longer holds the Lease (lost, or stop()); it returns once
//     whatever onStartedLeading started has stopped.
// Both may take time (starting and stopping controllers); renewals wait meanwhile.
//
// Thread-safety: start()/stop() from one owner thread; tick() from one thread at a time (the
// elector's own once started); leading()/holder() from any thread.
class LeaderElector {
 public:
  using StartedFn = std::function<Status()>;
  using StoppedFn = std::function<void()>;

  LeaderElector(registry::Registry& registry, Clock& clock, LeaderElectionOptions options,
                StartedFn onStartedLeading, StoppedFn onStoppedLeading);
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Makes the first attempt on the calling thread (so a single replica is leading, with its
  // controllers started, when start() returns), then starts the thread that attempts every
  // retryPeriod. An error of onStartedLeading at that first attempt is returned (nothing is left
  // running); store errors are not: the thread keeps trying.
  Status start();
  // Ends the thread; if leading, runs onStoppedLeading and then releases the Lease. Idempotent.
  void stop();

  // One attempt to acquire or renew, with the transitions it implies. Public for tests, which
  // drive it with a FakeClock instead of start()ing the thread.
  Status tick();

  bool leading() const;
  // The holder last seen in the Lease ("" when none).
  std::string holder() const;

 private:
  // The Lease's spec fields this elector reads and writes.
  struct Record {
    std::string holder;
    int64_t leaseDurationSeconds = 0;
    std::string acquireTime;
    std::string renewTime;
    int64_t transitions = 0;
    bool operator==(const Record&) const = default;
  };
  enum class Attempt { kHeld, kNotHeld };
  // Reads the Lease and writes it if this replica may hold it: kHeld when this replica holds it
  // after the call, kNotHeld when another does; an error when the store said neither.
  Result<Attempt> tryAcquireOrRenew();
  void becomeFollower(bool releaseLease);
  Status release();
  void loop();

  registry::Registry& registry_;
  Clock& clock_;
  const LeaderElectionOptions options_;
  const StartedFn onStartedLeading_;
  const StoppedFn onStoppedLeading_;

  // Touched by the ticking thread only.
  bool startFailed_ = false;  // the last tick's onStartedLeading failed
  Record observed_;
  std::chrono::steady_clock::time_point observedAt_{};
  std::chrono::steady_clock::time_point lastRenewal_{};

  mutable Mutex mu_;
  std::condition_variable cv_;
  bool leading_ EP_GUARDED_BY(mu_) = false;
  std::string holder_ EP_GUARDED_BY(mu_);
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// This replica's default identity, HOSTNAME_ID: ID (16 hex digits) is kept in
// DATA_DIR/leader-election-id, made on the first start, so a restarted replica is the same
// holder and takes its Lease back at once instead of waiting it out. A replica set up from a copy
// of another's data dir must not keep that file (docs/deployment.md). An unreadable or malformed
// file is an error naming it.
Result<std::string> loadOrCreateIdentity(const std::string& dataDir);

}  // namespace ep::leaderelection
