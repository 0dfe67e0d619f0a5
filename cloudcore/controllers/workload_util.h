#pragma once

// Helpers shared by the workload controllers (scheduler, ReplicaSet, Deployment, eviction):
// reading pod and node state, owner references, conditions and Events. Pure functions over
// JSON unless stated; thread-safe; never throw.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/clock.h"
#include "common/status.h"

namespace ep::controllers {

using Json = nlohmann::json;

inline constexpr std::string_view kPodTemplateHashLabel = "pod-template-hash";
inline constexpr std::string_view kRevisionAnnotation = "deployment.kubernetes.io/revision";
inline constexpr std::string_view kChangeCauseAnnotation = "kubernetes.io/change-cause";

const api::KindInfo& podKind();
const api::KindInfo& nodeKind();
const api::KindInfo& leaseKind();  // coordination.k8s.io/v1
const api::KindInfo& eventKind();
const api::KindInfo& replicaSetKind();
const api::KindInfo& deploymentKind();

// obj[key] when it is a string, else "".
std::string str(const Json& obj, std::string_view key);
std::string nameOf(const Json& obj);
std::string namespaceOf(const Json& obj);
std::string uidOf(const Json& obj);
bool isTerminating(const Json& obj);  // metadata.deletionTimestamp set

// Pod phase Succeeded or Failed.
bool isTerminal(const Json& pod);
// A pod that counts toward its controller's replicas: not terminating and not terminal.
bool isActive(const Json& pod);
// The condition `type` of obj.status.conditions, or nullptr.
const Json* findCondition(const Json& obj, std::string_view type);
// Ready=True.
bool isPodReady(const Json& pod);
// Ready=True for at least minReadySeconds at `nowMillis` (the Ready condition's
// lastTransitionTime; without one a ready pod counts as available).
bool isPodAvailable(const Json& pod, int64_t minReadySeconds, int64_t nowMillis);

// Sets (or adds) condition `type` in obj.status.conditions. lastTransitionTime changes only
// when status changes. Returns true when anything changed.
bool setCondition(Json& obj, const std::string& type, const std::string& status,
                  const std::string& reason, const std::string& message, int64_t nowMillis,
                  bool withUpdateTime = false);

// The metadata.ownerReferences entry with controller=true, or nullptr.
const Json* controllerRef(const Json& obj);
// An ownerReference naming `owner` (apiVersion/kind from `kind`) as controller.
Json makeControllerRef(const api::KindInfo& kind, const Json& owner);
// True when obj's controller reference has uid `uid`.
bool isControlledBy(const Json& obj, const std::string& uid);

// Records a v1 Event about `involved` (kind `kind`) in its namespace ("default" for
// cluster-scoped objects). Best effort: failures are logged, never returned.
void recordEvent(registry::Registry& registry, Clock& clock, const api::KindInfo& kind,
                 const Json& involved, const std::string& type, const std::string& reason,
                 const std::string& message, const std::string& component);

// Cascading deletion helper: deletes `dependent` when its controller reference names an owner
// of `ownerKind` that no longer exists (NotFound or a different uid; checked with a live GET so
// a stale list never deletes). Returns true when it deleted.
bool collectIfOrphaned(registry::Registry& registry, const api::KindInfo& ownerKind,
                       const api::KindInfo& dependentKind, const Json& dependent);

// Foreground deletion (propagationPolicy=Foreground): when `owner` is terminating with the
// "foregroundDeletion" finalizer, deletes those of `dependents` (the objects it controls,
// terminating ones included) not yet terminating — in the foreground too when
// `dependentsForeground` (they own objects themselves) — and once none remain removes the
// finalizer, which removes the owner. Returns false when `owner` is not in foreground deletion.
bool advanceForegroundDeletion(registry::Registry& registry, const api::KindInfo& ownerKind,
                               const Json& owner, const api::KindInfo& dependentKind,
                               const std::vector<const Json*>& dependents,
                               bool dependentsForeground);

// The pod's spec.nodeName.
std::string nodeNameOf(const Json& pod);

// metadata.annotations[key] or "".
std::string annotation(const Json& obj, std::string_view key);

}  // namespace ep::controllers
