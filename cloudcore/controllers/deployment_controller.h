#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/controllers/workload_util.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct DeploymentControllerOptions {
  std::chrono::milliseconds resync{std::chrono::seconds(5)};
  std::chrono::milliseconds minGap{std::chrono::milliseconds(100)};
};

// Rolls Deployments out through ReplicaSets (docs/workloads.md, "Deployments").
//
// For each Deployment: the ReplicaSet whose template (minus the pod-template-hash label) equals
// spec.template is the new one, named NAME-HASH (HASH: podTemplateHash(template, collisionCount),
// also the pod-template-hash label of its selector, template and pods); the other owned
// ReplicaSets are old. Ownership is the controller ownerReference's uid (no adoption). The new
// ReplicaSet gets revision (deployment.kubernetes.io/revision) max(old)+1, which the Deployment
// mirrors; rolling back to an old template re-uses that ReplicaSet with a new revision.
//   RollingUpdate: the new ReplicaSet grows while the sum of spec.replicas stays within
//   replicas+maxSurge; old ones shrink (unavailable pods first, then oldest ReplicaSet first) while
//   available pods stay at least replicas-maxUnavailable. Availability is counted from pods
//   (Ready=True for minReadySeconds), capped at each ReplicaSet's spec.replicas.
//   Recreate: old ReplicaSets go to 0, the new one is created/scaled only once their pods are
//   gone.
// spec.paused: no rollout; a Deployment with a single active ReplicaSet is still scaled. Old
// ReplicaSets at 0 replicas without pods beyond revisionHistoryLimit are deleted, oldest revision
// first. ReplicaSets whose Deployment no longer exists (by uid) are deleted (cascading deletion).
// status (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
// unavailableReplicas, conditions Available and Progressing incl. ProgressDeadlineExceeded) is
// written only when it changes.
//
// Threading: a ControllerLoop thread runs reconcileOnce() on Deployment, ReplicaSet and pod
// changes and every resync; reconcileOnce() is callable from tests (with the loop stopped).
// start()/stop() from one owner thread.
class DeploymentController {
 public:
  DeploymentController(registry::Registry& registry, Clock& clock,
                       DeploymentControllerOptions options = {});
  ~DeploymentController();
  DeploymentController(const DeploymentController&) = delete;
  DeploymentController& operator=(const DeploymentController&) = delete;

  Status start();
  void stop();

  // One pass over every Deployment. Returns how many ReplicaSets were garbage-collected.
  Result<int> reconcileOnce();

 private:
  struct Sync;  // one Deployment's state during a pass (deployment_controller.cc)
  void syncDeployment(Sync& s);
  bool rolling(Sync& s);
  bool recreate(Sync& s);
  bool ensureNewReplicaSet(Sync& s, int64_t replicas);
  bool scale(Sync& s, Json& rs, int64_t replicas);
  void cleanup(Sync& s);
  void writeStatus(Sync& s, bool progressed);

  registry::Registry& registry_;
  Clock& clock_;
  const DeploymentControllerOptions options_;
  std::unique_ptr<ControllerLoop> loop_;
};

// The pod-template-hash of `podTemplate` (a Deployment's spec.template) and collisionCount: a
// stable hash of the template's canonical JSON, spelled with [bcdfghjklmnpqrstvwxz2456789].
std::string podTemplateHash(const Json& podTemplate, int64_t collisionCount = 0);

// maxSurge / maxUnavailable resolved against `replicas` as Kubernetes does: ints as is, percents
// of replicas rounded up (surge) / down (unavailable); both 0 makes unavailable 1. Invalid values
// resolve to 0.
int64_t resolveIntOrPercent(const Json& value, int64_t replicas, bool roundUp);

}  // namespace ep::controllers
