#include "cloudcore/auth/rbac.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cloudcore/controllers/controller_loop.h"
#include "cloudcore/registry/registry.h"
#include "common/api/kinds.h"
#include "common/thread_annotations.h"

namespace ep::auth {

using Json = nlohmann::json;

namespace {

bool has(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

std::vector<std::string> strings(const Json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string str(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<PolicyRule> rulesOf(const Json& obj) {
  std::vector<PolicyRule> rules;
  auto it = obj.find("rules");
  if (it == obj.end() || !it->is_array()) return rules;
  for (const auto& r : *it) {
    if (!r.is_object()) continue;
    rules.push_back({strings(r, "verbs"), strings(r, "apiGroups"), strings(r, "resources"),
                     strings(r, "resourceNames"), strings(r, "nonResourceURLs")});
  }
  return rules;
}

}  // namespace

std::vector<PolicyRule> policyRulesOf(const Json& role) {
  return rulesOf(role);
}

namespace {

bool subjectMatches(const RbacSubject& s, const std::string& bindingNs, const UserInfo& user) {
  if (s.kind == "User") return s.name == user.name;
  if (s.kind == "Group") return user.inGroup(s.name);
  if (s.kind == "ServiceAccount") {
    std::string ns = s.ns.empty() ? bindingNs : s.ns;
    return user.name == std::string(kServiceAccountUserPrefix) + ns + ":" + s.name;
  }
  return false;
}

bool appliesTo(const RbacBinding& b, const UserInfo& user) {
  for (const auto& s : b.subjects) {
    if (subjectMatches(s, b.ns, user)) return true;
  }
  return false;
}

std::string describe(const RbacBinding& b) {
  return (b.ns.empty() ? "ClusterRoleBinding \"" + b.name + "\""
                       : "RoleBinding \"" + b.ns + "/" + b.name + "\"") +
         " of " + b.roleKind + " \"" + b.roleName + "\"";
}

}  // namespace

bool ruleAllows(const PolicyRule& rule, const RequestAttributes& req) {
  if (!has(rule.verbs, "*") && !has(rule.verbs, req.verb)) return false;
  if (!req.resourceRequest) {
    for (const auto& u : rule.nonResourceURLs) {
      if (u == "*" || u == req.path) return true;
      if (!u.empty() && u.back() == '*' &&
          req.path.compare(0, u.size() - 1, u, 0, u.size() - 1) == 0) {
        return true;
      }
    }
    return false;
  }
  if (!has(rule.apiGroups, "*") && !has(rule.apiGroups, req.apiGroup)) return false;
  bool resourceOk = false;
  const std::string combined = req.resourceWithSubresource();
  for (const auto& r : rule.resources) {
    if (r == "*" || r == combined || (!req.subresource.empty() && r == "*/" + req.subresource)) {
      resourceOk = true;
      break;
    }
  }
  if (!resourceOk) return false;
  return rule.resourceNames.empty() || has(rule.resourceNames, req.name);
}

bool RbacPolicy::add(const Json& obj) {
  if (!obj.is_object()) return false;
  std::string kind = str(obj, "kind");
  const Json meta = obj.value("metadata", Json::object());
  if (!meta.is_object()) return false;
  std::string name = str(meta, "name");
  std::string ns = str(meta, "namespace");
  if (name.empty()) return false;
  if (kind == "ClusterRole") {
    clusterRoles[name] = rulesOf(obj);
    return true;
  }
  if (kind == "Role") {
    roles[{ns, name}] = rulesOf(obj);
    return true;
  }
  if (kind != "RoleBinding" && kind != "ClusterRoleBinding") return false;
  RbacBinding b;
  b.name = name;
  b.ns = kind == "RoleBinding" ? ns : "";
  const Json ref = obj.value("roleRef", Json::object());
  if (!ref.is_object()) return false;
  b.roleKind = str(ref, "kind");
  b.roleName = str(ref, "name");
  if (auto it = obj.find("subjects"); it != obj.end() && it->is_array()) {
    for (const auto& s : *it) {
      if (s.is_object())
        b.subjects.push_back({str(s, "kind"), str(s, "name"), str(s, "namespace")});
    }
  }
  if (kind == "ClusterRoleBinding") {
    if (b.roleKind != "ClusterRole") return false;
    clusterRoleBindings.push_back(std::move(b));
  } else {
    roleBindings.emplace(b.ns, std::move(b));
  }
  return true;
}

namespace {

// The rules of the role a binding refers to; null when that role does not exist.
const std::vector<PolicyRule>* boundRules(const RbacPolicy& p, const RbacBinding& b) {
  if (b.roleKind == "ClusterRole") {
    if (auto it = p.clusterRoles.find(b.roleName); it != p.clusterRoles.end()) return &it->second;
  } else if (b.roleKind == "Role") {
    if (auto it = p.roles.find({b.ns, b.roleName}); it != p.roles.end()) return &it->second;
  }
  return nullptr;
}

}  // namespace

Decision evaluateRbac(const RbacPolicy& p, const UserInfo& user, const RequestAttributes& req) {
  auto grants = [&](const RbacBinding& b) {
    const std::vector<PolicyRule>* rules = boundRules(p, b);
    if (rules == nullptr) return false;
    return std::any_of(rules->begin(), rules->end(),
                       [&](const PolicyRule& r) { return ruleAllows(r, req); });
  };
  for (const auto& b : p.clusterRoleBindings) {
    if (appliesTo(b, user) && grants(b)) return {true, "RBAC: allowed by " + describe(b)};
  }
  if (req.resourceRequest && !req.ns.empty()) {
    auto [lo, hi] = p.roleBindings.equal_range(req.ns);
    for (auto it = lo; it != hi; ++it) {
      if (appliesTo(it->second, user) && grants(it->second)) {
        return {true, "RBAC: allowed by " + describe(it->second)};
      }
    }
  }
  return {false, "RBAC: no binding allows it"};
}

RulesResult rbacRulesFor(const RbacPolicy& p, const UserInfo& user, const std::string& ns) {
  RulesResult out;
  auto collect = [&](const RbacBinding& b) {
    const std::vector<PolicyRule>* rules = boundRules(p, b);
    if (rules == nullptr) {
      if (!out.evaluationError.empty()) out.evaluationError += "; ";
      out.evaluationError += describe(b) + ": " + b.roleKind + " not found";
      return;
    }
    for (const auto& r : *rules) {
      if (!r.nonResourceURLs.empty()) {
        out.nonResourceRules.push_back({r.verbs, {}, {}, {}, r.nonResourceURLs});
      }
      if (!r.resources.empty()) {
        out.resourceRules.push_back({r.verbs, r.apiGroups, r.resources, r.resourceNames, {}});
      }
    }
  };
  for (const auto& b : p.clusterRoleBindings) {
    if (appliesTo(b, user)) collect(b);
  }
  if (!ns.empty()) {
    auto [lo, hi] = p.roleBindings.equal_range(ns);
    for (auto it = lo; it != hi; ++it) {
      if (appliesTo(it->second, user)) collect(it->second);
    }
  }
  return out;
}

std::string forbiddenMessage(const UserInfo& user, const RequestAttributes& req) {
  std::string who = "User \"" + user.name + "\"";
  if (!req.resourceRequest) {
    return "forbidden: " + who + " cannot " + req.verb + " path \"" + req.path + "\"";
  }
  std::string what = req.resource;
  if (!req.name.empty()) what += " \"" + req.name + "\"";
  std::string resource = req.resourceWithSubresource();
  std::string scope =
      req.ns.empty() ? "at the cluster scope" : "in the namespace \"" + req.ns + "\"";
  return what + " is forbidden: " + who + " cannot " + req.verb + " resource \"" + resource +
         "\" in API group \"" + req.apiGroup + "\" " + scope;
}

RbacAuthorizer::RbacAuthorizer(registry::Registry& registry)
    : registry_(registry), policy_(std::make_shared<RbacPolicy>()) {}

RbacAuthorizer::~RbacAuthorizer() {
  stop();
}

namespace {

const std::vector<const api::KindInfo*>& rbacKinds() {
  static const std::vector<const api::KindInfo*> kinds = {
      api::findByApiVersionKind("rbac.authorization.k8s.io/v1", "ClusterRole"),
      api::findByApiVersionKind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
      api::findByApiVersionKind("rbac.authorization.k8s.io/v1", "Role"),
      api::findByApiVersionKind("rbac.authorization.k8s.io/v1", "RoleBinding")};
  return kinds;
}

}  // namespace

Status RbacAuthorizer::reload() {
  auto policy = std::make_shared<RbacPolicy>();
  for (const auto* kind : rbacKinds()) {
    // A damaged role or binding is left out: RBAC only grants, so what cannot be read grants
    // nothing (fail closed) and the rest of the policy still applies.
    registry::ListQuery all;
    all.skipDamaged = true;
    auto list = registry_.list(*kind, "", all);
    if (!list) return list.status();
    for (const auto& w : list->warnings) spdlog::warn("rbac: {}", w);
    for (auto& obj : list->items) {
      if (!obj.contains("kind")) obj["kind"] = kind->kind;
      policy->add(obj);
    }
  }
  setPolicy(std::move(policy));
  return Status::ok();
}

Status RbacAuthorizer::start() {
  if (auto s = reload(); !s.isOk()) return s;
  loop_ = std::make_unique<controllers::ControllerLoop>(
      "rbac", registry_, rbacKinds(),
      [](const api::KindInfo&, const registry::WatchEvent&) { return true; },
      [this] {
        if (auto s = reload(); !s.isOk()) spdlog::warn("rbac: reloading policy: {}", s.toString());
      },
      std::chrono::minutes(5), std::chrono::milliseconds(0));
  return loop_->start();
}

void RbacAuthorizer::stop() {
  if (loop_) loop_->stop();
  loop_.reset();
}

void RbacAuthorizer::setPolicy(std::shared_ptr<const RbacPolicy> policy) {
  MutexLock l(mu_);
  policy_ = std::move(policy);
}

Decision RbacAuthorizer::authorize(const UserInfo& user, const RequestAttributes& req) const {
  std::shared_ptr<const RbacPolicy> policy;
  {
    MutexLock l(mu_);
    policy = policy_;
  }
  return evaluateRbac(*policy, user, req);
}

RulesResult RbacAuthorizer::rulesFor(const UserInfo& user, const std::string& ns) const {
  std::shared_ptr<const RbacPolicy> policy;
  {
    MutexLock l(mu_);
    policy = policy_;
  }
  return rbacRulesFor(*policy, user, ns);
}

}  // namespace ep::auth
