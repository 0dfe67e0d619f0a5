#include "cloudcore/controllers/endpoints_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "cloudcore/controllers/workload_util.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"
#include "common/clock.h"

namespace ep::controllers {
namespace {

using Json = nlohmann::json;
using Key = std::pair<std::string, std::string>;  // namespace, name

const api::KindInfo& serviceKind() {
  return *api::findByApiVersionKind("v1", "Service");
}
const api::KindInfo& endpointsKind() {
  return *api::findByApiVersionKind("v1", "Endpoints");
}
const api::KindInfo& sliceKind() {
  return *api::findByApiVersionKind("discovery.k8s.io/v1", "EndpointSlice");
}

// The selector of a Service this controller serves, or an empty map for one it leaves alone
// (no selector, ExternalName).
std::map<std::string, std::string> selectorOf(const Json& svc) {
  std::map<std::string, std::string> out;
  if (api::stringAt(svc, "spec.type") == "ExternalName") return out;
  const Json* sel = api::lookupPath(svc, "spec.selector");
  if (sel == nullptr || !sel->is_object()) return out;
  for (auto it = sel->begin(); it != sel->end(); ++it) {
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

bool matches(const std::map<std::string, std::string>& selector, const Json& pod) {
  auto labels = api::labelsOf(pod);
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::string podIpOf(const Json& pod) {
  std::string ip = api::stringAt(pod, "status.podIP");
  if (ip.empty()) ip = api::stringAt(pod, "status.podIPs[0].ip");
  return ip;
}

// The container port `targetPort` (a number or a container port's name) means in `pod`, or 0.
int64_t resolveTargetPort(const Json& servicePort, const Json& pod) {
  auto tp = servicePort.find("targetPort");
  if (tp == servicePort.end() || tp->is_null()) return servicePort.value("port", int64_t{0});
  if (tp->is_number_integer()) return tp->get<int64_t>();
  if (!tp->is_string()) return 0;
  const std::string name = tp->get<std::string>();
  const std::string protocol = servicePort.value("protocol", std::string("TCP"));
  const Json* containers = api::lookupPath(pod, "spec.containers");
  if (containers == nullptr || !containers->is_array()) return 0;
  for (const auto& c : *containers) {
    auto ports = c.is_object() ? c.find("ports") : c.end();
    if (!c.is_object() || ports == c.end() || !ports->is_array()) continue;
    for (const auto& p : *ports) {
      if (p.is_object() && p.value("name", std::string()) == name &&
          p.value("protocol", std::string("TCP")) == protocol) {
        return p.value("containerPort", int64_t{0});
      }
    }
  }
  return 0;
}

// The endpoint ports of `pod` for `service`, in the Service's port order.
Json endpointPorts(const Json& service, const Json& pod) {
  Json out = Json::array();
  const Json* ports = api::lookupPath(service, "spec.ports");
  if (ports == nullptr || !ports->is_array()) return out;
  for (const auto& sp : *ports) {
    if (!sp.is_object()) continue;
    int64_t port = resolveTargetPort(sp, pod);
    if (port <= 0 || port > 65535) continue;
    Json p = {{"name", sp.value("name", std::string())},
              {"port", port},
              {"protocol", sp.value("protocol", std::string("TCP"))}};
    if (sp.contains("appProtocol")) p["appProtocol"] = sp["appProtocol"];
    out.push_back(std::move(p));
  }
  return out;
}

// Whether `pod` has a place among a Service's endpoints at all.
bool eligible(const Json& pod) {
  return !podIpOf(pod).empty() && !isTerminal(pod);
}

Json targetRef(const Json& pod) {
  return {
      {"kind", "Pod"}, {"namespace", namespaceOf(pod)}, {"name", nameOf(pod)}, {"uid", uidOf(pod)}};
}

std::vector<const Json*> sortedByName(std::vector<const Json*> pods) {
  std::sort(pods.begin(), pods.end(),
            [](const Json* a, const Json* b) { return nameOf(*a) < nameOf(*b); });
  return pods;
}

// The labels Kubernetes puts on a Service's EndpointSlices and Endpoints: the Service's own,
// and the headless marker.
Json derivedLabels(const Json& svc) {
  Json labels = Json::object();
  for (const auto& [k, v] : api::labelsOf(svc)) labels[k] = v;
  if (api::stringAt(svc, "spec.clusterIP") == "None") labels[kHeadlessLabel] = "";
  return labels;
}

Json sliceLabels(const Json& svc) {
  Json labels = derivedLabels(svc);
  labels[kServiceNameLabel] = nameOf(svc);
  labels[kManagedByLabel] = kEndpointSliceControllerName;
  return labels;
}

Json labelsJson(const Json& obj) {
  const Json* l = api::lookupPath(obj, "metadata.labels");
  return l != nullptr && l->is_object() ? *l : Json::object();
}

Json memberOr(const Json& obj, const char* key, Json fallback) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? fallback : *it;
}

}  // namespace

std::vector<DesiredSlice> desiredSlices(const Json& service, const std::vector<const Json*>& pods) {
  const bool publishNotReady =
      api::lookupPath(service, "spec.publishNotReadyAddresses") != nullptr &&
      *api::lookupPath(service, "spec.publishNotReadyAddresses") == true;
  const std::string svcName = nameOf(service);
  // Port set (serialized) -> its ports and endpoints.
  std::map<std::string, DesiredSlice> groups;
  for (const Json* pod : sortedByName(pods)) {
    if (!eligible(*pod)) continue;
    Json ports = endpointPorts(service, *pod);
    const bool terminating = isTerminating(*pod);
    const bool ready = isPodReady(*pod);
    Json ep = {{"addresses", Json::array({podIpOf(*pod)})},
               {"conditions",
                {{"ready", publishNotReady || (ready && !terminating)},
                 {"serving", publishNotReady || ready},
                 {"terminating", terminating}}},
               {"targetRef", targetRef(*pod)}};
    if (auto node = nodeNameOf(*pod); !node.empty()) ep["nodeName"] = node;
    std::string hostname = api::stringAt(*pod, "spec.hostname");
    if (!hostname.empty() && api::stringAt(*pod, "spec.subdomain") == svcName) {
      ep["hostname"] = hostname;
    }
    auto& g = groups[ports.dump()];
    if (g.ports.is_null()) {
      g.ports = std::move(ports);
      g.endpoints = Json::array();
    }
    g.endpoints.push_back(std::move(ep));
  }
  std::vector<DesiredSlice> out;
  for (auto& [_, g] : groups) {
    for (size_t i = 0; i < g.endpoints.size(); i += kMaxEndpointsPerSlice) {
      DesiredSlice s;
      s.ports = g.ports;
      s.endpoints = Json::array();
      for (size_t j = i; j < std::min(g.endpoints.size(), i + kMaxEndpointsPerSlice); ++j) {
        s.endpoints.push_back(g.endpoints[j]);
      }
      out.push_back(std::move(s));
    }
  }
  if (out.empty()) out.push_back({Json::array(), Json::array()});
  return out;
}

Json desiredSubsets(const Json& service, const std::vector<const Json*>& pods) {
  const bool publishNotReady =
      api::lookupPath(service, "spec.publishNotReadyAddresses") != nullptr &&
      *api::lookupPath(service, "spec.publishNotReadyAddresses") == true;
  const Json* svcPorts = api::lookupPath(service, "spec.ports");
  const bool portless = svcPorts == nullptr || !svcPorts->is_array() || svcPorts->empty();
  std::map<std::string, Json> groups;  // ports (serialized) -> subset
  for (const Json* pod : sortedByName(pods)) {
    if (!eligible(*pod)) continue;
    const bool terminating = isTerminating(*pod);
    const bool ready = publishNotReady || (isPodReady(*pod) && !terminating);
    if (!ready && terminating) continue;
    Json ports = Json::array();
    for (auto p : endpointPorts(service, *pod)) {
      if (p["name"] == "") p.erase("name");
      ports.push_back(std::move(p));
    }
    if (ports.empty() && !portless) continue;  // none of the Service's ports resolve here
    Json addr = {{"ip", podIpOf(*pod)}, {"targetRef", targetRef(*pod)}};
    if (auto node = nodeNameOf(*pod); !node.empty()) addr["nodeName"] = node;
    std::string hostname = api::stringAt(*pod, "spec.hostname");
    if (!hostname.empty() && api::stringAt(*pod, "spec.subdomain") == nameOf(service)) {
      addr["hostname"] = hostname;
    }
    Json& subset = groups[ports.dump()];
    if (subset.is_null()) {
      subset = Json::object();
      if (!portless) subset["ports"] = std::move(ports);  // a headless Service may have none
    }
    subset[ready ? "addresses" : "notReadyAddresses"].push_back(std::move(addr));
  }
  Json out = Json::array();
  for (auto& [_, s] : groups) out.push_back(std::move(s));
  return out;
}

EndpointsController::EndpointsController(registry::Registry& registry, Clock& clock,
                                         EndpointsControllerOptions options)
    : registry_(registry), clock_(clock), options_(options) {}

EndpointsController::~EndpointsController() {
  stop();
}

Status EndpointsController::start() {
  loop_ = std::make_unique<ControllerLoop>(
      "endpoints controller", registry_,
      std::vector<const api::KindInfo*>{&serviceKind(), &podKind(), &sliceKind(), &endpointsKind()},
      [](const api::KindInfo&, const registry::WatchEvent&) { return true; },
      [this] {
        auto r = reconcileOnce();
        if (!r.isOk()) spdlog::warn("endpoints controller: {}", r.status().toString());
      },
      options_.resync, options_.minGap);
  return loop_->start();
}

void EndpointsController::stop() {
  if (loop_) loop_->stop();
  loop_.reset();
}

Result<int> EndpointsController::reconcileOnce() {
  auto services = registry_.list(serviceKind(), "", {});
  if (!services) return services.status();
  auto pods = registry_.list(podKind(), "", {});
  if (!pods) return pods.status();
  registry::ListQuery managed;
  managed.labelSelector = std::string(kManagedByLabel) + "=" + kEndpointSliceControllerName;
  auto slices = registry_.list(sliceKind(), "", managed);
  if (!slices) return slices.status();
  auto endpoints = registry_.list(endpointsKind(), "", {});
  if (!endpoints) return endpoints.status();

  std::map<std::string, std::vector<const Json*>> podsByNs;
  for (const auto& p : pods->items) podsByNs[namespaceOf(p)].push_back(&p);
  std::map<Key, std::vector<const Json*>> slicesBySvc;
  for (const auto& s : slices->items) {
    std::string svc = api::labelsOf(s)[kServiceNameLabel];
    if (!svc.empty()) slicesBySvc[{namespaceOf(s), svc}].push_back(&s);
  }
  std::map<Key, const Json*> endpointsByKey;
  for (const auto& e : endpoints->items) endpointsByKey[{namespaceOf(e), nameOf(e)}] = &e;

  int written = 0;
  const std::string now = formatRfc3339(clock_.nowMillis());
  auto logged = [&](const char* what, const std::string& ns, const std::string& name,
                    const Status& s) {
    if (s.isOk()) {
      ++written;
    } else if (s.code() != Code::kConflict && s.code() != Code::kNotFound &&
               s.code() != Code::kForbidden) {  // raced, gone, or the namespace terminates
      spdlog::warn("endpoints controller: {} {}/{}: {}", what, ns, name, s.toString());
    }
  };

  std::set<Key> serviceNames;
  std::set<Key> served;
  for (const auto& svc : services->items) {
    const Key key{namespaceOf(svc), nameOf(svc)};
    serviceNames.insert(key);
    auto selector = selectorOf(svc);
    if (selector.empty()) continue;
    served.insert(key);
    std::vector<const Json*> matched;
    for (const Json* p : podsByNs[key.first]) {
      if (matches(selector, *p)) matched.push_back(p);
    }

    // EndpointSlices: those of another Service of the same name go; the rest are reused in
    // name order.
    std::vector<const Json*> mine;
    for (const Json* s : slicesBySvc[key]) {
      if (isControlledBy(*s, uidOf(svc))) {
        mine.push_back(s);
      } else {
        logged("deleting EndpointSlice", key.first, nameOf(*s),
               registry_.remove(sliceKind(), key.first, nameOf(*s)).status());
      }
    }
    std::sort(mine.begin(), mine.end(),
              [](const Json* a, const Json* b) { return nameOf(*a) < nameOf(*b); });
    const Json labels = sliceLabels(svc);
    auto want = desiredSlices(svc, matched);
    for (size_t i = 0; i < want.size(); ++i) {
      if (i < mine.size()) {
        const Json& cur = *mine[i];
        if (memberOr(cur, "endpoints", Json::array()) == want[i].endpoints &&
            memberOr(cur, "ports", Json::array()) == want[i].ports && labelsJson(cur) == labels &&
            cur.value("addressType", std::string()) == "IPv4") {
          continue;
        }
        Json next = cur;
        next["metadata"]["labels"] = labels;
        next["addressType"] = "IPv4";
        next["endpoints"] = want[i].endpoints;
        next["ports"] = want[i].ports;
        logged("updating EndpointSlice", key.first, nameOf(cur),
               registry_.update(sliceKind(), key.first, nameOf(cur), std::move(next)).status());
        continue;
      }
      Json ref = makeControllerRef(serviceKind(), svc);
      ref["blockOwnerDeletion"] = true;
      Json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                    {"kind", "EndpointSlice"},
                    {"metadata",
                     {{"generateName", key.second + "-"},
                      {"namespace", key.first},
                      {"labels", labels},
                      {"ownerReferences", Json::array({ref})}}},
                    {"addressType", "IPv4"},
                    {"endpoints", want[i].endpoints},
                    {"ports", want[i].ports}};
      logged("creating EndpointSlice for", key.first, key.second,
             registry_.create(sliceKind(), key.first, std::move(slice)).status());
    }
    for (size_t i = want.size(); i < mine.size(); ++i) {
      logged("deleting EndpointSlice", key.first, nameOf(*mine[i]),
             registry_.remove(sliceKind(), key.first, nameOf(*mine[i])).status());
    }

    // v1 Endpoints.
    Json subsets = desiredSubsets(svc, matched);
    const Json epLabels = derivedLabels(svc);
    auto cur = endpointsByKey.find(key);
    if (cur == endpointsByKey.end()) {
      Json ep = {{"apiVersion", "v1"},
                 {"kind", "Endpoints"},
                 {"metadata",
                  {{"name", key.second},
                   {"namespace", key.first},
                   {"labels", epLabels},
                   {"annotations", {{kLastChangeAnnotation, now}}}}}};
      if (!subsets.empty()) ep["subsets"] = subsets;
      logged("creating Endpoints", key.first, key.second,
             registry_.create(endpointsKind(), key.first, std::move(ep)).status());
    } else if (memberOr(*cur->second, "subsets", Json::array()) != subsets ||
               labelsJson(*cur->second) != epLabels) {
      Json next = *cur->second;
      next["metadata"]["labels"] = epLabels;
      next["metadata"]["annotations"][kLastChangeAnnotation] = now;
      if (subsets.empty()) {
        next.erase("subsets");
      } else {
        next["subsets"] = subsets;
      }
      logged("updating Endpoints", key.first, key.second,
             registry_.update(endpointsKind(), key.first, key.second, std::move(next)).status());
    }
  }

  // What this controller made for Services that are gone.
  for (const auto& [key, list] : slicesBySvc) {
    if (serviceNames.count(key)) continue;
    for (const Json* s : list) {
      logged("deleting EndpointSlice", key.first, nameOf(*s),
             registry_.remove(sliceKind(), key.first, nameOf(*s)).status());
    }
  }
  for (const auto& [key, ep] : endpointsByKey) {
    if (serviceNames.count(key) || annotation(*ep, kLastChangeAnnotation).empty()) continue;
    logged("deleting Endpoints", key.first, key.second,
           registry_.remove(endpointsKind(), key.first, key.second).status());
  }
  return written;
}

Status ensureKubernetesService(registry::Registry& registry, const std::string& advertiseIp,
                               int apiPort) {
  auto& allocator = registry.serviceAllocator();
  Json svc = {{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata",
               {{"name", "kubernetes"},
                {"namespace", "default"},
                {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}}}},
              {"spec",
               {{"type", "ClusterIP"},
                {"clusterIP", allocator.network().firstIp()},
                {"ports", Json::array({{{"name", "https"},
                                        {"port", 443},
                                        {"protocol", "TCP"},
                                        {"targetPort", apiPort}}})}}}};
  auto cur = registry.get(serviceKind(), "default", "kubernetes");
  if (!cur.isOk() && cur.status().code() != Code::kNotFound) return cur.status();
  if (!cur.isOk()) {
    auto r = registry.create(serviceKind(), "default", svc);
    if (!r.isOk() && r.status().code() != Code::kAlreadyExists) return r.status();
  } else if (api::lookupPath(*cur, "spec.ports") == nullptr ||
             *api::lookupPath(*cur, "spec.ports") != svc["spec"]["ports"]) {
    Json next = *cur;
    next["spec"]["ports"] = svc["spec"]["ports"];
    if (auto r = registry.update(serviceKind(), "default", "kubernetes", next); !r.isOk()) {
      return r.status();
    }
  }
  if (advertiseIp.empty()) return Status::ok();

  Json port = {{"name", "https"}, {"port", apiPort}, {"protocol", "TCP"}};
  Json subsets = Json::array(
      {{{"addresses", Json::array({{{"ip", advertiseIp}}})}, {"ports", Json::array({port})}}});
  Json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"kind", "EndpointSlice"},
                {"metadata",
                 {{"name", "kubernetes"},
                  {"namespace", "default"},
                  {"labels", {{kServiceNameLabel, "kubernetes"}}}}},
                {"addressType", "IPv4"},
                {"endpoints", Json::array({{{"addresses", Json::array({advertiseIp})},
                                            {"conditions", {{"ready", true}}}}})},
                {"ports", Json::array({port})}};
  Json ep = {{"apiVersion", "v1"},
             {"kind", "Endpoints"},
             {"metadata", {{"name", "kubernetes"}, {"namespace", "default"}}},
             {"subsets", subsets}};
  for (auto [kind, body, fields] :
       {std::tuple{&sliceKind(), &slice, std::vector<std::string>{"endpoints", "ports"}},
        std::tuple{&endpointsKind(), &ep, std::vector<std::string>{"subsets"}}}) {
    auto existing = registry.get(*kind, "default", "kubernetes");
    if (!existing.isOk()) {
      if (existing.status().code() != Code::kNotFound) return existing.status();
      auto r = registry.create(*kind, "default", *body);
      if (!r.isOk() && r.status().code() != Code::kAlreadyExists) return r.status();
      continue;
    }
    Json next = *existing;
    bool same = true;
    for (const auto& f : fields) {
      if (memberOr(next, f.c_str(), Json()) != (*body)[f]) same = false;
      next[f] = (*body)[f];
    }
    if (same) continue;
    if (auto r = registry.update(*kind, "default", "kubernetes", next); !r.isOk()) {
      return r.status();
    }
  }
  return Status::ok();
}

}  // namespace ep::controllers
