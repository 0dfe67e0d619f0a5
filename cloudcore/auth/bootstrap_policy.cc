// The default ClusterRoles and ClusterRoleBindings, modelled on Kubernetes' bootstrap policy
// and extended with this platform's kinds (KubeEdge devices and rules, sedna models).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cloudcore/auth/rbac.h"
#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/api/object_util.h"

namespace ep::auth {

using Json = nlohmann::json;

namespace {

const Json kRead = {"get", "list", "watch"};
const Json kWrite = {"create", "delete", "deletecollection", "patch", "update"};
const Json kAll = {"create", "delete", "deletecollection", "get",
                   "list",   "patch",  "update",           "watch"};

Json rule(Json verbs, Json groups, Json resources) {
  return {{"verbs", std::move(verbs)},
          {"apiGroups", std::move(groups)},
          {"resources", std::move(resources)}};
}

Json urlRule(Json verbs, Json urls) {
  return {{"verbs", std::move(verbs)}, {"nonResourceURLs", std::move(urls)}};
}

Json meta(const std::string& name) {
  return {{"name", name},
          {"labels", {{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
          {"annotations", {{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}};
}

Json clusterRole(const std::string& name, Json rules) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "ClusterRole"},
          {"metadata", meta(name)},
          {"rules", std::move(rules)}};
}

Json clusterRoleBinding(const std::string& name, const std::string& role, Json subjects) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "ClusterRoleBinding"},
          {"metadata", meta(name)},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", role}}},
          {"subjects", std::move(subjects)}};
}

Json group(const std::string& name) {
  return {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", name}};
}

// What view may read: everything namespaced an application team uses, except Secrets, and, bound
// cluster-wide, the nodes (unlike Kubernetes' view: an edge fleet's read-only operator watches its
// nodes first, e.g. on the dashboard's Nodes page; docs/security.md).
Json viewRules() {
  return Json::array({
      rule(kRead, {""}, {"nodes", "nodes/status"}),
      rule(kRead, {""},
           {"pods", "pods/log", "pods/status", "configmaps", "events", "serviceaccounts",
            "namespaces", "namespaces/status", "services", "services/status", "endpoints"}),
      rule(kRead, {"discovery.k8s.io"}, {"endpointslices"}),
      rule(kRead, {"apps"},
           {"deployments", "deployments/scale", "deployments/status", "replicasets",
            "replicasets/scale", "replicasets/status"}),
      rule(kRead, {"devices.kubeedge.io"},
           {"devices", "devices/status", "devices/data", "devicemodels"}),
      rule(kRead, {"rules.kubeedge.io"}, {"rules", "rules/status", "rules/data", "ruleendpoints"}),
      rule(kRead, {"sedna.io"}, {"models", "models/status"}),
      // kubectl top (metrics-server's system:aggregated-metrics-reader, aggregated to view).
      rule({"get", "list"}, {"metrics.k8s.io"}, {"pods", "nodes"}),
  });
}

// What edit may do on top of view: change those objects, read and write Secrets, exec into
// pods, and mint tokens for ServiceAccounts.
Json editRules() {
  Json rules = viewRules();
  for (Json r : {
           rule(kAll, {""},
                {"pods", "configmaps", "secrets", "serviceaccounts", "events", "services",
                 "endpoints"}),
           rule(kAll, {"discovery.k8s.io"}, {"endpointslices"}),
           rule({"create", "get"}, {""}, {"pods/exec", "pods/attach", "pods/portforward"}),
           rule({"create"}, {""}, {"serviceaccounts/token", "pods/eviction"}),
           rule(kAll, {"apps"},
                {"deployments", "deployments/scale", "deployments/rollback", "replicasets",
                 "replicasets/scale"}),
           rule(kAll, {"devices.kubeedge.io"}, {"devices", "devicemodels"}),
           rule(kAll, {"rules.kubeedge.io"}, {"rules", "ruleendpoints", "rules/proxy"}),
           rule(kAll, {"sedna.io"}, {"models", "models/upload"}),
       }) {
    rules.push_back(std::move(r));
  }
  return rules;
}

Json adminRules() {
  Json rules = editRules();
  rules.push_back(rule(kAll, {"rbac.authorization.k8s.io"}, {"roles", "rolebindings"}));
  rules.push_back(rule({"create"}, {"authorization.k8s.io"}, {"localsubjectaccessreviews"}));
  return rules;
}

}  // namespace

std::vector<Json> bootstrapPolicyObjects() {
  return {
      clusterRole("cluster-admin", Json::array({rule({"*"}, {"*"}, {"*"}), urlRule({"*"}, {"*"})})),
      clusterRole("admin", adminRules()),
      clusterRole("edit", editRules()),
      clusterRole("view", viewRules()),
      clusterRole("system:discovery",
                  Json::array({urlRule({"get"}, {"/api", "/api/*", "/apis", "/apis/*", "/openapi",
                                                 "/openapi/*", "/version", "/version/"})})),
      clusterRole(
          "system:basic-user",
          Json::array({rule({"create"}, {"authorization.k8s.io"},
                            {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
                       rule({"create"}, {"authentication.k8s.io"}, {"selfsubjectreviews"})})),
      clusterRole("system:public-info-viewer",
                  Json::array({urlRule(
                      {"get"}, {"/healthz", "/livez", "/readyz", "/version", "/version/"})})),
      clusterRoleBinding("cluster-admin", "cluster-admin", Json::array({group(kGroupMasters)})),
      clusterRoleBinding("system:discovery", "system:discovery",
                         Json::array({group(kGroupAuthenticated)})),
      clusterRoleBinding("system:basic-user", "system:basic-user",
                         Json::array({group(kGroupAuthenticated)})),
      clusterRoleBinding("system:public-info-viewer", "system:public-info-viewer",
                         Json::array({group(kGroupAuthenticated), group(kGroupUnauthenticated)})),
  };
}

Status ensureBootstrapPolicy(registry::Registry& registry) {
  for (Json obj : bootstrapPolicyObjects()) {
    const auto* kind = api::findByApiVersionKind(obj["apiVersion"].get<std::string>(),
                                                 obj["kind"].get<std::string>());
    if (kind == nullptr) return internalError("bootstrap policy: unknown kind");
    std::string name = obj["metadata"]["name"];
    auto existing = registry.get(*kind, "", name);
    if (existing) {
      // As Kubernetes reconciles its bootstrap roles: rules a newer version added reach a role
      // created by an older one, unless its autoupdate annotation is "false"; rules are only
      // ever added.
      if (kind->kind != "ClusterRole" ||
          api::annotationsOf(*existing)["rbac.authorization.kubernetes.io/autoupdate"] == "false") {
        continue;
      }
      Json next = *existing;
      if (!next["rules"].is_array()) next["rules"] = Json::array();
      bool changed = false;
      for (const auto& rule : obj["rules"]) {
        if (std::find(next["rules"].begin(), next["rules"].end(), rule) == next["rules"].end()) {
          next["rules"].push_back(rule);
          changed = true;
        }
      }
      if (!changed) continue;
      if (auto u = registry.update(*kind, "", name, std::move(next)); !u.isOk()) {
        return Status(u.status().code(),
                      "updating ClusterRole \"" + name + "\": " + u.status().message());
      }
      spdlog::info("rbac: added the new default rules to ClusterRole {}", name);
      continue;
    }
    if (existing.status().code() != Code::kNotFound) return existing.status();
    auto created = registry.create(*kind, "", std::move(obj));
    if (!created && created.status().code() != Code::kAlreadyExists) {
      return Status(created.status().code(),
                    "creating " + kind->kind + " \"" + name + "\": " + created.status().message());
    }
    spdlog::info("rbac: created default {} {}", kind->kind, name);
  }
  return Status::ok();
}

}  // namespace ep::auth
