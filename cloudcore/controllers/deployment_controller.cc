#include "cloudcore/controllers/deployment_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "common/api/object_util.h"

namespace ep::controllers {
namespace {

constexpr const char* kComponent = "deployment-controller";

int64_t revisionOf(const Json& obj) {
  std::string r = annotation(obj, kRevisionAnnotation);
  try {
    return r.empty() ? 0 : std::stoll(r);
  } catch (...) {
    return 0;
  }
}

// `tmpl` without the pod-template-hash label (the label map dropped when it empties).
Json withoutHashLabel(Json tmpl) {
  if (tmpl.is_object() && tmpl.contains("metadata") && tmpl["metadata"].is_object()) {
    Json& meta = tmpl["metadata"];
    if (meta.contains("labels") && meta["labels"].is_object()) {
      meta["labels"].erase(std::string(kPodTemplateHashLabel));
      if (meta["labels"].empty()) meta.erase("labels");
    }
  }
  return tmpl;
}

bool isPaused(const Json& d) {
  const Json* p = api::lookupPath(d, "spec.paused");
  return p != nullptr && p->is_boolean() && p->get<bool>();
}

}  // namespace

std::string podTemplateHash(const Json& podTemplate, int64_t collisionCount) {
  // FNV-1a, 32 bits, over the canonical dump (object keys sorted) and the collision count.
  uint32_t h = 2166136261u;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 16777619u;
    }
  };
  mix(withoutHashLabel(podTemplate).dump());
  if (collisionCount > 0) mix("/" + std::to_string(collisionCount));
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string digits = std::to_string(h);
  std::string out;
  for (char d : digits) out.push_back(kAlphabet[static_cast<unsigned char>(d) % 27]);
  return out;
}

int64_t resolveIntOrPercent(const Json& value, int64_t replicas, bool roundUp) {
  if (value.is_number_integer()) return std::max<int64_t>(0, value.get<int64_t>());
  if (!value.is_string()) return 0;
  std::string s = value.get<std::string>();
  if (s.empty() || s.back() != '%') return 0;
  try {
    int64_t pct = std::stoll(s.substr(0, s.size() - 1));
    double v = static_cast<double>(pct) * static_cast<double>(replicas) / 100.0;
    return std::max<int64_t>(0, static_cast<int64_t>(roundUp ? std::ceil(v) : std::floor(v)));
  } catch (...) {
    return 0;
  }
}

struct DeploymentController::Sync {
  Json d;  // the Deployment (updated in place when its metadata is written)
  std::string ns, name, uid;
  int64_t replicas = 0;
  int64_t minReady = 0;
  Json* newRs = nullptr;
  std::vector<Json*> oldRs;  // sorted by revision, oldest first
  std::vector<Json> owned;   // storage for the pointers above
  // Active pods per ReplicaSet uid.
  std::unordered_map<std::string, std::vector<const Json*>> pods;
  bool newRsCreated = false;
  bool scaled = false;

  int64_t specReplicas(const Json& rs) const { return api::intAt(rs, "spec.replicas", 0); }
  int64_t available(const Json& rs, int64_t now) const {
    auto it = pods.find(uidOf(rs));
    if (it == pods.end()) return 0;
    int64_t n = 0;
    for (const Json* p : it->second) n += isPodAvailable(*p, minReady, now);
    return std::min(n, specReplicas(rs));
  }
  size_t podCount(const Json& rs) const {
    auto it = pods.find(uidOf(rs));
    return it == pods.end() ? 0 : it->second.size();
  }
  std::vector<Json*> all() const {
    std::vector<Json*> v = oldRs;
    if (newRs) v.push_back(newRs);
    return v;
  }
};

DeploymentController::DeploymentController(registry::Registry& registry, Clock& clock,
                                           DeploymentControllerOptions options)
    : registry_(registry), clock_(clock), options_(options) {}

DeploymentController::~DeploymentController() {
  stop();
}

Status DeploymentController::start() {
  loop_ = std::make_unique<ControllerLoop>(
      "deployment controller", registry_,
      std::vector<const api::KindInfo*>{&deploymentKind(), &replicaSetKind(), &podKind()},
      [](const api::KindInfo& kind, const registry::WatchEvent& e) {
        return kind.kind == "Deployment" || (e.object && controllerRef(*e.object) != nullptr);
      },
      [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) spdlog::warn("deployment controller: {}", r.status().toString());
      },
      options_.resync, options_.minGap);
  return loop_->start();
}

void DeploymentController::stop() {
  if (loop_) loop_->stop();
  loop_.reset();
}

bool DeploymentController::scale(Sync& s, Json& rs, int64_t replicas) {
  int64_t from = s.specReplicas(rs);
  if (from == replicas) return true;
  Json next = rs;
  next["spec"]["replicas"] = replicas;
  auto r = registry_.update(replicaSetKind(), s.ns, nameOf(rs), next);
  if (!r.isOk()) {
    if (r.status().code() != Code::kConflict) {
      spdlog::warn("deployment controller: {}/{}: scaling {}: {}", s.ns, s.name, nameOf(rs),
                   r.status().toString());
    }
    return false;
  }
  rs = std::move(r.value());
  s.scaled = true;
  recordEvent(registry_, clock_, deploymentKind(), s.d, "Normal", "ScalingReplicaSet",
              std::string("Scaled ") + (replicas > from ? "up" : "down") + " replica set " +
                  nameOf(rs) + " from " + std::to_string(from) + " to " + std::to_string(replicas),
              kComponent);
  return true;
}

// Creates the new ReplicaSet with `replicas` when it does not exist yet. False: try next pass.
bool DeploymentController::ensureNewReplicaSet(Sync& s, int64_t replicas) {
  if (s.newRs) return true;
  int64_t collisions = api::intAt(s.d, "status.collisionCount", 0);
  const Json& tmpl = s.d["spec"]["template"];
  std::string hash = podTemplateHash(tmpl, collisions);
  int64_t maxOld = 0;
  for (Json* rs : s.oldRs) maxOld = std::max(maxOld, revisionOf(*rs));
  Json rsTmpl = tmpl;
  rsTmpl["metadata"]["labels"][std::string(kPodTemplateHashLabel)] = hash;
  Json selector = s.d["spec"]["selector"];
  selector["matchLabels"][std::string(kPodTemplateHashLabel)] = hash;
  Json annotations = {{std::string(kRevisionAnnotation), std::to_string(maxOld + 1)}};
  if (std::string cause = annotation(s.d, kChangeCauseAnnotation); !cause.empty()) {
    annotations[std::string(kChangeCauseAnnotation)] = cause;
  }
  Json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata",
              {{"name", s.name + "-" + hash},
               {"namespace", s.ns},
               {"labels", rsTmpl["metadata"]["labels"]},
               {"annotations", annotations},
               {"ownerReferences", Json::array({makeControllerRef(deploymentKind(), s.d)})}}},
             {"spec",
              {{"replicas", replicas},
               {"minReadySeconds", s.minReady},
               {"selector", selector},
               {"template", rsTmpl}}}};
  auto r = registry_.create(replicaSetKind(), s.ns, rs);
  if (!r.isOk()) {
    if (r.status().code() == Code::kAlreadyExists) {
      // NAME-HASH is taken by a ReplicaSet that is not ours (or has another template): bump
      // status.collisionCount so the next pass picks another name.
      Json next = s.d;
      next["status"]["collisionCount"] = collisions + 1;
      auto u =
          registry_.update(deploymentKind(), s.ns, s.name, next, registry::Subresource::kStatus);
      if (u.isOk()) s.d = std::move(u.value());
    } else {
      spdlog::warn("deployment controller: {}/{}: creating replica set: {}", s.ns, s.name,
                   r.status().toString());
    }
    return false;
  }
  s.owned.reserve(s.owned.size() + 1);  // pointers into owned stay valid: see reconcile
  s.owned.push_back(std::move(r.value()));
  s.newRs = &s.owned.back();
  s.newRsCreated = true;
  s.scaled = true;
  if (replicas > 0) {  // as Kubernetes: a ReplicaSet created at 0 is no scaling event
    recordEvent(
        registry_, clock_, deploymentKind(), s.d, "Normal", "ScalingReplicaSet",
        "Scaled up replica set " + nameOf(*s.newRs) + " from 0 to " + std::to_string(replicas),
        kComponent);
  }
  return true;
}

// One rolling-update step. False when it stopped early (a write failed).
bool DeploymentController::rolling(Sync& s) {
  const Json* ru = api::lookupPath(s.d, "spec.strategy.rollingUpdate");
  static const Json kQuarter = "25%";
  int64_t surge = resolveIntOrPercent(ru && ru->contains("maxSurge") ? (*ru)["maxSurge"] : kQuarter,
                                      s.replicas, true);
  int64_t unavailable = resolveIntOrPercent(
      ru && ru->contains("maxUnavailable") ? (*ru)["maxUnavailable"] : kQuarter, s.replicas, false);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  unavailable = std::min(unavailable, s.replicas);
  int64_t maxTotal = s.replicas + surge;
  int64_t now = clock_.nowMillis();
  auto total = [&] {
    int64_t n = 0;
    for (Json* rs : s.all()) n += s.specReplicas(*rs);
    return n;
  };

  // Scale up the new ReplicaSet within maxSurge.
  if (!s.newRs) {
    int64_t room = std::max<int64_t>(0, std::min(maxTotal - total(), s.replicas));
    if (!ensureNewReplicaSet(s, room)) return false;
  } else {
    int64_t cur = s.specReplicas(*s.newRs);
    if (cur > s.replicas) {
      if (!scale(s, *s.newRs, s.replicas)) return false;
    } else if (cur < s.replicas) {
      int64_t room = maxTotal - total();
      if (room > 0 && !scale(s, *s.newRs, cur + std::min(room, s.replicas - cur))) return false;
    }
  }

  // Scale down old ReplicaSets while keeping replicas-maxUnavailable available.
  int64_t oldTotal = 0;
  for (Json* rs : s.oldRs) oldTotal += s.specReplicas(*rs);
  if (oldTotal == 0) return true;
  int64_t minAvailable = s.replicas - unavailable;
  int64_t newUnavailable = s.specReplicas(*s.newRs) - s.available(*s.newRs, now);
  int64_t maxScaleDown = total() - minAvailable - newUnavailable;
  if (maxScaleDown <= 0) return true;
  // First the old ReplicaSets' unavailable pods (they add nothing to availability).
  for (Json* rs : s.oldRs) {
    if (maxScaleDown <= 0) break;
    int64_t spec = s.specReplicas(*rs);
    int64_t unhealthy = spec - s.available(*rs, now);
    if (unhealthy <= 0) continue;
    int64_t down = std::min(maxScaleDown, unhealthy);
    if (!scale(s, *rs, spec - down)) return false;
    maxScaleDown -= down;
  }
  // Then available ones, oldest first, as far as availability allows.
  int64_t availableNow = 0;
  for (Json* rs : s.all()) availableNow += s.available(*rs, now);
  int64_t budget = std::min(maxScaleDown, availableNow - minAvailable);
  for (Json* rs : s.oldRs) {
    if (budget <= 0) break;
    int64_t spec = s.specReplicas(*rs);
    if (spec == 0) continue;
    int64_t down = std::min(spec, budget);
    if (!scale(s, *rs, spec - down)) return false;
    budget -= down;
  }
  return true;
}

bool DeploymentController::recreate(Sync& s) {
  bool oldActive = false;
  for (Json* rs : s.oldRs) {
    if (s.specReplicas(*rs) > 0) {
      oldActive = true;
      if (!scale(s, *rs, 0)) return false;
    }
  }
  if (oldActive) return true;
  for (Json* rs : s.oldRs) {
    if (s.podCount(*rs) > 0) return true;  // wait until the old pods are gone
  }
  if (!s.newRs) return ensureNewReplicaSet(s, s.replicas);
  return scale(s, *s.newRs, s.replicas);
}

void DeploymentController::cleanup(Sync& s) {
  int64_t limit = api::intAt(s.d, "spec.revisionHistoryLimit", 10);
  std::vector<Json*> dead;
  for (Json* rs : s.oldRs) {
    if (s.specReplicas(*rs) == 0 && s.podCount(*rs) == 0 &&
        api::intAt(*rs, "status.replicas", 0) == 0) {
      dead.push_back(rs);
    }
  }
  if (static_cast<int64_t>(dead.size()) <= limit) return;
  size_t drop = dead.size() - static_cast<size_t>(limit);
  for (size_t i = 0; i < drop; ++i) {  // oldRs is sorted oldest revision first
    registry::DeleteOptions opts;
    opts.preconditionUid = uidOf(*dead[i]);
    auto r = registry_.remove(replicaSetKind(), s.ns, nameOf(*dead[i]), opts);
    if (!r.isOk() && r.status().code() != Code::kNotFound) {
      spdlog::warn("deployment controller: {}/{}: deleting old replica set {}: {}", s.ns, s.name,
                   nameOf(*dead[i]), r.status().toString());
    }
  }
}

void DeploymentController::writeStatus(Sync& s, bool progressed) {
  int64_t now = clock_.nowMillis();
  int64_t total = 0, updated = 0, ready = 0, available = 0;
  for (Json* rs : s.all()) {
    auto it = s.pods.find(uidOf(*rs));
    if (it == s.pods.end()) continue;
    for (const Json* p : it->second) {
      ++total;
      if (rs == s.newRs) ++updated;
      ready += isPodReady(*p);
      available += isPodAvailable(*p, s.minReady, now);
    }
  }
  Json status = s.d.value("status", Json::object());
  if (!status.is_object()) status = Json::object();
  Json next = status;
  next["observedGeneration"] = api::intAt(s.d, "metadata.generation", 1);
  next["replicas"] = total;
  next["updatedReplicas"] = updated;
  next["readyReplicas"] = ready;
  next["availableReplicas"] = available;
  next["unavailableReplicas"] = std::max<int64_t>(0, s.replicas - available);
  for (const char* k : {"replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                        "unavailableReplicas"}) {
    if (next[k] != status.value(k, Json(0))) progressed = true;
  }

  bool isRolling = api::stringAt(s.d, "spec.strategy.type", "RollingUpdate") == "RollingUpdate";
  int64_t maxUnavailable = 0;
  if (isRolling && s.replicas > 0) {
    const Json* ru = api::lookupPath(s.d, "spec.strategy.rollingUpdate");
    static const Json kQuarter = "25%";
    int64_t surge = resolveIntOrPercent(
        ru && ru->contains("maxSurge") ? (*ru)["maxSurge"] : kQuarter, s.replicas, true);
    maxUnavailable = resolveIntOrPercent(
        ru && ru->contains("maxUnavailable") ? (*ru)["maxUnavailable"] : kQuarter, s.replicas,
        false);
    if (surge == 0 && maxUnavailable == 0) maxUnavailable = 1;
    maxUnavailable = std::min(maxUnavailable, s.replicas);
  }
  Json obj = s.d;
  obj["status"] = next;
  if (available >= s.replicas - maxUnavailable) {
    setCondition(obj, "Available", "True", "MinimumReplicasAvailable",
                 "Deployment has minimum availability.", now, true);
  } else {
    setCondition(obj, "Available", "False", "MinimumReplicasUnavailable",
                 "Deployment does not have minimum availability.", now, true);
  }
  std::string rsName = s.newRs ? nameOf(*s.newRs) : "";
  bool complete = updated == s.replicas && total == s.replicas && available == s.replicas;
  const Json* prog = findCondition(s.d, "Progressing");
  if (isPaused(s.d)) {
    setCondition(obj, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now,
                 true);
  } else if (complete && s.newRs) {
    setCondition(obj, "Progressing", "True", "NewReplicaSetAvailable",
                 "ReplicaSet \"" + rsName + "\" has successfully progressed.", now, true);
  } else if (s.newRsCreated) {
    setCondition(obj, "Progressing", "True", "NewReplicaSetCreated",
                 "Created new replica set \"" + rsName + "\"", now, true);
  } else if (progressed || prog == nullptr || str(*prog, "reason") == "NewReplicaSetAvailable" ||
             str(*prog, "reason") == "DeploymentPaused") {
    bool changed = setCondition(obj, "Progressing", "True", "ReplicaSetUpdated",
                                "ReplicaSet \"" + rsName + "\" is progressing.", now, true);
    if (!changed && progressed) {
      for (auto& c : obj["status"]["conditions"]) {
        if (str(c, "type") == "Progressing") c["lastUpdateTime"] = formatRfc3339(now);
      }
    }
  } else if (str(*prog, "status") == "True") {
    // No progress since lastUpdateTime: past progressDeadlineSeconds the rollout has failed.
    int64_t deadline = api::intAt(s.d, "spec.progressDeadlineSeconds", 600);
    int64_t since = parseRfc3339(str(*prog, "lastUpdateTime"));
    if (since >= 0 && now - since > deadline * 1000) {
      setCondition(obj, "Progressing", "False", "ProgressDeadlineExceeded",
                   "ReplicaSet \"" + rsName + "\" has timed out progressing.", now, true);
    }
  }
  if (obj["status"] == status) return;
  auto r = registry_.update(deploymentKind(), s.ns, s.name, obj, registry::Subresource::kStatus);
  if (!r.isOk() && r.status().code() != Code::kConflict && r.status().code() != Code::kNotFound) {
    spdlog::warn("deployment controller: {}/{}: status: {}", s.ns, s.name, r.status().toString());
  }
}

void DeploymentController::syncDeployment(Sync& s) {
  const Json& tmpl = s.d["spec"]["template"];
  for (Json& rs : s.owned) {
    const Json* t = api::lookupPath(rs, "spec.template");
    if (s.newRs == nullptr && t != nullptr && withoutHashLabel(*t) == tmpl) {
      s.newRs = &rs;
    } else {
      s.oldRs.push_back(&rs);
    }
  }
  std::stable_sort(s.oldRs.begin(), s.oldRs.end(),
                   [](Json* a, Json* b) { return revisionOf(*a) < revisionOf(*b); });
  int64_t maxOld = 0;
  for (Json* rs : s.oldRs) maxOld = std::max(maxOld, revisionOf(*rs));

  // The new ReplicaSet carries the newest revision (a rollback re-uses an old one) and follows
  // the Deployment's change-cause.
  if (s.newRs) {
    Json next = *s.newRs;
    if (revisionOf(next) <= maxOld) {
      next["metadata"]["annotations"][std::string(kRevisionAnnotation)] =
          std::to_string(maxOld + 1);
    }
    std::string cause = annotation(s.d, kChangeCauseAnnotation);
    if (!cause.empty())
      next["metadata"]["annotations"][std::string(kChangeCauseAnnotation)] = cause;
    if (next != *s.newRs) {
      auto r = registry_.update(replicaSetKind(), s.ns, nameOf(next), next);
      if (!r.isOk()) return;  // next pass
      *s.newRs = std::move(r.value());
    }
  }

  bool paused = isPaused(s.d);
  if (paused) {
    // Scaling only: a Deployment with one active ReplicaSet follows spec.replicas.
    std::vector<Json*> active;
    for (Json* rs : s.all()) {
      if (s.specReplicas(*rs) > 0) active.push_back(rs);
    }
    if (active.size() == 1) scale(s, *active[0], s.replicas);
    if (active.empty() && s.newRs) scale(s, *s.newRs, s.replicas);
  } else if (api::stringAt(s.d, "spec.strategy.type", "RollingUpdate") == "Recreate") {
    recreate(s);
  } else {
    rolling(s);
  }

  if (s.newRs) {
    std::string rev = annotation(*s.newRs, kRevisionAnnotation);
    if (annotation(s.d, kRevisionAnnotation) != rev) {
      Json next = s.d;
      next["metadata"]["annotations"][std::string(kRevisionAnnotation)] = rev;
      auto r = registry_.update(deploymentKind(), s.ns, s.name, next);
      if (r.isOk()) s.d = std::move(r.value());
    }
  }
  if (!paused) cleanup(s);
  writeStatus(s, s.scaled);
}

Result<int> DeploymentController::reconcileOnce() {
  auto deployments = registry_.list(deploymentKind(), "", {});
  if (!deployments.isOk()) return deployments.status();
  auto sets = registry_.list(replicaSetKind(), "", {});
  if (!sets.isOk()) return sets.status();
  auto pods = registry_.list(podKind(), "", {});
  if (!pods.isOk()) return pods.status();

  std::unordered_map<std::string, const Json*> byUid;
  for (const auto& d : deployments->items) byUid[uidOf(d)] = &d;
  std::unordered_map<std::string, std::vector<const Json*>> rsByOwner;
  std::unordered_map<std::string, std::vector<const Json*>> allRsByOwner;  // terminating too
  int collected = 0;
  for (const auto& rs : sets->items) {
    const Json* ref = controllerRef(rs);
    if (ref != nullptr && str(*ref, "kind") == "Deployment") {
      allRsByOwner[str(*ref, "uid")].push_back(&rs);
    }
    if (ref == nullptr || str(*ref, "kind") != "Deployment" || isTerminating(rs)) continue;
    if (byUid.count(str(*ref, "uid"))) {
      rsByOwner[str(*ref, "uid")].push_back(&rs);
    } else if (collectIfOrphaned(registry_, deploymentKind(), replicaSetKind(), rs)) {
      ++collected;
    }
  }
  std::unordered_map<std::string, std::vector<const Json*>> podsByRs;
  for (const auto& p : pods->items) {
    if (!isActive(p)) continue;
    const Json* ref = controllerRef(p);
    if (ref != nullptr && str(*ref, "kind") == "ReplicaSet")
      podsByRs[str(*ref, "uid")].push_back(&p);
  }

  for (const auto& d : deployments->items) {
    if (isTerminating(d)) {
      static const std::vector<const Json*> kNone;
      auto all = allRsByOwner.find(uidOf(d));
      advanceForegroundDeletion(registry_, deploymentKind(), d, replicaSetKind(),
                                all == allRsByOwner.end() ? kNone : all->second, true);
      continue;
    }
    Sync s;
    s.d = d;
    s.ns = namespaceOf(d);
    s.name = nameOf(d);
    s.uid = uidOf(d);
    s.replicas = api::intAt(d, "spec.replicas", 1);
    s.minReady = api::intAt(d, "spec.minReadySeconds", 0);
    auto owned = rsByOwner.find(s.uid);
    size_t n = owned == rsByOwner.end() ? 0 : owned->second.size();
    s.owned.reserve(n + 1);  // room for a new ReplicaSet: pointers into owned stay valid
    if (n) {
      for (const Json* rs : owned->second) {
        s.owned.push_back(*rs);
        if (auto it = podsByRs.find(uidOf(*rs)); it != podsByRs.end()) {
          s.pods[uidOf(*rs)] = it->second;
        }
      }
    }
    syncDeployment(s);
  }
  return collected;
}

}  // namespace ep::controllers
