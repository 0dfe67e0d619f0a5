#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "edgecore/edged/pod_spec.h"
#include "edgecore/edged/runtime/container_runtime.h"
#include "edgecore/edged/volumes.h"
#include "edgecore/metamanager/cache.h"

namespace ep::edged {

struct EdgedOptions {
  std::string nodeName;
  std::string dataDir;  // volumes under DATA_DIR/pods, container logs under DATA_DIR/logs
  std::string hostIp;
  // How often the runtime is relisted and every pod synced (changes in the cache wake it early).
  std::chrono::milliseconds syncPeriod{1000};
  size_t workers = 4;
  // Crash-loop and image-pull back-off: initial delay, doubled per failure up to max.
  std::chrono::milliseconds initialBackoff{10000};
  std::chrono::milliseconds maxBackoff{300000};
  // Container log rotation (as the kubelet's containerLogMaxSize/containerLogMaxFiles): a log
  // over maxSize is renamed and the runtime reopens it; at most maxFiles files per container.
  uint64_t containerLogMaxSize = 10 * 1024 * 1024;
  int containerLogMaxFiles = 5;
  std::chrono::milliseconds logRotationInterval{10000};
  // Model volumes (docs/models.md): where verified model files are, by digest. Empty: pods with
  // model volumes wait (FailedMount).
  ModelBlobLocator modelBlobs;
};

// Counters for /status and tests. Monotonic since start().
struct EdgedStats {
  uint64_t syncs = 0;
  uint64_t containersStarted = 0;
  uint64_t sandboxesCreated = 0;
  uint64_t podsKilled = 0;
  uint64_t statusReports = 0;
  uint64_t eventsReported = 0;
  uint64_t runtimeErrors = 0;
};

// edged: runs the pods of this node on the container runtime, driven only by the edge cache (so
// it keeps working with the cloud gone). Reconciles like the kubelet: every syncPeriod (or when
// the cache changes) it relists the runtime, and each pod whose desired state (the cached Pod,
// keyed by uid) and actual state (sandboxes/containers labelled with that uid) differ is mended
// by a pod worker: sandbox (re)created, init containers run in order, containers created,
// started, restarted per restartPolicy with crash back-off, replaced when their spec changes,
// killed on a failed liveness probe; pods gone from the cache and orphan sandboxes are stopped
// (SIGTERM, terminationGracePeriodSeconds, SIGKILL) and removed. Pod status and Events go up
// through the durable outbox.
//
// Restarts adopt what runs: all state needed to recognise a container (pod uid, container name,
// attempt = restart count, spec hash) lives in the runtime's labels and annotations, so a new
// edgecore process (or one started with the cloud unreachable) keeps running containers as they
// are and recreates only what a reboot took away.
//
// Threading: one dispatcher thread (relist + scheduling) and `workers` pod-worker threads; a
// pod is synced by at most one worker at a time, so per-pod state needs no lock beyond the map
// lookup. Runtime calls block only the worker that makes them. start()/stop() from one owner
// thread; stop() leaves containers running.
class Edged {
 public:
  Edged(EdgedOptions options, ContainerRuntime& runtime, edgecore::metamanager::CacheReader& cache,
        edgecore::metamanager::Outbox& outbox, Clock& clock);
  ~Edged();
  Edged(const Edged&) = delete;
  Edged& operator=(const Edged&) = delete;

  Status start();
  void stop();

  // One full pass on the calling thread (relist, then sync every pod in turn). For tests; do not
  // call while started.
  Status syncOnce();

  // Sets every pod's volumes up again on the next pass (a model file arrived). Thread-safe,
  // non-blocking.
  void refreshVolumes();

  EdgedStats stats() const;
  nlohmann::json statusJson() const;

 private:
  struct PodRuntime {
    std::vector<SandboxInfo> sandboxes;
    std::vector<ContainerInfo> containers;
  };
  struct ProbeState {
    std::string containerId;
    std::chrono::steady_clock::time_point next{};
    int successes = 0;
    int failures = 0;
    bool ok = false;
  };
  struct Backoff {
    std::chrono::milliseconds delay{0};
    int64_t nextAllowedMillis = 0;
    std::string lastFailedId;  // the exited container (or image) this back-off was started for
    bool refused = false;      // image pulls: the registry refused the credentials
  };
  struct Waiting {
    std::string reason;
    std::string message;
  };
  struct EventRecord {
    std::string name;
    int count = 0;
    std::string firstTimestamp;
  };
  // Per-pod memory, owned by whichever worker syncs the pod (see class comment).
  struct PodState {
    std::string uid;
    Json lastStatus;  // last reported status
    std::string lastStatusDump;
    std::string startTime;
    std::map<std::string, Backoff> crashBackoff;         // container name
    std::map<std::string, Backoff> pullBackoff;          // container name
    std::map<std::string, Waiting> waiting;              // container name
    std::map<std::string, ProbeState> readiness;         // container name
    std::map<std::string, ProbeState> liveness;          // container name
    std::map<std::string, ContainerStatus> statusCache;  // container id
    std::map<std::string, std::string> volumes;
    uint64_t volumesGeneration = 0;
    bool volumesReady = false;
    std::string sandboxId;
    std::string podIp;
    bool dirty = false;                // this sync changed the runtime: status must relist the pod
    bool terminationReported = false;  // graceful deletion: final status sent
    int64_t nextLogCheckMillis = 0;
    std::map<std::string, EventRecord> events;  // aggregation key
  };
  struct Task {
    std::string uid;
    std::optional<Json> pod;
    PodRuntime runtime;
  };

  void dispatchLoop();
  void workerLoop();
  // Drains cache subscriptions into desired_ (mu_ held).
  void drainCacheLocked() EP_REQUIRES(mu_);
  // Relists the runtime and groups by pod uid. Called without mu_.
  Result<std::map<std::string, PodRuntime>> relist();
  // The tasks for one pass (mu_ held): every pod that is desired, present in the runtime, or
  // remembered, and not being synced right now.
  std::vector<Task> planLocked(std::map<std::string, PodRuntime>& byUid) EP_REQUIRES(mu_);
  void runTask(Task& task);
  void reapTerminatorsLocked() EP_REQUIRES(mu_);

  void syncPod(PodState& st, const Json& pod, const PodRuntime& rt);
  // Stops and removes everything of pod `uid` (its grace period from `pod`, or from the
  // sandbox when the pod is gone; volumes and logs go too when `pod` is null). Returns how each
  // container ended, by name.
  std::map<std::string, ContainerStatus> killPod(const std::string& uid, const PodRuntime& rt,
                                                 const Json* pod);
  void removeLogDirs(const std::string& uid);
  // Rotates the log of a running container when it is over containerLogMaxSize.
  void rotateLog(PodState& st, const ContainerInfo& running);
  void reportTerminated(PodState& st, const Json& pod,
                        const std::map<std::string, ContainerStatus>& exits);
  // Ensures the image is present per pull policy. False (with st.waiting set) when it is not.
  bool ensureImage(PodState& st, const Json& pod, const Json& container, const std::string& field,
                   std::string& imageRef);
  // Creates and starts one container. False when it could not (waiting reason recorded).
  bool startContainer(PodState& st, const Json& pod, const Json& container,
                      const std::string& field, uint32_t attempt, const PodSandboxConfig& sandbox);
  Result<ContainerStatus> statusOf(PodState& st, const ContainerInfo& info);
  void probe(PodState& st, const Json& pod, const Json& container, const ContainerInfo& running,
             bool& ready, bool& livenessFailed);
  Json buildStatus(PodState& st, const Json& pod, const PodRuntime& rt, bool sandboxReady);
  void reportStatus(PodState& st, const Json& pod, Json status);
  void recordEvent(PodState& st, const Json& pod, const std::string& fieldPath,
                   const std::string& type, const std::string& reason, const std::string& message);
  std::optional<Json> lookup(const std::string& resource, const std::string& ns,
                             const std::string& name);
  std::string logDirOf(const Json& pod) const;
  int64_t nowMillis() const;

  const EdgedOptions options_;
  ContainerRuntime& runtime_;
  edgecore::metamanager::CacheReader& cache_;
  edgecore::metamanager::Outbox& outbox_;
  Clock& clock_;
  VolumeManager volumes_;

  mutable Mutex mu_;
  std::condition_variable dispatchCv_;
  std::condition_variable workCv_;
  bool stopping_ EP_GUARDED_BY(mu_) = false;
  bool wake_ EP_GUARDED_BY(mu_) = false;
  std::shared_ptr<edgecore::metamanager::Subscription> podSub_;        // set in start()
  std::shared_ptr<edgecore::metamanager::Subscription> configMapSub_;  // set in start()
  std::shared_ptr<edgecore::metamanager::Subscription> secretSub_;     // set in start()
  std::shared_ptr<edgecore::metamanager::Subscription> modelSub_;      // set in start()
  std::map<std::string, Json> desired_ EP_GUARDED_BY(mu_);             // uid -> Pod
  uint64_t configGeneration_ EP_GUARDED_BY(mu_) = 1;
  std::set<std::string> inflight_ EP_GUARDED_BY(mu_);  // uids
  std::deque<Task> queue_ EP_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<PodState>> podStates_ EP_GUARDED_BY(mu_);  // the map
  struct Counters {
    std::atomic<uint64_t> syncs{0}, containersStarted{0}, sandboxesCreated{0}, podsKilled{0},
        statusReports{0}, eventsReported{0}, runtimeErrors{0};
  };
  Counters counters_;
  struct Terminator {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  static constexpr size_t kMaxTerminators = 32;
  std::vector<Terminator> terminators_ EP_GUARDED_BY(mu_);  // pods being stopped
  std::thread dispatcher_;
  std::vector<std::thread> workers_;
};

}  // namespace ep::edged
