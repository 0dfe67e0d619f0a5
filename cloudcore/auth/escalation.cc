#include "cloudcore/auth/escalation.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cloudcore/auth/rbac.h"
#include "cloudcore/registry/registry.h"

namespace ep::auth {

using Json = nlohmann::json;

namespace {

constexpr const char* kRbacGroup = "rbac.authorization.k8s.io";

bool has(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

bool verbCovered(const PolicyRule& owner, const std::string& verb) {
  return has(owner.verbs, "*") || has(owner.verbs, verb);
}

// Kubernetes' resource covering: "*", the exact name, or "*/sub" for "x/sub".
bool resourceCovered(const PolicyRule& owner, const std::string& resource) {
  if (has(owner.resources, "*") || has(owner.resources, resource)) return true;
  auto slash = resource.find('/');
  return slash != std::string::npos && has(owner.resources, "*" + resource.substr(slash));
}

bool urlCovered(const PolicyRule& owner, const std::string& url) {
  for (const auto& u : owner.nonResourceURLs) {
    if (u == "*" || u == url) return true;
    if (!u.empty() && u.back() == '*' && url.compare(0, u.size() - 1, u, 0, u.size() - 1) == 0) {
      return true;
    }
  }
  return false;
}

bool atomCovered(const std::vector<PolicyRule>& owner, const PolicyRule& atom) {
  for (const auto& o : owner) {
    const std::string& verb = atom.verbs.front();
    if (!verbCovered(o, verb)) continue;
    if (!atom.nonResourceURLs.empty()) {
      if (urlCovered(o, atom.nonResourceURLs.front())) return true;
      continue;
    }
    if (!(has(o.apiGroups, "*") || has(o.apiGroups, atom.apiGroups.front()))) continue;
    if (!resourceCovered(o, atom.resources.front())) continue;
    if (o.resourceNames.empty()) return true;
    if (!atom.resourceNames.empty() && has(o.resourceNames, atom.resourceNames.front())) {
      return true;
    }
  }
  return false;
}

std::string quoteList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " \"" : "\"") + v[i] + "\"";
  return out + "]";
}

std::string describeRule(const PolicyRule& r) {
  if (!r.nonResourceURLs.empty()) {
    return "{NonResourceURLs:" + quoteList(r.nonResourceURLs) + ", Verbs:" + quoteList(r.verbs) +
           "}";
  }
  std::string s = "{APIGroups:" + quoteList(r.apiGroups) + ", Resources:" + quoteList(r.resources);
  if (!r.resourceNames.empty()) s += ", ResourceNames:" + quoteList(r.resourceNames);
  return s + ", Verbs:" + quoteList(r.verbs) + "}";
}

}  // namespace

std::vector<PolicyRule> uncoveredRules(const std::vector<PolicyRule>& owner,
                                       const std::vector<PolicyRule>& requested) {
  std::vector<PolicyRule> missing;
  for (const auto& r : requested) {
    for (const auto& verb : r.verbs) {
      for (const auto& url : r.nonResourceURLs) {
        PolicyRule atom{{verb}, {}, {}, {}, {url}};
        if (!atomCovered(owner, atom)) missing.push_back(std::move(atom));
      }
      for (const auto& group : r.apiGroups) {
        for (const auto& resource : r.resources) {
          std::vector<std::string> names = r.resourceNames;
          if (names.empty()) names.push_back("");
          for (const auto& name : names) {
            PolicyRule atom{{verb}, {group}, {resource}, {}, {}};
            if (!name.empty()) atom.resourceNames = {name};
            if (!atomCovered(owner, atom)) missing.push_back(std::move(atom));
          }
        }
      }
    }
  }
  return missing;
}

RbacEscalationCheck::RbacEscalationCheck(registry::Registry& registry,
                                         std::vector<const Authorizer*> authorizers)
    : registry_(registry), authorizers_(std::move(authorizers)) {}

bool RbacEscalationCheck::allowed(const UserInfo& user, const std::string& verb,
                                  const std::string& resource, const std::string& ns,
                                  const std::string& name) const {
  RequestAttributes a;
  a.resourceRequest = true;
  a.verb = verb;
  a.apiGroup = kRbacGroup;
  a.apiVersion = "v1";
  a.resource = resource;
  a.ns = ns;
  a.name = name;
  return std::any_of(authorizers_.begin(), authorizers_.end(),
                     [&](const Authorizer* z) { return z->authorize(user, a).allowed; });
}

std::vector<PolicyRule> RbacEscalationCheck::heldRules(const UserInfo& user,
                                                       const std::string& ns) const {
  std::vector<PolicyRule> held;
  for (const auto* z : authorizers_) {
    auto r = z->rulesFor(user, ns);
    held.insert(held.end(), r.resourceRules.begin(), r.resourceRules.end());
    held.insert(held.end(), r.nonResourceRules.begin(), r.nonResourceRules.end());
  }
  return held;
}

Status RbacEscalationCheck::admit(const UserInfo& user, const api::KindInfo& kind,
                                  const std::string& ns, const Json* current,
                                  const Json& next) const {
  if (kind.group != kRbacGroup) return Status::ok();
  const bool isRole = kind.kind == "Role" || kind.kind == "ClusterRole";
  const bool isBinding = kind.kind == "RoleBinding" || kind.kind == "ClusterRoleBinding";
  if (!isRole && !isBinding) return Status::ok();
  const std::string scope = kind.namespaced ? ns : "";
  const std::string name = next.value("metadata", Json::object()).value("name", "");
  const std::string what = kind.plural + "." + kind.group + " \"" + name + "\"";
  auto groups = [&] {
    std::string g = "[";
    for (size_t i = 0; i < user.groups.size(); ++i) g += (i ? " \"" : "\"") + user.groups[i] + "\"";
    return g + "]";
  };

  std::vector<PolicyRule> requested;
  if (isRole) {
    if (current != nullptr && current->value("rules", Json()) == next.value("rules", Json())) {
      return Status::ok();
    }
    if (allowed(user, "escalate", kind.plural, scope, name)) return Status::ok();
    requested = policyRulesOf(next);
  } else {
    if (current != nullptr && current->value("roleRef", Json()) == next.value("roleRef", Json())) {
      return Status::ok();  // roleRef is immutable: nothing more is granted
    }
    const Json ref = next.value("roleRef", Json::object());
    const std::string refKind = ref.is_object() ? ref.value("kind", "") : "";
    const std::string refName = ref.is_object() ? ref.value("name", "") : "";
    const bool clusterRole = refKind == "ClusterRole";
    const std::string refResource = clusterRole ? "clusterroles" : "roles";
    if (allowed(user, "bind", refResource, clusterRole ? "" : scope, refName)) return Status::ok();
    const api::KindInfo* refInfo = api::findByApiVersionKind(std::string(kRbacGroup) + "/v1",
                                                             clusterRole ? "ClusterRole" : "Role");
    if (refInfo == nullptr || refName.empty()) {
      return Status(Code::kForbidden, what + " is forbidden: roleRef names no role");
    }
    auto role = registry_.get(*refInfo, clusterRole ? "" : scope, refName);
    if (!role.isOk()) {
      if (role.status().code() != Code::kNotFound) return role.status();
      return Status(Code::kForbidden, what + " is forbidden: " + refKind + " \"" + refName +
                                          "\" not found, and user \"" + user.name +
                                          "\" may not bind it");
    }
    requested = policyRulesOf(*role);
  }
  auto missing = uncoveredRules(heldRules(user, scope), requested);
  if (missing.empty()) return Status::ok();
  std::string msg = what + " is forbidden: user \"" + user.name + "\" (groups=" + groups() +
                    ") is attempting to grant RBAC permissions not currently held:";
  for (const auto& m : missing) msg += "\n" + describeRule(m);
  return Status(Code::kForbidden, msg);
}

}  // namespace ep::auth
