#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "cloudcore/registry/registry.h"
#include "cloudcore/resourcemetrics/resource_metrics_store.h"
#include "common/clock.h"
#include "common/http/server_types.h"

namespace ep::resourcemetrics {

inline constexpr const char* kMetricsGroup = "metrics.k8s.io";
inline constexpr const char* kMetricsVersion = "v1beta1";

// metrics.k8s.io/v1beta1 as metrics-server serves it, from the nodes' latest samples
// (docs/metrics.md): NodeMetrics (nodes) and PodMetrics (pods), get and list, list narrowed by
// labelSelector (the Node's or Pod's labels, which the items carry) and fieldSelector
// metadata.name. Items exist for Nodes and Pods the store holds whose node sent a fresh sample
// that includes them: a pod is answered only from the node it is bound to, whatever other nodes
// send. Read-only; watch and writes are 405. Thread-safe; may block on the registry (the HTTP
// server calls it on its worker pool).
class MetricsApi {
 public:
  MetricsApi(ResourceMetricsStore& store, registry::Registry& registry, Clock& clock)
      : store_(store), registry_(registry), clock_(clock) {}

  // The APIResourceList "resources" of metrics.k8s.io/v1beta1.
  static nlohmann::json resources();
  // A request below /apis/metrics.k8s.io/v1beta1/, given the path segments after it.
  http::ServerResponse handle(http::ServerRequest& request, const std::vector<std::string>& rest);

 private:
  http::ServerResponse nodes(http::ServerRequest& request, const std::string& name);
  http::ServerResponse pods(http::ServerRequest& request, const std::string& ns,
                            const std::string& name);

  ResourceMetricsStore& store_;
  registry::Registry& registry_;
  Clock& clock_;
};

}  // namespace ep::resourcemetrics
