#include "cloudcore/cloudhub/refs.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/api/models.h"
#include "common/api/object_util.h"
#include "common/api/upgrades.h"

namespace ep::cloudhub {
namespace {

using Json = nlohmann::json;

void addRef(Placement& p, const char* resource, const std::string& ns, const Json* name) {
  if (name == nullptr || !name->is_string()) return;
  const auto& s = name->get_ref<const std::string&>();
  if (s.empty()) return;
  p.refs.push_back({resource, ns, s});
}

void addNode(Placement& p, const Json& obj, std::string_view path) {
  std::string node = api::stringAt(obj, path);
  if (!node.empty() && std::find(p.nodes.begin(), p.nodes.end(), node) == p.nodes.end()) {
    p.nodes.push_back(std::move(node));
  }
}

const Json* field(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

void containerRefs(Placement& p, const std::string& ns, const Json* containers) {
  if (containers == nullptr || !containers->is_array()) return;
  for (const auto& c : *containers) {
    if (const Json* env = field(c, "env"); env && env->is_array()) {
      for (const auto& e : *env) {
        const Json* from = field(e, "valueFrom");
        if (from == nullptr) continue;
        if (const Json* r = field(*from, "configMapKeyRef"))
          addRef(p, kConfigMaps, ns, field(*r, "name"));
        if (const Json* r = field(*from, "secretKeyRef"))
          addRef(p, kSecrets, ns, field(*r, "name"));
      }
    }
    if (const Json* envFrom = field(c, "envFrom"); envFrom && envFrom->is_array()) {
      for (const auto& e : *envFrom) {
        if (const Json* r = field(e, "configMapRef")) addRef(p, kConfigMaps, ns, field(*r, "name"));
        if (const Json* r = field(e, "secretRef")) addRef(p, kSecrets, ns, field(*r, "name"));
      }
    }
  }
}

void podRefs(Placement& p, const std::string& ns, const Json& pod) {
  const Json* spec = field(pod, "spec");
  if (spec == nullptr) return;
  if (const Json* volumes = field(*spec, "volumes"); volumes && volumes->is_array()) {
    for (const auto& v : *volumes) {
      if (const Json* cm = field(v, "configMap")) addRef(p, kConfigMaps, ns, field(*cm, "name"));
      if (const Json* s = field(v, "secret")) addRef(p, kSecrets, ns, field(*s, "secretName"));
      // A model volume (docs/models.md): the node needs the Model to fetch and mount its file.
      if (const Json* csi = field(v, "csi")) {
        const Json* driver = field(*csi, "driver");
        const Json* attrs = field(*csi, "volumeAttributes");
        if (driver && driver->is_string() && *driver == api::kModelDriver && attrs) {
          addRef(p, kModels, ns, field(*attrs, "model"));
        }
      }
      const Json* projected = field(v, "projected");
      const Json* sources = projected ? field(*projected, "sources") : nullptr;
      if (sources == nullptr || !sources->is_array()) continue;
      for (const auto& src : *sources) {
        if (const Json* cm = field(src, "configMap"))
          addRef(p, kConfigMaps, ns, field(*cm, "name"));
        if (const Json* s = field(src, "secret")) addRef(p, kSecrets, ns, field(*s, "name"));
      }
    }
  }
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    containerRefs(p, ns, field(*spec, list));
  }
  if (const Json* pulls = field(*spec, "imagePullSecrets"); pulls && pulls->is_array()) {
    for (const auto& s : *pulls) addRef(p, kSecrets, ns, field(s, "name"));
  }
}

}  // namespace

const std::vector<std::string>& trackedResources() {
  static const auto* kAll = new std::vector<std::string>{
      kPods,          kConfigMaps, kSecrets,        kDevices,  kDeviceModels,    kRules,
      kRuleEndpoints, kModels,     kEndpointSlices, kServices, kNodeUpgradeJobs, kEdgecoreReleases};
  return *kAll;
}

bool isTracked(const std::string& resource) {
  const auto& all = trackedResources();
  return std::find(all.begin(), all.end(), resource) != all.end();
}

Placement placementOf(const std::string& resource, const std::string& ns, const Json& object) {
  Placement p;
  if (!object.is_object()) return p;
  if (resource == kPods) {
    addNode(p, object, "spec.nodeName");
    if (!p.nodes.empty()) podRefs(p, ns, object);
  } else if (resource == kDevices) {
    addNode(p, object, "spec.nodeName");
    if (const Json* ref = api::lookupPath(object, "spec.deviceModelRef")) {
      addRef(p, kDeviceModels, ns, field(*ref, "name"));
    }
  } else if (resource == kRules) {
    addNode(p, object, "spec.sourceResource.node_name");
    addNode(p, object, "spec.targetResource.node_name");
    if (const Json* spec = field(object, "spec")) {
      addRef(p, kRuleEndpoints, ns, field(*spec, "source"));
      addRef(p, kRuleEndpoints, ns, field(*spec, "target"));
    }
  } else if (resource == kModels) {
    addNode(p, object, "spec.nodeName");
    // An OCI artifact's pull secret (docs/models.md): nodes whose pods use the Model need it.
    if (const Json* spec = field(object, "spec")) {
      if (const Json* cred = field(*spec, "credentialName");
          cred && cred->is_string() && !cred->get<std::string>().empty()) {
        p.viaRefs.push_back({kSecrets, ns, cred->get<std::string>()});
      }
    }
  } else if (resource == kNodeUpgradeJobs) {
    // Edgecore upgrades (docs/upgrades.md): the nodes it is upgrading now get the job and the
    // release whose binary they download. Cluster-scoped, as are releases.
    for (auto& n : api::upgradingNodesOf(object)) {
      if (std::find(p.nodes.begin(), p.nodes.end(), n) == p.nodes.end()) {
        p.nodes.push_back(std::move(n));
      }
    }
    if (!p.nodes.empty()) {
      if (const Json* spec = field(object, "spec")) {
        addRef(p, kEdgecoreReleases, "", field(*spec, "version"));
      }
    }
  } else if (resource == kEndpointSlices) {
    // A node gets the slices with an endpoint on it and their Services: what its service proxy
    // needs to reach the endpoints it runs (docs/services.md).
    if (const Json* eps = field(object, "endpoints"); eps && eps->is_array()) {
      for (const auto& e : *eps) addNode(p, e, "nodeName");
    }
    if (!p.nodes.empty()) {
      if (const Json* labels = api::lookupPath(object, "metadata.labels");
          labels && labels->is_object()) {
        addRef(p, kServices, ns, field(*labels, "kubernetes.io/service-name"));
      }
    }
  }
  std::sort(p.refs.begin(), p.refs.end());
  p.refs.erase(std::unique(p.refs.begin(), p.refs.end()), p.refs.end());
  return p;
}

}  // namespace ep::cloudhub
