#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/metamanager/cache.h"
#include "edgecore/models/content_store.h"

namespace ep::edgecore::upgrade {

struct UpgradeOptions {
  std::string nodeName;
  std::string architecture;  // GOARCH name: which binary of a release this node takes
  std::string version;       // this edgecore's
  std::string dataDir;       // state under DATA_DIR/upgrade
  // The binary this process runs (realpath of /proc/self/exe): the "previous" binary of an
  // upgrade, replaced by the new one once it proved healthy.
  std::string executable;
  // Longest a new version may take to connect to the cloud before the node goes back to the
  // previous binary; a job's smaller spec.timeoutSeconds wins.
  std::chrono::milliseconds healthTimeout{std::chrono::minutes(2)};
  std::chrono::milliseconds pollInterval{std::chrono::seconds(1)};
  // The share (0..1) of "cpu", "mem" or "disk" in use, for a job's spec.checkItems; null means
  // this host's (systemUsage).
  std::function<Result<double>(const std::string& item)> usage;
};

// This host's usage of a spec.checkItems item: "cpu" from /proc/stat over `cpuWindow` (the
// caller's thread sleeps that long), "mem" from /proc/meminfo (1 - MemAvailable/MemTotal),
// "disk" from statvfs of `dataDir`. kInvalid for another item, kInternal when unreadable.
Result<double> systemUsage(const std::string& item, const std::string& dataDir,
                           std::chrono::milliseconds cpuWindow = std::chrono::seconds(1));

// The edge half of NodeUpgradeJobs (docs/upgrades.md). Files under DATA_DIR/upgrade:
//   edgecore-VERSION   the staged new binary (0755), checked against its sha256 before use;
//   trial.json         an upgrade under way: job, version, digest, the previous binary, the
//                      staged one, the health deadline;
//   outcome.json       the last attempt's outcome, shown as the Node's EdgecoreUpgrade
//                      condition until the next one;
//   attempted.json     the uids of the jobs tried here (a rolled-back job is not tried again).
//
// The sequence: a NodeUpgradeJob upgrading this node arrives (with its EdgecoreRelease); its
// spec.checkItems are checked first (one above api::kUpgradeCheckMaxUsage records CheckFailed
// and the job is not tried here), then the model fetcher brings the release's binary for this
// architecture into the content store (verified), then this manager stages it, writes trial.json
// and asks for a handover
// (`requestHandover`, main raises SIGUSR1): edgecore's main stops every service as on SIGTERM
// and execs handoverTarget() with the same arguments, in the same process (so systemd sees no
// restart, and containers are adopted as on any restart). The new binary finds trial.json
// naming it: once its tunnel is connected (`healthy`) it installs itself over the previous
// binary (kept as PATH.previous), records outcome Upgraded and goes on. If it is not healthy by
// the deadline (steady clock), or cannot install itself, it records RolledBack and hands over
// to the previous binary. If it dies instead (exits at start), the service manager (systemd's
// Restart=always) starts the previous binary again, which finds trial.json naming another
// binary and records RolledBack. A crash between installing and recording is finished by the
// installed (new) binary at its start. A stop that comes during a handover abandons it
// (abandonHandover(): the job is tried again at the next start).
//
// Threads: one worker (start/stop) polls the cache and the deadline; recoverAtStart() runs on
// the caller's thread before start(). condition()/handoverTarget()/statusJson() are
// thread-safe.
class UpgradeManager {
 public:
  UpgradeManager(UpgradeOptions options, metamanager::CacheReader& cache,
                 const models::ContentStore& content, Clock& clock, std::function<bool()> healthy,
                 std::function<void()> requestHandover);
  ~UpgradeManager();
  UpgradeManager(const UpgradeManager&) = delete;
  UpgradeManager& operator=(const UpgradeManager&) = delete;

  // Reads the state files: an upgrade this binary is the trial of, or one whose new binary
  // died (recorded as rolled back). Damaged files are logged and dropped.
  Status recoverAtStart();
  Status start();
  void stop();

  // The Node condition EdgecoreUpgrade of the last attempt, if any.
  std::optional<nlohmann::json> condition() const;
  // Set once a handover was requested: the binary to exec.
  std::optional<std::string> handoverTarget() const;
  // Main stops instead of handing over (a SIGTERM came first or meanwhile): a staged upgrade is
  // forgotten (trial.json and the staged copy removed, the job may be tried again); a rollback
  // already recorded stays. Call after stop().
  void abandonHandover();
  nlohmann::json statusJson() const;

  // One pass of the worker (tests call it with the worker stopped).
  void pollOnce();

 private:
  struct Trial {
    std::string job, uid, version, fromVersion, digest, previous, staged;
    int64_t timeoutMillis = 0;
    // Set when the trial binary starts (steady: a clock set at boot must not end a trial).
    std::chrono::steady_clock::time_point deadline{};
  };
  void run();
  void commit(const Trial& t);
  void rollBack(const Trial& t, const std::string& why);
  // Records an outcome: reason api::kUpgradeReasonUpgraded (status True), RolledBack or
  // CheckFailed.
  void record(const std::string& job, const std::string& uid, const std::string& version,
              const std::string& reason, const std::string& message);
  // The job's spec.checkItems that fail here, as "mem 93% in use (at most 80%)"; "" when all pass.
  std::string failedChecks(const nlohmann::json& job);
  Status stage(const nlohmann::json& job, const std::string& digest, const std::string& blob);
  void handOver(const std::string& target);
  // Adds uid to attempted_ (bounded, oldest dropped) and returns the list to write.
  std::vector<std::string> markAttempted(const std::string& uid) EP_REQUIRES(mu_);
  // Writes attempted.json from `uids` (outside the mutex: fsync).
  Status writeAttempted(const std::vector<std::string>& uids);
  // The checked contents of outcome.json / trial.json; nullopt (logged) when malformed.
  std::optional<nlohmann::json> checkedOutcome(const nlohmann::json& j) const;
  std::optional<Trial> checkedTrial(const nlohmann::json& j) const;

  const UpgradeOptions options_;
  metamanager::CacheReader& cache_;
  const models::ContentStore& content_;
  Clock& clock_;
  const std::function<bool()> healthy_;
  const std::function<void()> requestHandover_;
  const std::string dir_;

  mutable Mutex mu_;
  std::optional<Trial> trial_ EP_GUARDED_BY(mu_);  // this binary is on trial
  std::optional<nlohmann::json> outcome_ EP_GUARDED_BY(mu_);
  std::vector<std::string> attempted_ EP_GUARDED_BY(mu_);  // oldest first, bounded
  std::optional<std::string> handover_ EP_GUARDED_BY(mu_);
  std::string lastProblem_ EP_GUARDED_BY(mu_);
  std::vector<std::string> checked_;  // uids whose pre-checks passed (the worker's only)
  // Where this binary is installed once a trial committed (the file it runs from, the staged
  // copy, is gone then); "" means options_.executable.
  std::string installed_ EP_GUARDED_BY(mu_);
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  std::condition_variable cv_;
  std::thread worker_;
};

}  // namespace ep::edgecore::upgrade
