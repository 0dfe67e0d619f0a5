#include "cloudcore/controllers/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "common/api/object_util.h"
#include "common/api/quantity.h"

namespace ep::controllers {
namespace {

constexpr const char* kComponent = "default-scheduler";
constexpr int kMaxAttempts = 5;
constexpr int64_t kDefaultMaxPods = 110;
// kube-scheduler's non-zero defaults, used only for scoring pods without requests.
constexpr int64_t kScoreDefaultMilliCpu = 100;
constexpr int64_t kScoreDefaultMemory = 200LL * 1024 * 1024;
constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

int64_t quantity(const Json& v, bool milli) {
  auto r = api::quantityOf(v, milli);
  return r.isOk() ? *r : -1;
}

// Requests of one container: requests, each defaulting to the matching limit.
PodRequests containerRequests(const Json& c) {
  PodRequests out;
  const Json* requests = api::lookupPath(c, "resources.requests");
  const Json* limits = api::lookupPath(c, "resources.limits");
  auto pick = [&](const char* name, bool milli) -> int64_t {
    for (const Json* m : {requests, limits}) {
      if (m == nullptr || !m->is_object() || !m->contains(name)) continue;
      int64_t q = quantity((*m)[name], milli);
      if (q >= 0) return q;
    }
    return 0;
  };
  out.milliCpu = pick("cpu", true);
  out.memory = pick("memory", false);
  return out;
}

// A node resource: allocatable, else capacity, else unlimited.
int64_t nodeResource(const Json& node, const char* name, bool milli) {
  for (const char* where : {"status.allocatable", "status.capacity"}) {
    const Json* m = api::lookupPath(node, where);
    if (m == nullptr || !m->is_object() || !m->contains(name)) continue;
    int64_t q = quantity((*m)[name], milli);
    if (q >= 0) return q;
  }
  return kUnlimited;
}

struct NodeView {
  std::string name;
  const Json* node = nullptr;
  std::map<std::string, std::string> labels;
  std::string notReadyReason;  // non-empty: refuse with this reason
  bool unschedulable = false;
  std::vector<const Json*> taints;  // NoSchedule / NoExecute only
  int64_t allocCpu = 0, allocMem = 0, allocPods = 0;
  int64_t usedCpu = 0, usedMem = 0, pods = 0;
  int64_t scoreCpu = 0, scoreMem = 0;  // usage with non-zero defaults

  void add(const PodRequests& r) {
    usedCpu += r.milliCpu;
    usedMem += r.memory;
    scoreCpu += r.milliCpu > 0 ? r.milliCpu : kScoreDefaultMilliCpu;
    scoreMem += r.memory > 0 ? r.memory : kScoreDefaultMemory;
    ++pods;
  }
  // Free fraction of cpu and memory (each in [0,1], unlimited counts as 1), summed.
  double freeScore() const {
    auto frac = [](int64_t alloc, int64_t used) {
      if (alloc == kUnlimited) return 1.0;
      if (alloc <= 0) return 0.0;
      return std::max(0.0, static_cast<double>(alloc - used) / static_cast<double>(alloc));
    };
    return frac(allocCpu, scoreCpu) + frac(allocMem, scoreMem);
  }
};

bool fits(int64_t alloc, int64_t used, int64_t want) {
  if (alloc == kUnlimited) return true;
  return want <= alloc - used;
}

// One node-selector requirement ({key, operator, values}) against labels.
bool matchesExpression(const Json& expr, const std::map<std::string, std::string>& labels) {
  std::string key = str(expr, "key");
  std::string op = str(expr, "operator");
  auto it = labels.find(key);
  bool has = it != labels.end();
  std::vector<std::string> values;
  if (const Json* v = api::lookupPath(expr, "values"); v != nullptr && v->is_array()) {
    for (const auto& x : *v) {
      if (x.is_string()) values.push_back(x.get<std::string>());
    }
  }
  auto in = [&] {
    return has && std::find(values.begin(), values.end(), it->second) != values.end();
  };
  if (op == "In") return in();
  if (op == "NotIn") return !in();
  if (op == "Exists") return has;
  if (op == "DoesNotExist") return !has;
  if (op == "Gt" || op == "Lt") {
    if (!has || values.size() != 1) return false;
    try {
      size_t a = 0, b = 0;
      long long label = std::stoll(it->second, &a);
      long long want = std::stoll(values[0], &b);
      if (a != it->second.size() || b != values[0].size()) return false;
      return op == "Gt" ? label > want : label < want;
    } catch (...) {
      return false;
    }
  }
  return false;
}

}  // namespace

PodRequests podRequests(const Json& pod) {
  PodRequests sum;
  if (const Json* cs = api::lookupPath(pod, "spec.containers"); cs != nullptr && cs->is_array()) {
    for (const auto& c : *cs) {
      PodRequests r = containerRequests(c);
      sum.milliCpu += r.milliCpu;
      sum.memory += r.memory;
    }
  }
  if (const Json* cs = api::lookupPath(pod, "spec.initContainers");
      cs != nullptr && cs->is_array()) {
    for (const auto& c : *cs) {
      PodRequests r = containerRequests(c);
      sum.milliCpu = std::max(sum.milliCpu, r.milliCpu);
      sum.memory = std::max(sum.memory, r.memory);
    }
  }
  return sum;
}

bool toleratesTaint(const Json& tolerations, const Json& taint) {
  if (!tolerations.is_array()) return false;
  std::string key = str(taint, "key"), value = str(taint, "value"), effect = str(taint, "effect");
  for (const auto& t : tolerations) {
    std::string tEffect = str(t, "effect");
    if (!tEffect.empty() && tEffect != effect) continue;
    std::string tKey = str(t, "key");
    std::string op = str(t, "operator");
    if (op.empty()) op = "Equal";
    if (tKey.empty()) {
      if (op == "Exists") return true;  // empty key + Exists tolerates everything
      continue;
    }
    if (tKey != key) continue;
    if (op == "Exists") return true;
    if (op == "Equal" && str(t, "value") == value) return true;
  }
  return false;
}

bool matchesNodeSelectorAndAffinity(const Json& pod,
                                    const std::map<std::string, std::string>& nodeLabels) {
  if (const Json* sel = api::lookupPath(pod, "spec.nodeSelector");
      sel != nullptr && sel->is_object()) {
    for (auto it = sel->begin(); it != sel->end(); ++it) {
      auto l = nodeLabels.find(it.key());
      if (l == nodeLabels.end() || !it.value().is_string() || l->second != it.value()) return false;
    }
  }
  const Json* terms =
      api::lookupPath(pod,
                      "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
                      "nodeSelectorTerms");
  if (terms == nullptr || !terms->is_array()) return true;
  // Terms are ORed; an empty term list (or only empty terms) matches nothing, as in Kubernetes.
  for (const auto& term : *terms) {
    const Json* exprs = api::lookupPath(term, "matchExpressions");
    bool any = false, all = true;
    if (exprs != nullptr && exprs->is_array()) {
      for (const auto& e : *exprs) {
        any = true;
        if (!matchesExpression(e, nodeLabels)) {
          all = false;
          break;
        }
      }
    }
    // matchFields supports metadata.name only (as Kubernetes).
    const Json* fields = api::lookupPath(term, "matchFields");
    if (all && fields != nullptr && fields->is_array()) {
      std::map<std::string, std::string> byName;
      auto name = nodeLabels.find("\x01name");  // not a valid label key: set by the caller
      if (name != nodeLabels.end()) byName["metadata.name"] = name->second;
      for (const auto& f : *fields) {
        any = true;
        if (!matchesExpression(f, byName)) {
          all = false;
          break;
        }
      }
    }
    if (any && all) return true;
  }
  return false;
}

Scheduler::Scheduler(registry::Registry& registry, Clock& clock, SchedulerOptions options)
    : registry_(registry), clock_(clock), options_(std::move(options)) {}

Scheduler::~Scheduler() {
  stop();
}

bool Scheduler::interesting(const api::KindInfo& kind, const registry::WatchEvent& e) {
  if (e.object == nullptr) return false;
  if (kind.kind == "Pod") {
    if (e.type != "DELETED" && nodeNameOf(*e.object).empty() && !isTerminating(*e.object)) {
      return true;  // a new or changed pending pod
    }
    return pending_.load() > 0;  // a bound pod changing may free room
  }
  // Node changes matter only while pods wait, and only when something the scheduler reads
  // changed (heartbeats alone rewrite the node every few seconds).
  const Json& n = *e.object;
  std::string key = nameOf(n);
  if (e.type == "DELETED") {
    nodeFingerprints_.erase(key);
    return pending_.load() > 0;
  }
  const Json* ready = findCondition(n, "Ready");
  Json fp = {
      {"labels",
       api::lookupPath(n, "metadata.labels") ? *api::lookupPath(n, "metadata.labels") : Json()},
      {"spec", n.value("spec", Json())},
      {"allocatable", api::lookupPath(n, "status.allocatable")
                          ? *api::lookupPath(n, "status.allocatable")
                          : Json()},
      {"capacity",
       api::lookupPath(n, "status.capacity") ? *api::lookupPath(n, "status.capacity") : Json()},
      {"ready", ready ? str(*ready, "status") : ""}};
  std::string dumped = fp.dump();
  auto [it, inserted] = nodeFingerprints_.try_emplace(key, dumped);
  bool changed = inserted || it->second != dumped;
  it->second = std::move(dumped);
  return changed && pending_.load() > 0;
}

Status Scheduler::start() {
  loop_ = std::make_unique<ControllerLoop>(
      "scheduler", registry_, std::vector<const api::KindInfo*>{&podKind(), &nodeKind()},
      [this](const api::KindInfo& k, const registry::WatchEvent& e) {
        bool wanted = true;  // an event that cannot be judged asks for a pass too
        try {
          wanted = interesting(k, e);
        } catch (...) {
        }
        if (wanted) asked_ = true;
        return wanted;
      },
      [this] {
        // A resync with no pod pending and no event asking has nothing to do: every pod that
        // becomes pending arrives as a watch event (the initial list included), which asks for
        // a pass. Pods left pending (unschedulable, a failed bind) and a failed pass keep the
        // resync, as retries. (At 10,000 nodes and pods, listing both every 10 s for nothing was
        // a seventh of a cloudcore's CPU.)
        if (!asked_.exchange(false) && pending_.load() == 0 && lastPassOk_) {
          skipped_.fetch_add(1);
          return;
        }
        auto r = reconcileOnce();
        lastPassOk_ = r.isOk();
        if (!r.isOk()) spdlog::warn("scheduler: {}", r.status().toString());
      },
      options_.resync, options_.minGap);
  return loop_->start();
}

void Scheduler::stop() {
  if (loop_) loop_->stop();
  loop_.reset();
}

Status Scheduler::bind(Json pod, const std::string& node) {
  std::string ns = namespaceOf(pod), name = nameOf(pod);
  pod["spec"]["nodeName"] = node;  // carries metadata.resourceVersion: the update is a CAS
  auto bound = registry_.update(podKind(), ns, name, pod);
  if (!bound.isOk()) return bound.status();
  Json current = std::move(bound.value());
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Json next = current;
    if (!setCondition(next, "PodScheduled", "True", "", "", clock_.nowMillis())) break;
    // Drop the empty reason/message kept by setCondition: Kubernetes omits them when True.
    for (auto& c : next["status"]["conditions"]) {
      if (str(c, "type") == "PodScheduled") {
        c.erase("reason");
        c.erase("message");
      }
    }
    auto r = registry_.update(podKind(), ns, name, next, registry::Subresource::kStatus);
    if (r.isOk() || r.status().code() != Code::kConflict) break;
    auto again = registry_.get(podKind(), ns, name);
    if (!again.isOk()) break;
    current = std::move(again.value());
  }
  recordEvent(registry_, clock_, podKind(), current, "Normal", "Scheduled",
              "Successfully assigned " + ns + "/" + name + " to " + node, kComponent);
  return Status::ok();
}

Status Scheduler::markUnschedulable(const Json& pod, const std::string& message) {
  std::string ns = namespaceOf(pod), name = nameOf(pod);
  Json current = pod;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Json next = current;
    if (!setCondition(next, "PodScheduled", "False", "Unschedulable", message,
                      clock_.nowMillis())) {
      return Status::ok();  // already says so: no write, no event
    }
    auto r = registry_.update(podKind(), ns, name, next, registry::Subresource::kStatus);
    if (r.isOk()) {
      recordEvent(registry_, clock_, podKind(), *r, "Warning", "FailedScheduling", message,
                  kComponent);
      return Status::ok();
    }
    if (r.status().code() != Code::kConflict) return r.status();
    auto again = registry_.get(podKind(), ns, name);
    if (!again.isOk()) return again.status();
    current = std::move(again.value());
    if (!nodeNameOf(current).empty()) return Status::ok();
  }
  return Status(Code::kConflict, "too many conflicts");
}

Result<SchedulePassResult> Scheduler::reconcileOnce() {
  auto nodes = registry_.list(nodeKind(), "", {});
  if (!nodes.isOk()) return nodes.status();
  auto pods = registry_.list(podKind(), "", {});
  if (!pods.isOk()) return pods.status();

  std::vector<NodeView> views;
  views.reserve(nodes->items.size());
  std::map<std::string, size_t> byName;
  for (const auto& n : nodes->items) {
    NodeView v;
    v.name = nameOf(n);
    v.node = &n;
    v.labels = api::labelsOf(n);
    const Json* ready = findCondition(n, "Ready");
    std::string readyStatus = ready ? str(*ready, "status") : "";
    if (readyStatus == "Unknown") {
      v.notReadyReason = "node(s) had untolerated taint {node.kubernetes.io/unreachable: }";
    } else if (readyStatus != "True") {
      v.notReadyReason = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }";
    }
    v.unschedulable = api::lookupPath(n, "spec.unschedulable") != nullptr &&
                      *api::lookupPath(n, "spec.unschedulable") == true;
    if (const Json* taints = api::lookupPath(n, "spec.taints");
        taints != nullptr && taints->is_array()) {
      for (const auto& t : *taints) {
        std::string effect = str(t, "effect");
        if (effect == "NoSchedule" || effect == "NoExecute") v.taints.push_back(&t);
      }
    }
    v.allocCpu = nodeResource(n, "cpu", true);
    v.allocMem = nodeResource(n, "memory", false);
    v.allocPods = nodeResource(n, "pods", false);
    if (v.allocPods == kUnlimited) v.allocPods = kDefaultMaxPods;
    byName[v.name] = views.size();
    views.push_back(std::move(v));
  }

  std::vector<const Json*> pending;
  for (const auto& p : pods->items) {
    if (isTerminal(p)) continue;
    std::string node = nodeNameOf(p);
    if (!node.empty()) {
      if (auto it = byName.find(node); it != byName.end()) views[it->second].add(podRequests(p));
      continue;
    }
    if (isTerminating(p)) continue;
    std::string scheduler = api::stringAt(p, "spec.schedulerName");
    if (!scheduler.empty() && scheduler != options_.schedulerName) continue;
    pending.push_back(&p);
  }
  std::stable_sort(pending.begin(), pending.end(), [](const Json* a, const Json* b) {
    int64_t ta = parseRfc3339(api::stringAt(*a, "metadata.creationTimestamp"));
    int64_t tb = parseRfc3339(api::stringAt(*b, "metadata.creationTimestamp"));
    if (ta != tb) return ta < tb;
    return nameOf(*a) < nameOf(*b);
  });

  SchedulePassResult result;
  int stillPending = 0;
  for (const Json* podPtr : pending) {
    const Json& pod = *podPtr;
    PodRequests want = podRequests(pod);
    const Json* tolerations = api::lookupPath(pod, "spec.tolerations");
    static const Json kNone = Json::array();
    if (tolerations == nullptr) tolerations = &kNone;
    std::map<std::string, int> reasons;
    NodeView* best = nullptr;
    double bestScore = -1;
    for (auto& v : views) {
      if (!v.notReadyReason.empty()) {
        ++reasons[v.notReadyReason];
        continue;
      }
      if (v.unschedulable) {
        ++reasons["node(s) were unschedulable"];
        continue;
      }
      const Json* untolerated = nullptr;
      for (const Json* t : v.taints) {
        if (!toleratesTaint(*tolerations, *t)) {
          untolerated = t;
          break;
        }
      }
      if (untolerated != nullptr) {
        ++reasons["node(s) had untolerated taint {" + str(*untolerated, "key") + ": " +
                  str(*untolerated, "value") + "}"];
        continue;
      }
      auto labels = v.labels;
      labels["\x01name"] = v.name;
      if (!matchesNodeSelectorAndAffinity(pod, labels)) {
        ++reasons["node(s) didn't match Pod's node affinity/selector"];
        continue;
      }
      bool ok = true;
      if (v.pods + 1 > v.allocPods) {
        ++reasons["Too many pods"];
        ok = false;
      }
      if (!fits(v.allocCpu, v.usedCpu, want.milliCpu)) {
        ++reasons["Insufficient cpu"];
        ok = false;
      }
      if (!fits(v.allocMem, v.usedMem, want.memory)) {
        ++reasons["Insufficient memory"];
        ok = false;
      }
      if (!ok) continue;
      double score = v.freeScore();
      if (best == nullptr || score > bestScore ||
          (score == bestScore &&
           (v.pods < best->pods || (v.pods == best->pods && v.name < best->name)))) {
        best = &v;
        bestScore = score;
      }
    }
    if (best != nullptr) {
      auto s = bind(pod, best->name);
      if (s.isOk()) {
        best->add(want);
        ++result.bound;
        spdlog::debug("scheduler: bound pod {}/{} to {}", namespaceOf(pod), nameOf(pod),
                      best->name);
      } else {
        ++stillPending;  // changed or deleted meanwhile: the next pass sees it again
        spdlog::debug("scheduler: binding {}/{}: {}", namespaceOf(pod), nameOf(pod), s.toString());
      }
      continue;
    }
    std::vector<std::string> parts;
    for (const auto& [reason, count] : reasons) {
      parts.push_back(std::to_string(count) + " " + reason);
    }
    std::sort(parts.begin(), parts.end());
    std::string message = "0/" + std::to_string(views.size()) + " nodes are available";
    for (size_t i = 0; i < parts.size(); ++i) message += (i ? ", " : ": ") + parts[i];
    message += ".";
    ++stillPending;
    ++result.unschedulable;
    if (auto s = markUnschedulable(pod, message); !s.isOk()) {
      spdlog::debug("scheduler: {}/{}: {}", namespaceOf(pod), nameOf(pod), s.toString());
    }
  }
  pending_.store(stillPending);
  return result;
}

}  // namespace ep::controllers
