#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/controllers/workload_util.h"
#include "cloudcore/registry/registry.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

struct ReplicaSetControllerOptions {
  std::chrono::milliseconds resync{std::chrono::seconds(5)};
  std::chrono::milliseconds minGap{std::chrono::milliseconds(100)};
  // Pods created or deleted for one ReplicaSet in one pass, at most (the rest next pass).
  int burst = 500;
};

struct ReplicaSetPassResult {
  int created = 0;
  int deleted = 0;    // surplus and terminal pods
  int collected = 0;  // pods whose ReplicaSet is gone
};

// Keeps each ReplicaSet's spec.replicas pods running (docs/workloads.md, "ReplicaSets").
//
// Owned pods are those whose controller ownerReference carries the ReplicaSet's uid (pods are not
// adopted). Active pods (not terminating, not Succeeded/Failed) count; terminal ones are deleted
// and replaced. Missing pods are created from spec.template with generateName "RSNAME-" and the
// controller ownerReference; surplus pods are deleted preferring unscheduled, then pending, then
// not-ready, then the newest. status (replicas, fullyLabeledReplicas, readyReplicas,
// availableReplicas, observedGeneration) is written only when it changes. Pods whose controlling
// ReplicaSet no longer exists (by uid) are deleted (cascading deletion). ReplicaSets being deleted
// (deletionTimestamp) are left alone.
//
// Threading: a ControllerLoop thread runs reconcileOnce() on ReplicaSet and pod changes and every
// resync; reconcileOnce() is callable from tests (with the loop stopped). start()/stop() from one
// owner thread.
class ReplicaSetController {
 public:
  ReplicaSetController(registry::Registry& registry, Clock& clock,
                       ReplicaSetControllerOptions options = {});
  ~ReplicaSetController();
  ReplicaSetController(const ReplicaSetController&) = delete;
  ReplicaSetController& operator=(const ReplicaSetController&) = delete;

  Status start();
  void stop();

  Result<ReplicaSetPassResult> reconcileOnce();

 private:
  // Reconciles one ReplicaSet given its owned pods.
  void syncReplicaSet(const Json& rs, const std::vector<const Json*>& pods,
                      ReplicaSetPassResult& result);
  Status createPod(const Json& rs);
  bool deletePod(const Json& pod);

  registry::Registry& registry_;
  Clock& clock_;
  const ReplicaSetControllerOptions options_;
  std::unique_ptr<ControllerLoop> loop_;
};

}  // namespace ep::controllers
