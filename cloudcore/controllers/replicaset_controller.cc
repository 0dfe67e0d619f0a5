#include "cloudcore/controllers/replicaset_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "common/api/label_selector.h"
#include "common/api/object_util.h"

namespace ep::controllers {
namespace {

constexpr const char* kComponent = "replicaset-controller";

// Deletion preference: lower ranks go first.
struct DeletionRank {
  int scheduled;       // 0: unscheduled
  int phase;           // 0: Pending, 1: Unknown, 2: Running
  int ready;           // 0: not ready
  int64_t negCreated;  // newer first
  std::string name;
  bool operator<(const DeletionRank& o) const {
    return std::tie(scheduled, phase, ready, negCreated, name) <
           std::tie(o.scheduled, o.phase, o.ready, o.negCreated, o.name);
  }
};

DeletionRank rankOf(const Json& pod) {
  std::string phase = api::stringAt(pod, "status.phase");
  return DeletionRank{
      nodeNameOf(pod).empty() ? 0 : 1,
      phase == "Pending"   ? 0
      : phase == "Running" ? 2
                           : 1,
      isPodReady(pod) ? 1 : 0,
      -parseRfc3339(api::stringAt(pod, "metadata.creationTimestamp")),
      nameOf(pod),
  };
}

}  // namespace

ReplicaSetController::ReplicaSetController(registry::Registry& registry, Clock& clock,
                                           ReplicaSetControllerOptions options)
    : registry_(registry), clock_(clock), options_(options) {}

ReplicaSetController::~ReplicaSetController() {
  stop();
}

Status ReplicaSetController::start() {
  loop_ = std::make_unique<ControllerLoop>(
      "replicaset controller", registry_,
      std::vector<const api::KindInfo*>{&replicaSetKind(), &podKind()},
      [](const api::KindInfo& kind, const registry::WatchEvent& e) {
        // Pods without a controller are none of our business.
        return kind.kind != "Pod" || (e.object && controllerRef(*e.object) != nullptr);
      },
      [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) spdlog::warn("replicaset controller: {}", r.status().toString());
      },
      options_.resync, options_.minGap);
  return loop_->start();
}

void ReplicaSetController::stop() {
  if (loop_) loop_->stop();
  loop_.reset();
}

Status ReplicaSetController::createPod(const Json& rs) {
  const Json* tmpl = api::lookupPath(rs, "spec.template");
  if (tmpl == nullptr || !tmpl->is_object()) return invalidError("no spec.template");
  Json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
  Json meta = Json::object();
  if (const Json* tm = api::lookupPath(*tmpl, "metadata"); tm != nullptr && tm->is_object()) {
    for (const char* f : {"labels", "annotations", "finalizers"}) {
      if (tm->contains(f)) meta[f] = (*tm)[f];
    }
  }
  meta["generateName"] = nameOf(rs) + "-";
  meta["namespace"] = namespaceOf(rs);
  meta["ownerReferences"] = Json::array({makeControllerRef(replicaSetKind(), rs)});
  pod["metadata"] = std::move(meta);
  pod["spec"] = tmpl->value("spec", Json::object());
  auto r = registry_.create(podKind(), namespaceOf(rs), std::move(pod));
  if (!r.isOk()) return r.status();
  recordEvent(registry_, clock_, replicaSetKind(), rs, "Normal", "SuccessfulCreate",
              "Created pod: " + nameOf(*r), kComponent);
  return Status::ok();
}

bool ReplicaSetController::deletePod(const Json& pod) {
  registry::DeleteOptions opts;
  opts.preconditionUid = uidOf(pod);
  auto r = registry_.remove(podKind(), namespaceOf(pod), nameOf(pod), opts);
  if (!r.isOk() && r.status().code() != Code::kNotFound) {
    spdlog::warn("replicaset controller: deleting pod {}/{}: {}", namespaceOf(pod), nameOf(pod),
                 r.status().toString());
    return false;
  }
  return r.isOk();
}

void ReplicaSetController::syncReplicaSet(const Json& rs, const std::vector<const Json*>& pods,
                                          ReplicaSetPassResult& result) {
  std::string ns = namespaceOf(rs), name = nameOf(rs);
  int64_t want = api::intAt(rs, "spec.replicas", 1);
  int64_t minReady = api::intAt(rs, "spec.minReadySeconds", 0);
  std::vector<const Json*> active;
  for (const Json* p : pods) {
    if (isTerminating(*p)) continue;
    if (isTerminal(*p)) {
      // Replaced below; the terminal pod goes so it does not pile up.
      if (deletePod(*p)) ++result.deleted;
      continue;
    }
    active.push_back(p);
  }
  int64_t have = static_cast<int64_t>(active.size());
  std::vector<const Json*> kept = active;
  if (have < want) {
    int64_t n = std::min<int64_t>(want - have, options_.burst);
    for (int64_t i = 0; i < n; ++i) {
      auto s = createPod(rs);
      if (!s.isOk()) {
        spdlog::warn("replicaset controller: {}/{}: creating pod: {}", ns, name, s.toString());
        recordEvent(registry_, clock_, replicaSetKind(), rs, "Warning", "FailedCreate",
                    "Error creating: " + s.message(), kComponent);
        break;
      }
      ++result.created;
    }
  } else if (have > want) {
    std::vector<std::pair<DeletionRank, const Json*>> ranked;
    for (const Json* p : active) ranked.emplace_back(rankOf(*p), p);
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    int64_t n = std::min<int64_t>(have - want, options_.burst);
    kept.clear();
    for (size_t i = 0; i < ranked.size(); ++i) {
      if (static_cast<int64_t>(i) < n) {
        if (deletePod(*ranked[i].second)) {
          ++result.deleted;
          recordEvent(registry_, clock_, replicaSetKind(), rs, "Normal", "SuccessfulDelete",
                      "Deleted pod: " + nameOf(*ranked[i].second), kComponent);
        }
      } else {
        kept.push_back(ranked[i].second);
      }
    }
  }

  // Status reflects the pods that exist now (created pods are counted on the next pass).
  std::map<std::string, std::string> templateLabels;
  if (const Json* tl = api::lookupPath(rs, "spec.template.metadata.labels");
      tl != nullptr && tl->is_object()) {
    for (auto it = tl->begin(); it != tl->end(); ++it) {
      if (it.value().is_string()) templateLabels[it.key()] = it.value();
    }
  }
  int64_t fullyLabeled = 0, ready = 0, available = 0;
  int64_t now = clock_.nowMillis();
  for (const Json* p : kept) {
    auto labels = api::labelsOf(*p);
    bool full = std::all_of(templateLabels.begin(), templateLabels.end(), [&](const auto& kv) {
      auto it = labels.find(kv.first);
      return it != labels.end() && it->second == kv.second;
    });
    fullyLabeled += full;
    ready += isPodReady(*p);
    available += isPodAvailable(*p, minReady, now);
  }
  Json status = rs.value("status", Json::object());
  if (!status.is_object()) status = Json::object();
  Json next = status;
  next["replicas"] = static_cast<int64_t>(kept.size());
  next["fullyLabeledReplicas"] = fullyLabeled;
  next["readyReplicas"] = ready;
  next["availableReplicas"] = available;
  next["observedGeneration"] = api::intAt(rs, "metadata.generation", 1);
  if (next == status) return;
  Json obj = rs;
  obj["status"] = std::move(next);
  auto r = registry_.update(replicaSetKind(), ns, name, obj, registry::Subresource::kStatus);
  if (!r.isOk() && r.status().code() != Code::kConflict && r.status().code() != Code::kNotFound) {
    spdlog::warn("replicaset controller: {}/{}: status: {}", ns, name, r.status().toString());
  }
}

Result<ReplicaSetPassResult> ReplicaSetController::reconcileOnce() {
  auto sets = registry_.list(replicaSetKind(), "", {});
  if (!sets.isOk()) return sets.status();
  auto pods = registry_.list(podKind(), "", {});
  if (!pods.isOk()) return pods.status();
  ReplicaSetPassResult result;
  std::unordered_map<std::string, const Json*> byUid;
  for (const auto& rs : sets->items) byUid[uidOf(rs)] = &rs;
  std::unordered_map<std::string, std::vector<const Json*>> owned;
  for (const auto& p : pods->items) {
    const Json* ref = controllerRef(p);
    if (ref == nullptr || str(*ref, "kind") != "ReplicaSet") continue;
    std::string uid = str(*ref, "uid");
    if (byUid.count(uid)) {
      owned[uid].push_back(&p);
    } else if (!isTerminating(p) && collectIfOrphaned(registry_, replicaSetKind(), podKind(), p)) {
      ++result.collected;
    }
  }
  for (const auto& rs : sets->items) {
    static const std::vector<const Json*> kNone;
    auto it = owned.find(uidOf(rs));
    if (isTerminating(rs)) {
      advanceForegroundDeletion(registry_, replicaSetKind(), rs, podKind(),
                                it == owned.end() ? kNone : it->second, false);
      continue;
    }
    syncReplicaSet(rs, it == owned.end() ? kNone : it->second, result);
  }
  return result;
}

}  // namespace ep::controllers
