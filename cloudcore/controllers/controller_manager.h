#pragma once

#include <chrono>
#include <memory>

#include "cloudcore/controllers/release_imports.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct ControllerManagerOptions {
  std::chrono::seconds nodeGracePeriod{40};
  std::chrono::seconds podEvictionTimeout{0};
  std::chrono::seconds eventTTL{3600};
  // EdgecoreReleases from images for NodeUpgradeJobs with spec.image (not owned; may be null).
  ReleaseImports* releaseImports = nullptr;
};

// The controllers that act on the whole cluster and so run on one replica only, the leader
// (cloudcore/leaderelection): node lifecycle, scheduler, ReplicaSet, Deployment, pod eviction,
// ServiceAccount, endpoints, NodeUpgradeJob, the service allocation repair and the event GC.
// start() builds a fresh set and starts it in that order; stop() stops it in reverse and destroys
// it, so a replica that loses and regains leadership starts from nothing remembered.
//
// Thread-compatible: start()/stop() from one thread at a time (the leader elector's).
class ControllerManager {
 public:
  ControllerManager(registry::Registry& registry, Clock& clock, ControllerManagerOptions options);
  ~ControllerManager();  // stop()
  ControllerManager(const ControllerManager&) = delete;
  ControllerManager& operator=(const ControllerManager&) = delete;

  // Starts every controller; on an error, those already started are stopped again and the error
  // (naming the controller) is returned. Calling it while running is a no-op.
  Status start();
  // Stops them, newest first. Idempotent.
  void stop();
  bool running() const { return running_ != nullptr; }

 private:
  struct Running;
  registry::Registry& registry_;
  Clock& clock_;
  const ControllerManagerOptions options_;
  std::unique_ptr<Running> running_;
};

}  // namespace ep::controllers
