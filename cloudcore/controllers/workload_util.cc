#include "cloudcore/controllers/workload_util.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>

#include "common/api/object_util.h"

namespace ep::controllers {

const api::KindInfo& podKind() {
  return *api::findByApiVersionKind("v1", "Pod");
}
const api::KindInfo& nodeKind() {
  return *api::findByApiVersionKind("v1", "Node");
}
const api::KindInfo& leaseKind() {
  return *api::findByApiVersionKind("coordination.k8s.io/v1", "Lease");
}
const api::KindInfo& eventKind() {
  return *api::findByApiVersionKind("v1", "Event");
}
const api::KindInfo& replicaSetKind() {
  return *api::findByApiVersionKind("apps/v1", "ReplicaSet");
}
const api::KindInfo& deploymentKind() {
  return *api::findByApiVersionKind("apps/v1", "Deployment");
}

std::string str(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string nameOf(const Json& obj) {
  return api::stringAt(obj, "metadata.name");
}
std::string namespaceOf(const Json& obj) {
  return api::stringAt(obj, "metadata.namespace");
}
std::string uidOf(const Json& obj) {
  return api::stringAt(obj, "metadata.uid");
}
bool isTerminating(const Json& obj) {
  return !api::stringAt(obj, "metadata.deletionTimestamp").empty();
}
std::string nodeNameOf(const Json& pod) {
  return api::stringAt(pod, "spec.nodeName");
}

bool isTerminal(const Json& pod) {
  std::string phase = api::stringAt(pod, "status.phase");
  return phase == "Succeeded" || phase == "Failed";
}

bool isActive(const Json& pod) {
  return !isTerminating(pod) && !isTerminal(pod);
}

const Json* findCondition(const Json& obj, std::string_view type) {
  const Json* conditions = api::lookupPath(obj, "status.conditions");
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const auto& c : *conditions) {
    if (str(c, "type") == type) return &c;
  }
  return nullptr;
}

bool isPodReady(const Json& pod) {
  const Json* c = findCondition(pod, "Ready");
  return c != nullptr && str(*c, "status") == "True";
}

bool isPodAvailable(const Json& pod, int64_t minReadySeconds, int64_t nowMillis) {
  const Json* c = findCondition(pod, "Ready");
  if (c == nullptr || str(*c, "status") != "True") return false;
  if (minReadySeconds <= 0) return true;
  int64_t since = parseRfc3339(str(*c, "lastTransitionTime"));
  if (since < 0) return true;
  return nowMillis - since >= minReadySeconds * 1000;
}

bool setCondition(Json& obj, const std::string& type, const std::string& status,
                  const std::string& reason, const std::string& message, int64_t nowMillis,
                  bool withUpdateTime) {
  if (!obj["status"].is_object()) obj["status"] = Json::object();
  Json& conditions = obj["status"]["conditions"];
  if (!conditions.is_array()) conditions = Json::array();
  std::string now = formatRfc3339(nowMillis);
  for (auto& c : conditions) {
    if (str(c, "type") != type) continue;
    if (str(c, "status") == status && str(c, "reason") == reason && str(c, "message") == message) {
      return false;
    }
    if (str(c, "status") != status) c["lastTransitionTime"] = now;
    c["status"] = status;
    c["reason"] = reason;
    c["message"] = message;
    if (withUpdateTime) c["lastUpdateTime"] = now;
    return true;
  }
  Json c = {{"type", type},
            {"status", status},
            {"reason", reason},
            {"message", message},
            {"lastTransitionTime", now}};
  if (withUpdateTime) c["lastUpdateTime"] = now;
  conditions.push_back(std::move(c));
  return true;
}

const Json* controllerRef(const Json& obj) {
  const Json* refs = api::lookupPath(obj, "metadata.ownerReferences");
  if (refs == nullptr || !refs->is_array()) return nullptr;
  for (const auto& r : *refs) {
    if (!r.is_object()) continue;
    auto c = r.find("controller");
    if (c != r.end() && c->is_boolean() && c->get<bool>()) return &r;
  }
  return nullptr;
}

Json makeControllerRef(const api::KindInfo& kind, const Json& owner) {
  return Json{{"apiVersion", kind.apiVersion()},
              {"kind", kind.kind},
              {"name", nameOf(owner)},
              {"uid", uidOf(owner)},
              {"controller", true},
              {"blockOwnerDeletion", true}};
}

bool isControlledBy(const Json& obj, const std::string& uid) {
  const Json* ref = controllerRef(obj);
  return ref != nullptr && !uid.empty() && str(*ref, "uid") == uid;
}

std::string annotation(const Json& obj, std::string_view key) {
  const Json* a = api::lookupPath(obj, "metadata.annotations");
  return a != nullptr ? str(*a, key) : std::string();
}

void recordEvent(registry::Registry& registry, Clock& clock, const api::KindInfo& kind,
                 const Json& involved, const std::string& type, const std::string& reason,
                 const std::string& message, const std::string& component) {
  static std::atomic<uint64_t> counter{0};
  std::string ns = kind.namespaced ? namespaceOf(involved) : "default";
  int64_t now = clock.nowMillis();
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, ".%llx%04llx", static_cast<unsigned long long>(now),
                static_cast<unsigned long long>(counter.fetch_add(1) & 0xffff));
  std::string ts = formatRfc3339(now);
  Json ref = {{"kind", kind.kind},
              {"apiVersion", kind.apiVersion()},
              {"name", nameOf(involved)},
              {"uid", uidOf(involved)},
              {"resourceVersion", api::stringAt(involved, "metadata.resourceVersion")}};
  if (kind.namespaced) ref["namespace"] = ns;
  Json event = {{"metadata", {{"name", nameOf(involved) + suffix}, {"namespace", ns}}},
                {"involvedObject", ref},
                {"reason", reason},
                {"message", message},
                {"type", type},
                {"source", {{"component", component}}},
                {"reportingComponent", component},
                {"firstTimestamp", ts},
                {"lastTimestamp", ts},
                {"count", 1}};
  auto r = registry.create(eventKind(), ns, std::move(event));
  if (!r.isOk()) {
    spdlog::debug("{}: recording event {} for {}: {}", component, reason, nameOf(involved),
                  r.status().toString());
  }
}

bool collectIfOrphaned(registry::Registry& registry, const api::KindInfo& ownerKind,
                       const api::KindInfo& dependentKind, const Json& dependent) {
  const Json* ref = controllerRef(dependent);
  if (ref == nullptr || str(*ref, "kind") != ownerKind.kind ||
      str(*ref, "apiVersion") != ownerKind.apiVersion()) {
    return false;
  }
  std::string ns = namespaceOf(dependent);
  auto owner = registry.get(ownerKind, ns, str(*ref, "name"));
  if (owner.isOk() && uidOf(*owner) == str(*ref, "uid")) return false;
  if (!owner.isOk() && owner.status().code() != Code::kNotFound) return false;
  registry::DeleteOptions opts;
  opts.preconditionUid = uidOf(dependent);
  auto r = registry.remove(dependentKind, ns, nameOf(dependent), opts);
  if (r.isOk()) {
    spdlog::info("garbage collector: deleted {} {}/{} (owner {} {} is gone)", dependentKind.kind,
                 ns, nameOf(dependent), ownerKind.kind, str(*ref, "name"));
    return true;
  }
  return false;
}

bool advanceForegroundDeletion(registry::Registry& registry, const api::KindInfo& ownerKind,
                               const Json& owner, const api::KindInfo& dependentKind,
                               const std::vector<const Json*>& dependents,
                               bool dependentsForeground) {
  static const Json kForeground = "foregroundDeletion";
  const Json* finalizers = api::lookupPath(owner, "metadata.finalizers");
  if (!isTerminating(owner) || finalizers == nullptr || !finalizers->is_array() ||
      std::find(finalizers->begin(), finalizers->end(), kForeground) == finalizers->end()) {
    return false;
  }
  const std::string ns = namespaceOf(owner);
  for (const Json* d : dependents) {
    if (isTerminating(*d)) continue;
    registry::DeleteOptions opts;
    opts.preconditionUid = uidOf(*d);
    if (dependentsForeground) opts.propagationPolicy = "Foreground";
    auto r = registry.remove(dependentKind, ns, nameOf(*d), opts);
    if (!r.isOk() && r.status().code() != Code::kNotFound) {
      spdlog::warn("garbage collector: deleting {} {}/{} for {}: {}", dependentKind.kind, ns,
                   nameOf(*d), nameOf(owner), r.status().toString());
    }
  }
  if (!dependents.empty()) return true;  // the last one's removal brings the owner back here
  Json next = owner;
  Json& f = next["metadata"]["finalizers"];
  f.erase(std::remove(f.begin(), f.end(), kForeground), f.end());
  if (f.empty()) next["metadata"].erase("finalizers");
  auto r = registry.update(ownerKind, ns, nameOf(owner), next);
  if (r.isOk()) {
    spdlog::info("garbage collector: {} {}/{} deleted in the foreground", ownerKind.kind, ns,
                 nameOf(owner));
  } else if (r.status().code() != Code::kConflict && r.status().code() != Code::kNotFound) {
    spdlog::warn("garbage collector: finishing {} {}/{}: {}", ownerKind.kind, ns, nameOf(owner),
                 r.status().toString());
  }
  return true;
}

}  // namespace ep::controllers
