#include "cloudcore/auth/node_authorizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/api/models.h"
#include "common/api/object_util.h"

namespace ep::auth {

using Json = nlohmann::json;

namespace {

bool isOneOf(const std::string& v, std::initializer_list<const char*> list) {
  return std::any_of(list.begin(), list.end(), [&](const char* x) { return v == x; });
}

const Json& member(const Json& obj, const char* key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string str(const Json& obj, const char* key) {
  const Json& v = member(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

void addName(std::vector<std::string>& out, const std::string& name) {
  if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
}

}  // namespace

std::vector<std::string> podReferences(const Json& pod, const std::string& resource) {
  std::vector<std::string> out;
  const bool secrets = resource == "secrets";
  const Json& spec = member(pod, "spec");
  // Volumes, including projected sources.
  const Json& volumes = member(spec, "volumes");
  if (volumes.is_array()) {
    for (const auto& v : volumes) {
      if (secrets) {
        addName(out, str(member(v, "secret"), "secretName"));
      } else {
        addName(out, str(member(v, "configMap"), "name"));
      }
      const Json& sources = member(member(v, "projected"), "sources");
      if (sources.is_array()) {
        for (const auto& s : sources)
          addName(out, str(member(s, secrets ? "secret" : "configMap"), "name"));
      }
    }
  }
  // Environment of every container kind.
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    const Json& containers = member(spec, list);
    if (!containers.is_array()) continue;
    for (const auto& c : containers) {
      const Json& env = member(c, "env");
      if (env.is_array()) {
        for (const auto& e : env) {
          addName(out,
                  str(member(member(e, "valueFrom"), secrets ? "secretKeyRef" : "configMapKeyRef"),
                      "name"));
        }
      }
      const Json& envFrom = member(c, "envFrom");
      if (envFrom.is_array()) {
        for (const auto& e : envFrom)
          addName(out, str(member(e, secrets ? "secretRef" : "configMapRef"), "name"));
      }
    }
  }
  if (secrets) {
    const Json& pulls = member(spec, "imagePullSecrets");
    if (pulls.is_array()) {
      for (const auto& p : pulls) addName(out, str(p, "name"));
    }
  }
  return out;
}

NodeAuthorizer::NodeAuthorizer(registry::Registry& registry) : registry_(registry) {}

bool NodeAuthorizer::boundTo(const std::string& apiVersion, const std::string& kind,
                             const std::string& ns, const std::string& name,
                             const std::string& node) const {
  const api::KindInfo* k = api::findByApiVersionKind(apiVersion, kind);
  if (k == nullptr || name.empty()) return false;
  auto obj = registry_.get(*k, ns, name);
  return obj.isOk() && api::stringAt(*obj, "spec.nodeName") == node;
}

bool NodeAuthorizer::referencedByPodOf(const std::string& resource, const std::string& ns,
                                       const std::string& name, const std::string& node) const {
  if (name.empty() || ns.empty()) return false;
  const api::KindInfo* pods = api::findByApiVersionKind("v1", "Pod");
  registry::ListQuery q;
  q.fieldSelector = "spec.nodeName=" + node;
  auto list = registry_.list(*pods, ns, q);
  if (!list.isOk()) return false;
  const api::KindInfo* models = api::findByApiVersionKind("sedna.io/v1alpha1", "Model");
  for (const auto& pod : list->items) {
    auto refs = podReferences(pod, resource);
    if (std::find(refs.begin(), refs.end(), name) != refs.end()) return true;
    // The pull secret of a Model a pod's model volume uses (docs/models.md).
    if (resource != "secrets" || models == nullptr) continue;
    for (const auto& v : api::modelVolumes(pod)) {
      auto model = registry_.get(*models, ns, v.model);
      if (!model.isOk() || api::modelCredentialName(*model) != name) continue;
      // Only a pull secret's type (what cloudcore sends for it, refs.h).
      const api::KindInfo* secretKind = api::findByApiVersionKind("v1", "Secret");
      if (secretKind == nullptr) return false;
      auto secret = registry_.get(*secretKind, ns, name);
      return secret.isOk() && api::isPullSecretType(api::stringAt(*secret, "type"));
    }
  }
  return false;
}

RulesResult NodeAuthorizer::rulesFor(const UserInfo& user, const std::string&) const {
  if (nodeNameOf(user).empty()) return {};
  return {{}, {}, true, "node authorizer does not support user rule resolution"};
}

Decision NodeAuthorizer::authorize(const UserInfo& user, const RequestAttributes& a) const {
  const std::string node = nodeNameOf(user);
  if (node.empty() || !a.resourceRequest) return {false, ""};
  auto allow = [&](const std::string& why) { return Decision{true, "node authorizer: " + why}; };
  const std::string& r = a.resource;
  const std::string& v = a.verb;
  if (a.apiGroup.empty()) {
    if (r == "nodes" && a.name == node && (a.subresource.empty() || a.subresource == "status") &&
        isOneOf(v, {"get", "update", "patch"})) {
      return allow("its own Node");
    }
    if (r == "pods" && a.subresource.empty() && v == "get" &&
        boundTo("v1", "Pod", a.ns, a.name, node)) {
      return allow("a pod bound to it");
    }
    if (r == "pods" && a.subresource == "status" && isOneOf(v, {"get", "update", "patch"}) &&
        boundTo("v1", "Pod", a.ns, a.name, node)) {
      return allow("the status of a pod bound to it");
    }
    if (r == "events" && a.subresource.empty() && isOneOf(v, {"create", "update", "patch"})) {
      return allow("events");
    }
    if ((r == "secrets" || r == "configmaps") && a.subresource.empty() && v == "get" &&
        referencedByPodOf(r, a.ns, a.name, node)) {
      return allow(r + " a pod bound to it uses");
    }
    return {false, ""};
  }
  if (a.apiGroup == "devices.kubeedge.io" && r == "devices") {
    bool read = a.subresource.empty() && v == "get";
    bool status = a.subresource == "status" && isOneOf(v, {"get", "update", "patch"});
    if ((read || status) && boundTo("devices.kubeedge.io/v1beta1", "Device", a.ns, a.name, node)) {
      return allow("a device bound to it");
    }
  }
  return {false, ""};
}

}  // namespace ep::auth
