#include "cloudcore/resourcemetrics/metrics_api.h"

#include <nlohmann/json.hpp>

#include "common/api/object_util.h"
#include "common/api/quantity.h"
#include "common/api/status_json.h"

namespace ep::resourcemetrics {

using Json = nlohmann::json;

namespace {

const std::string kApiVersion = std::string(kMetricsGroup) + "/" + kMetricsVersion;

// A Go time.Duration's text for whole milliseconds, as metrics-server's window: "15s",
// "14.998s", "1m0.5s".
std::string formatWindow(int64_t ms) {
  std::string out;
  if (ms >= 3'600'000) {
    out += std::to_string(ms / 3'600'000) + "h";
    ms %= 3'600'000;
  }
  if (!out.empty() || ms >= 60'000) {
    out += std::to_string(ms / 60'000) + "m";
    ms %= 60'000;
  }
  std::string seconds = std::to_string(ms / 1000);
  if (int64_t frac = ms % 1000; frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 3 - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    seconds += "." + f;
  }
  return out + seconds + "s";
}

Json usageJson(const Usage& u) {
  return {{"cpu", api::formatNanoQuantity(u.cpuNanoCores)},
          {"memory", api::formatBinaryQuantity(u.memoryBytes)}};
}

// metadata of a metrics item: the object's name, namespace and labels, created now (the item is
// computed for this request, as metrics-server does).
Json itemMetadata(const Json& object, int64_t nowMs) {
  Json meta = {{"name", api::stringAt(object, "metadata.name")},
               {"creationTimestamp", formatRfc3339(nowMs)}};
  if (std::string ns = api::stringAt(object, "metadata.namespace"); !ns.empty()) {
    meta["namespace"] = ns;
  }
  if (const Json* labels = api::lookupPath(object, "metadata.labels");
      labels != nullptr && labels->is_object() && !labels->empty()) {
    meta["labels"] = *labels;
  }
  return meta;
}

http::ServerResponse notFound(const std::string& resource, const std::string& name) {
  Json status = api::statusObject(
      notFoundError(resource + "." + kMetricsGroup + " \"" + name + "\" not found"));
  status["details"] = {{"name", name}, {"group", kMetricsGroup}, {"kind", resource}};
  return api::jsonResponse(404, status);
}

http::ServerResponse listJson(const std::string& kind, Json items) {
  return api::jsonResponse(200, {{"kind", kind},
                                 {"apiVersion", kApiVersion},
                                 {"metadata", Json::object()},
                                 {"items", std::move(items)}});
}

}  // namespace

Json MetricsApi::resources() {
  return Json::array({{{"name", "nodes"},
                       {"singularName", ""},
                       {"namespaced", false},
                       {"kind", "NodeMetrics"},
                       {"verbs", {"get", "list"}}},
                      {{"name", "pods"},
                       {"singularName", ""},
                       {"namespaced", true},
                       {"kind", "PodMetrics"},
                       {"verbs", {"get", "list"}}}});
}

http::ServerResponse MetricsApi::handle(http::ServerRequest& req,
                                        const std::vector<std::string>& rest) {
  std::string ns;
  std::vector<std::string> path = rest;
  if (path.size() >= 3 && path[0] == "namespaces") {
    ns = path[1];
    path.erase(path.begin(), path.begin() + 2);
  }
  const bool known = !path.empty() && path.size() <= 2 &&
                     ((path[0] == "nodes" && ns.empty()) || path[0] == "pods");
  if (!known) {
    return api::errorResponse(notFoundError("the server could not find the requested resource"));
  }
  const bool watch = req.param("watch") == "true" || req.param("watch") == "1";
  if (req.method != "GET" || watch) {
    return api::errorResponse(
        Status(Code::kMethodNotAllowed,
               "the server does not allow this method on the requested resource"));
  }
  const std::string name = path.size() == 2 ? path[1] : "";
  return path[0] == "nodes" ? nodes(req, name) : pods(req, ns, name);
}

http::ServerResponse MetricsApi::nodes(http::ServerRequest& req, const std::string& name) {
  const api::KindInfo* kind = api::findByApiVersionKind("v1", "Node");
  const int64_t now = clock_.nowMillis();
  auto item = [&](const Json& node) -> Json {
    auto sample = store_.node(api::stringAt(node, "metadata.name"));
    if (!sample) return nullptr;
    return {{"kind", "NodeMetrics"},
            {"apiVersion", kApiVersion},
            {"metadata", itemMetadata(node, now)},
            {"timestamp", formatRfc3339(sample->timestampMs)},
            {"window", formatWindow(sample->windowMs)},
            {"usage", usageJson(sample->node)}};
  };
  if (!name.empty()) {
    auto node = registry_.get(*kind, "", name);
    if (!node.isOk() && node.status().code() != Code::kNotFound) {
      return api::errorResponse(node.status());
    }
    Json j = node.isOk() ? item(*node) : Json(nullptr);
    if (j.is_null()) return notFound("nodemetrics", name);
    return api::jsonResponse(200, j);
  }
  registry::ListQuery q;
  q.labelSelector = req.param("labelSelector");
  q.fieldSelector = req.param("fieldSelector");
  q.skipDamaged = true;
  auto list = registry_.list(*kind, "", q);
  if (!list.isOk()) return api::errorResponse(list.status());
  Json items = Json::array();
  for (const auto& node : list->items) {
    if (Json j = item(node); !j.is_null()) items.push_back(std::move(j));
  }
  return listJson("NodeMetricsList", std::move(items));
}

http::ServerResponse MetricsApi::pods(http::ServerRequest& req, const std::string& ns,
                                      const std::string& name) {
  const api::KindInfo* kind = api::findByApiVersionKind("v1", "Pod");
  const int64_t now = clock_.nowMillis();
  auto item = [&](const Json& pod) -> Json {
    const std::string node = api::stringAt(pod, "spec.nodeName");
    if (node.empty()) return nullptr;
    auto sample = store_.node(node);
    if (!sample) return nullptr;
    const auto* usage = sample->containersOf(api::stringAt(pod, "metadata.namespace"),
                                             api::stringAt(pod, "metadata.name"),
                                             api::stringAt(pod, "metadata.uid"));
    if (usage == nullptr || usage->empty()) return nullptr;
    Json containers = Json::array();
    for (const auto& c : *usage) {
      containers.push_back({{"name", c.name}, {"usage", usageJson(c.usage)}});
    }
    return {{"kind", "PodMetrics"},
            {"apiVersion", kApiVersion},
            {"metadata", itemMetadata(pod, now)},
            {"timestamp", formatRfc3339(sample->timestampMs)},
            {"window", formatWindow(sample->windowMs)},
            {"containers", std::move(containers)}};
  };
  if (!name.empty()) {
    auto pod = registry_.get(*kind, ns, name);
    if (!pod.isOk() && pod.status().code() != Code::kNotFound) {
      return api::errorResponse(pod.status());
    }
    Json j = pod.isOk() ? item(*pod) : Json(nullptr);
    if (j.is_null()) return notFound("podmetrics", ns + "/" + name);  // metrics-server's wording
    return api::jsonResponse(200, j);
  }
  registry::ListQuery q;
  q.labelSelector = req.param("labelSelector");
  q.fieldSelector = req.param("fieldSelector");
  q.skipDamaged = true;
  auto list = registry_.list(*kind, ns, q);
  if (!list.isOk()) return api::errorResponse(list.status());
  Json items = Json::array();
  for (const auto& pod : list->items) {
    if (Json j = item(pod); !j.is_null()) items.push_back(std::move(j));
  }
  return listJson("PodMetricsList", std::move(items));
}

}  // namespace ep::resourcemetrics
