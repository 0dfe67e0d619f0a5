#include "cloudcore/controllers/pod_eviction_controller.h"

#include <spdlog/spdlog.h>

#include "cloudcore/controllers/workload_util.h"
#include "common/api/object_util.h"

namespace ep::controllers {

PodEvictionController::PodEvictionController(registry::Registry& registry, Clock& clock,
                                             PodEvictionOptions options)
    : registry_(registry), clock_(clock), options_(options), task_(options.interval, [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) spdlog::warn("pod eviction: {}", r.status().toString());
      }) {}

PodEvictionController::~PodEvictionController() {
  stop();
}

Status PodEvictionController::start() {
  if (options_.timeout.count() <= 0) return Status::ok();
  task_.start();
  return Status::ok();
}

void PodEvictionController::stop() {
  task_.stop();
}

Result<int> PodEvictionController::reconcileOnce() {
  if (options_.timeout.count() <= 0) return 0;
  auto nodes = registry_.list(nodeKind(), "", {});
  if (!nodes.isOk()) return nodes.status();
  int64_t now = clock_.nowMillis();
  int evicted = 0;
  for (const auto& node : nodes->items) {
    const Json* ready = findCondition(node, "Ready");
    std::string status = ready ? str(*ready, "status") : "";
    if (status == "True") continue;
    int64_t since = -1;
    if (ready) since = parseRfc3339(str(*ready, "lastTransitionTime"));
    if (since < 0 && ready) since = parseRfc3339(str(*ready, "lastHeartbeatTime"));
    if (since < 0) since = parseRfc3339(api::stringAt(node, "metadata.creationTimestamp"));
    if (since < 0) continue;
    int64_t notReadyFor = now - since;
    if (notReadyFor <= 0) continue;
    std::string taintKey =
        status == "Unknown" ? "node.kubernetes.io/unreachable" : "node.kubernetes.io/not-ready";
    registry::ListQuery q;
    q.fieldSelector = "spec.nodeName=" + nameOf(node);
    auto pods = registry_.list(podKind(), "", q);
    if (!pods.isOk()) return pods.status();
    for (const auto& pod : pods->items) {
      if (isTerminating(pod)) continue;
      int64_t allowedMs = options_.timeout.count() * 1000;
      bool forever = false;
      if (const Json* tols = api::lookupPath(pod, "spec.tolerations");
          tols != nullptr && tols->is_array()) {
        for (const auto& t : *tols) {
          std::string key = str(t, "key"), op = str(t, "operator"), effect = str(t, "effect");
          bool keyMatches = key == taintKey || (key.empty() && op == "Exists");
          if (!keyMatches || (!effect.empty() && effect != "NoExecute")) continue;
          if (t.contains("tolerationSeconds") && t["tolerationSeconds"].is_number_integer()) {
            allowedMs = t["tolerationSeconds"].get<int64_t>() * 1000;
          } else {
            forever = true;
          }
          break;
        }
      }
      if (forever || notReadyFor <= allowedMs) continue;
      registry::DeleteOptions opts;
      opts.preconditionUid = uidOf(pod);
      auto r = registry_.remove(podKind(), namespaceOf(pod), nameOf(pod), opts);
      if (!r.isOk()) {
        if (r.status().code() != Code::kNotFound) {
          spdlog::warn("pod eviction: {}/{}: {}", namespaceOf(pod), nameOf(pod),
                       r.status().toString());
        }
        continue;
      }
      ++evicted;
      spdlog::info("pod eviction: deleted {}/{} (node {} not ready for {}s)", namespaceOf(pod),
                   nameOf(pod), nameOf(node), notReadyFor / 1000);
      recordEvent(registry_, clock_, podKind(), pod, "Normal", "TaintManagerEviction",
                  "Marking for deletion Pod " + namespaceOf(pod) + "/" + nameOf(pod),
                  "taint-eviction-controller");
    }
  }
  return evicted;
}

}  // namespace ep::controllers
