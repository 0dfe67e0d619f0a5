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
// of this replica's monotonic clock, counted from when its read returned (never by comparing
// wall clocks across machines). Every write is a compare-and-swap on the Lease's resourceVersion,
// so two replicas never both win the same term. A Lease deleted under a live holder is not
// recreated by another replica before that holder's lease duration has passed.
//
// The leader renews every retryPeriod. Its claim counts from the start of its last successful
// renewal; once renewDeadline (< leaseDuration) has passed since then without another, it stops
// its controllers, even while a store call hangs (a watchdog thread enforces the deadline), so it
// has stopped before any other replica may take over. A leader stopping normally releases the
// Lease (no holder), so another replica takes over at its next attempt.
//
// Worst-case failover after the leader dies: retryPeriod (to notice its last renewal) +
// leaseDuration + retryPeriod (2 + 10 + 2 = 14 s with the defaults).
//
// Callbacks (never two at once):
//   onStartedLeading: this replica now holds the Lease. Returns an error when what it starts
//     could not start; the elector then releases the Lease and waits before trying again (2, 4,
//     ... up to 60 retry periods). A start that outlasted renewDeadline is stopped at once.
//   onStoppedLeading: this replica no longer holds the Lease (lost, deadline passed, or stop());
//     it returns once whatever onStartedLeading started has stopped.
// They run on the elector's thread, the watchdog's, or the caller of tick()/stop() and
// enforceRenewDeadline().
//
// Thread-safety: start()/stop() from one owner thread; tick() and enforceRenewDeadline() from any
// thread (serialized inside); leading()/holder() from any thread.
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
  // retryPeriod and the watchdog. An error of onStartedLeading at that first attempt is returned
  // (nothing is left running); store errors are not: the thread keeps trying.
  Status start();
  // Ends the threads; if leading, runs onStoppedLeading and then releases the Lease. Idempotent.
  void stop();

  // One attempt to acquire or renew, with the transitions it implies. Public for tests, which
  // drive it with a FakeClock instead of start()ing the threads.
  Status tick() EP_EXCLUDES(tickMu_, termMu_, mu_);
  // Stops the controllers if this replica leads and renewDeadline has passed since its last
  // successful renewal began. The watchdog calls it every 100 ms; public for tests.
  void enforceRenewDeadline() EP_EXCLUDES(termMu_, mu_);

  bool leading() const EP_EXCLUDES(mu_);
  // The holder last seen in the Lease ("" when none).
  std::string holder() const EP_EXCLUDES(mu_);

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
  Result<Attempt> tryAcquireOrRenew() EP_REQUIRES(tickMu_);
  // Whether `holder` names this replica: its identity, or the same ID after another host name.
  bool isMine(const std::string& holder) const;
  // Whether `record`, observed at observedAt_, names another holder whose lease duration has
  // not passed at `at`.
  bool claimLasts(const Record& record, std::chrono::steady_clock::time_point at) const
      EP_REQUIRES(tickMu_);
  // Runs onStoppedLeading and marks this replica a follower.
  void stepDown() EP_REQUIRES(termMu_) EP_EXCLUDES(mu_);
  Status release() EP_EXCLUDES(mu_);
  void loop();
  void watchdog();

  registry::Registry& registry_;
  Clock& clock_;
  const LeaderElectionOptions options_;
  const std::string idSuffix_;  // "_ID" of options_.identity ("" without one)
  const StartedFn onStartedLeading_;
  const StoppedFn onStoppedLeading_;

  // Lock order: tickMu_, then termMu_, then mu_. tickMu_ is held for a whole attempt (store
  // calls included); termMu_ around the callbacks and the transitions they go with; mu_ only
  // for short reads and writes.
  Mutex tickMu_;
  bool startFailed_ EP_GUARDED_BY(tickMu_) = false;  // the last tick's onStartedLeading failed
  int startFailures_ EP_GUARDED_BY(tickMu_) = 0;     // in a row
  std::chrono::steady_clock::time_point nextAttempt_ EP_GUARDED_BY(tickMu_){};
  Record observed_ EP_GUARDED_BY(tickMu_);
  std::chrono::steady_clock::time_point observedAt_ EP_GUARDED_BY(tickMu_){};
  Mutex termMu_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  bool leading_ EP_GUARDED_BY(mu_) = false;
  // When the last successful renewal (or the acquisition) began.
  std::chrono::steady_clock::time_point lastRenewal_ EP_GUARDED_BY(mu_){};
  std::string holder_ EP_GUARDED_BY(mu_);
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::thread thread_;
  std::thread watchdog_;
};

// This replica's default identity, HOSTNAME_ID: ID (16 hex digits) is kept in
// DATA_DIR/leader-election-id, made on the first start, so a restarted replica is the same
// holder and takes its Lease back at once instead of waiting it out. A replica set up from a copy
// of another's data dir must not keep that file (docs/deployment.md). An unreadable or malformed
// file is an error naming it.
Result<std::string> loadOrCreateIdentity(const std::string& dataDir);

}  // namespace ep::leaderelection
