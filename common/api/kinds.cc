#include "common/api/kinds.h"

#include <algorithm>
#include <cctype>

namespace ep::api {
namespace {

std::vector<KindInfo> buildKinds() {
  std::vector<KindInfo> k;
  auto add = [&](std::string group, std::string kind, std::string plural,
                 std::vector<std::string> shortNames, bool namespaced, bool hasStatus, bool builtin,
                 std::string version = "v1") {
    KindInfo info;
    info.group = std::move(group);
    info.version = std::move(version);
    info.singular = kind;
    std::transform(info.singular.begin(), info.singular.end(), info.singular.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    info.kind = std::move(kind);
    info.plural = std::move(plural);
    info.shortNames = std::move(shortNames);
    info.namespaced = namespaced;
    info.hasStatus = hasStatus;
    info.builtin = builtin;
    if (info.kind == "Pod" || info.kind == "Deployment" || info.kind == "ReplicaSet" ||
        info.kind == "Service") {
      info.categories = {"all"};
    }
    k.push_back(std::move(info));
  };
  add("", "Namespace", "namespaces", {"ns"}, false, true, true);
  add("", "Node", "nodes", {"no"}, false, true, true);
  add("", "Pod", "pods", {"po"}, true, true, true);
  add("", "ConfigMap", "configmaps", {"cm"}, true, false, true);
  add("", "Secret", "secrets", {}, true, false, true);
  add("", "Event", "events", {"ev"}, true, false, true);
  add("", "ServiceAccount", "serviceaccounts", {"sa"}, true, false, true);
  add("", "Service", "services", {"svc"}, true, true, true);
  add("", "Endpoints", "endpoints", {"ep"}, true, false, true);
  add("apps", "Deployment", "deployments", {"deploy"}, true, true, true);
  add("apps", "ReplicaSet", "replicasets", {"rs"}, true, true, true);
  add("discovery.k8s.io", "EndpointSlice", "endpointslices", {}, true, false, true);
  add("coordination.k8s.io", "Lease", "leases", {}, true, false, true);
  add("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", {}, false, false, true);
  add("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", {}, false, false,
      true);
  add("rbac.authorization.k8s.io", "Role", "roles", {}, true, false, true);
  add("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", {}, true, false, true);
  add("devices.kubeedge.io", "DeviceModel", "devicemodels", {"dm"}, true, false, false, "v1beta1");
  add("devices.kubeedge.io", "Device", "devices", {"dev"}, true, true, false, "v1beta1");
  add("rules.kubeedge.io", "RuleEndpoint", "ruleendpoints", {"re"}, true, false, false);
  add("rules.kubeedge.io", "Rule", "rules", {"rl"}, true, true, false);
  add("sedna.io", "Model", "models", {"mdl"}, true, true, false, "v1alpha1");
  add("operations.kubeedge.io", "NodeUpgradeJob", "nodeupgradejobs", {"nuj"}, false, true, false,
      "v1alpha1");
  add("upgrade.edgeplane.io", "EdgecoreRelease", "edgecorereleases", {"ecr"}, false, false, false,
      "v1alpha1");
  return k;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

const std::vector<KindInfo>& allKinds() {
  static const auto* kinds = new std::vector<KindInfo>(buildKinds());
  return *kinds;
}

const KindInfo* findByApiVersionKind(std::string_view apiVersion, std::string_view kind) {
  for (const auto& k : allKinds()) {
    if (k.kind == kind && k.apiVersion() == apiVersion) return &k;
  }
  return nullptr;
}

const KindInfo* findByResource(std::string_view group, std::string_view version,
                               std::string_view plural) {
  for (const auto& k : allKinds()) {
    if (k.group == group && k.version == version && k.plural == plural) return &k;
  }
  return nullptr;
}

const KindInfo* findByUserName(std::string_view name) {
  std::string_view base = name;
  std::string_view group;
  bool qualified = false;
  if (auto dot = name.find('.'); dot != std::string_view::npos) {
    base = name.substr(0, dot);
    group = name.substr(dot + 1);
    qualified = true;
  }
  for (const auto& k : allKinds()) {
    if (qualified && !iequals(k.group, group)) continue;
    if (iequals(base, k.plural) || iequals(base, k.singular) || iequals(base, k.kind)) return &k;
    for (const auto& s : k.shortNames) {
      if (iequals(base, s)) return &k;
    }
  }
  return nullptr;
}

std::vector<std::string> apiGroups() {
  std::vector<std::string> groups;
  for (const auto& k : allKinds()) {
    if (k.group.empty()) continue;
    if (std::find(groups.begin(), groups.end(), k.group) == groups.end()) groups.push_back(k.group);
  }
  return groups;
}

}  // namespace ep::api
