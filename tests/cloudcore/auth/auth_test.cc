#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cloudcore/auth/authenticator.h"
#include "cloudcore/auth/escalation.h"
#include "cloudcore/auth/node_authorizer.h"
#include "cloudcore/auth/rbac.h"
#include "cloudcore/auth/request_info.h"
#include "common/api/kinds.h"
#include "tests/testing/store_fixture.h"

namespace ep::auth {
namespace {

using Json = nlohmann::json;

http::ServerRequest request(const std::string& method, const std::string& path,
                            std::map<std::string, std::string> query = {}) {
  http::ServerRequest r;
  r.method = method;
  r.path = path;
  r.target = path;
  r.query = std::move(query);
  return r;
}

TEST(CsvTest, SplitsQuotedFields) {
  auto f = splitCsvLine(R"(tok,alice,1,"dev,ops")");
  ASSERT_TRUE(f.isOk());
  EXPECT_EQ(*f, (std::vector<std::string>{"tok", "alice", "1", "dev,ops"}));
  EXPECT_EQ(*splitCsvLine(R"(a,"say ""hi""",c)"),
            (std::vector<std::string>{"a", "say \"hi\"", "c"}));
  EXPECT_FALSE(splitCsvLine(R"(a,"open)").isOk());
  EXPECT_FALSE(splitCsvLine(R"(a,"x"y,c)").isOk());
}

TEST(StaticTokensTest, ParsesKubernetesFormat) {
  auto t = StaticTokens::parse("t1,alice,u1,\"dev,ops\"\n\n t2x,bob,u2\n", "tokens.csv");
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ((*t)->size(), 2u);
  auto alice = (*t)->authenticateToken("t1");
  ASSERT_TRUE(alice.isOk());
  ASSERT_TRUE(alice->has_value());
  EXPECT_EQ((*alice)->name, "alice");
  EXPECT_EQ((*alice)->uid, "u1");
  EXPECT_EQ((*alice)->groups, (std::vector<std::string>{"dev", "ops"}));
  EXPECT_FALSE((*t)->authenticateToken("nope")->has_value());
}

TEST(StaticTokensTest, ErrorsNameFileAndLine) {
  auto bad = StaticTokens::parse("t1,alice,u1\nonly-two,fields\n", "tokens.csv");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("tokens.csv:2:"), std::string::npos)
      << bad.status().message();
  auto dup = StaticTokens::parse("t1,a,1\nt1,b,2\n", "f");
  ASSERT_FALSE(dup.isOk());
  EXPECT_NE(dup.status().message().find("duplicate"), std::string::npos);
  EXPECT_FALSE(StaticTokens::parse(",a,1\n", "f").isOk());
  EXPECT_FALSE(StaticTokens::load("/nonexistent/tokens.csv").isOk());
}

TEST(AuthenticatorTest, CertificateThenTokenThenAnonymous) {
  auto tokens = StaticTokens::parse("secret-token,bob,u2,viewers\n", "t");
  ASSERT_TRUE(tokens.isOk());
  Authenticator a({tokens->get()});

  auto r = request("GET", "/api/v1/pods");
  r.clientCertificate = {true, "alice", {"system:masters"}, "1a"};
  auto alice = a.authenticate(r);
  ASSERT_TRUE(alice.isOk());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_TRUE(alice->inGroup("system:masters"));
  EXPECT_TRUE(alice->inGroup(kGroupAuthenticated));
  EXPECT_EQ(alice->method, "x509");

  r.clientCertificate = {};
  r.headers["authorization"] = "Bearer secret-token";
  auto bob = a.authenticate(r);
  ASSERT_TRUE(bob.isOk());
  EXPECT_EQ(bob->name, "bob");
  EXPECT_TRUE(bob->inGroup("viewers"));
  EXPECT_TRUE(bob->inGroup(kGroupAuthenticated));

  r.headers["authorization"] = "Bearer wrong";
  auto wrong = a.authenticate(r);
  ASSERT_FALSE(wrong.isOk());
  EXPECT_EQ(wrong.status().code(), Code::kUnauthorized);
  r.headers["authorization"] = "Basic dXNlcjpwYXNz";
  EXPECT_EQ(a.authenticate(r).status().code(), Code::kUnauthorized);

  r.headers.clear();
  auto anon = a.authenticate(r);
  ASSERT_TRUE(anon.isOk());
  EXPECT_TRUE(anon->isAnonymous());
  EXPECT_TRUE(anon->inGroup(kGroupUnauthenticated));
  EXPECT_FALSE(anon->inGroup(kGroupAuthenticated));
}

TEST(AuthenticatorTest, UnverifiedCertificateIsAnonymousAndRevokedIsRefused) {
  Authenticator a({}, [](const std::string& cn, const std::string& serial) {
    return cn == "system:node:n1" && serial == "bad";
  });
  auto r = request("GET", "/api/v1/nodes");
  r.clientCertificate = {false, "", {}, ""};
  EXPECT_TRUE(a.authenticate(r)->isAnonymous());
  r.clientCertificate = {true, "system:node:n1", {"system:nodes"}, "bad"};
  EXPECT_EQ(a.authenticate(r).status().code(), Code::kUnauthorized);
  r.clientCertificate.serialHex = "good";
  auto node = a.authenticate(r);
  ASSERT_TRUE(node.isOk());
  EXPECT_EQ(nodeNameOf(*node), "n1");
}

TEST(RequestInfoTest, ResourceRequests) {
  auto a = requestAttributes(request("GET", "/api/v1/namespaces/default/pods"));
  EXPECT_TRUE(a.resourceRequest);
  EXPECT_EQ(a.verb, "list");
  EXPECT_EQ(a.ns, "default");
  EXPECT_EQ(a.resource, "pods");
  EXPECT_EQ(a.apiGroup, "");

  a = requestAttributes(request("GET", "/api/v1/pods", {{"watch", "1"}}));
  EXPECT_EQ(a.verb, "watch");
  EXPECT_EQ(a.ns, "");

  a = requestAttributes(request("GET", "/api/v1/namespaces/default/configmaps",
                                {{"fieldSelector", "metadata.name=x"}}));
  EXPECT_EQ(a.verb, "list");
  EXPECT_EQ(a.name, "x");

  a = requestAttributes(request("PUT", "/apis/apps/v1/namespaces/ns1/deployments/web/scale"));
  EXPECT_EQ(a.verb, "update");
  EXPECT_EQ(a.apiGroup, "apps");
  EXPECT_EQ(a.resource, "deployments");
  EXPECT_EQ(a.subresource, "scale");
  EXPECT_EQ(a.name, "web");
  EXPECT_EQ(a.resourceWithSubresource(), "deployments/scale");

  a = requestAttributes(request("DELETE", "/api/v1/namespaces/ns1/pods"));
  EXPECT_EQ(a.verb, "deletecollection");
  a = requestAttributes(request("DELETE", "/api/v1/namespaces/ns1/pods/p"));
  EXPECT_EQ(a.verb, "delete");
  a = requestAttributes(request("GET", "/api/v1/namespaces/ns1/pods/p/exec"));
  EXPECT_EQ(a.verb, "create");
  EXPECT_EQ(a.subresource, "exec");
  a = requestAttributes(request("GET", "/api/v1/namespaces/ns1/pods/p/log"));
  EXPECT_EQ(a.verb, "get");
  a = requestAttributes(request("PATCH", "/api/v1/nodes/n1/status"));
  EXPECT_EQ(a.verb, "patch");
  EXPECT_EQ(a.resource, "nodes");
  EXPECT_EQ(a.name, "n1");
  EXPECT_EQ(a.subresource, "status");

  a = requestAttributes(request("GET", "/api/v1/namespaces/ns1"));
  EXPECT_EQ(a.resource, "namespaces");
  EXPECT_EQ(a.name, "ns1");
  EXPECT_EQ(a.ns, "");
  EXPECT_EQ(a.verb, "get");
  a = requestAttributes(request("PUT", "/api/v1/namespaces/ns1/finalize"));
  EXPECT_EQ(a.subresource, "finalize");
}

TEST(RequestInfoTest, NonResourceRequests) {
  for (const char* p : {"/healthz", "/version", "/api", "/apis", "/apis/apps", "/api/v1",
                        "/apis/apps/v1", "/openapi/v3", "/metrics"}) {
    auto a = requestAttributes(request("GET", p));
    EXPECT_FALSE(a.resourceRequest) << p;
    EXPECT_EQ(a.verb, "get") << p;
    EXPECT_EQ(a.path, p);
  }
}

RbacPolicy defaultPolicy() {
  RbacPolicy p;
  for (const auto& o : bootstrapPolicyObjects()) EXPECT_TRUE(p.add(o));
  return p;
}

RequestAttributes res(std::string verb, std::string group, std::string resource,
                      std::string ns = "", std::string name = "", std::string sub = "") {
  RequestAttributes a;
  a.resourceRequest = true;
  a.verb = std::move(verb);
  a.apiGroup = std::move(group);
  a.resource = std::move(resource);
  a.ns = std::move(ns);
  a.name = std::move(name);
  a.subresource = std::move(sub);
  return a;
}

UserInfo user(std::string name, std::vector<std::string> groups = {}) {
  UserInfo u;
  u.name = std::move(name);
  u.groups = std::move(groups);
  u.groups.push_back(kGroupAuthenticated);
  return u;
}

TEST(RbacTest, RuleMatching) {
  PolicyRule r{{"get"}, {""}, {"pods", "*/scale"}, {"a"}, {}};
  EXPECT_TRUE(ruleAllows(r, res("get", "", "pods", "ns", "a")));
  EXPECT_FALSE(ruleAllows(r, res("get", "", "pods", "ns", "b")));
  EXPECT_FALSE(ruleAllows(r, res("list", "", "pods", "ns")));
  EXPECT_FALSE(ruleAllows(r, res("get", "apps", "pods", "ns", "a")));
  EXPECT_FALSE(ruleAllows(r, res("get", "", "pods", "ns", "a", "log")));
  EXPECT_TRUE(ruleAllows(r, res("get", "", "deployments", "ns", "a", "scale")));
  PolicyRule urls{{"get"}, {}, {}, {}, {"/healthz", "/api/*"}};
  RequestAttributes nr;
  nr.verb = "get";
  nr.path = "/api/v1";
  EXPECT_TRUE(ruleAllows(urls, nr));
  nr.path = "/metrics";
  EXPECT_FALSE(ruleAllows(urls, nr));
}

TEST(RbacTest, DefaultRolesAndBindings) {
  RbacPolicy p = defaultPolicy();
  // Nobody but system:masters is bound to anything powerful by default.
  EXPECT_TRUE(
      evaluateRbac(p, user("root", {"system:masters"}), res("delete", "", "nodes")).allowed);
  EXPECT_FALSE(evaluateRbac(p, user("bob"), res("list", "", "pods", "default")).allowed);
  // Every authenticated user may discover the API and ask about itself.
  RequestAttributes disc;
  disc.verb = "get";
  disc.path = "/apis/apps/v1";
  EXPECT_TRUE(evaluateRbac(p, user("bob"), disc).allowed);
  EXPECT_TRUE(evaluateRbac(p, user("bob"),
                           res("create", "authorization.k8s.io", "selfsubjectaccessreviews"))
                  .allowed);

  // view in a namespace through a RoleBinding: reads, not Secrets, not writes, not elsewhere.
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "RoleBinding",
      "metadata": {"name": "bob-view", "namespace": "team"},
      "roleRef": {"kind": "ClusterRole", "name": "view"},
      "subjects": [{"kind": "User", "name": "bob"}]})")));
  auto bob = user("bob");
  EXPECT_TRUE(evaluateRbac(p, bob, res("list", "", "pods", "team")).allowed);
  EXPECT_TRUE(evaluateRbac(p, bob, res("get", "", "pods", "team", "p", "log")).allowed);
  EXPECT_TRUE(evaluateRbac(p, bob, res("watch", "apps", "deployments", "team")).allowed);
  EXPECT_FALSE(evaluateRbac(p, bob, res("get", "", "secrets", "team", "s")).allowed);
  EXPECT_FALSE(evaluateRbac(p, bob, res("create", "", "pods", "team")).allowed);
  EXPECT_FALSE(evaluateRbac(p, bob, res("list", "", "pods", "other")).allowed);
  EXPECT_FALSE(evaluateRbac(p, bob, res("create", "", "pods", "team", "p", "exec")).allowed);
  // kubectl top in that namespace, as metrics-server's reader role aggregated to view allows.
  EXPECT_TRUE(evaluateRbac(p, bob, res("list", "metrics.k8s.io", "pods", "team")).allowed);
  EXPECT_FALSE(evaluateRbac(p, bob, res("list", "metrics.k8s.io", "pods", "other")).allowed);

  // edit for a ServiceAccount: writes and Secrets in its namespace, exec, no RBAC objects.
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "RoleBinding",
      "metadata": {"name": "ci-edit", "namespace": "team"},
      "roleRef": {"kind": "ClusterRole", "name": "edit"},
      "subjects": [{"kind": "ServiceAccount", "name": "ci"}]})")));
  auto ci = user("system:serviceaccount:team:ci", {"system:serviceaccounts"});
  EXPECT_TRUE(evaluateRbac(p, ci, res("get", "", "secrets", "team", "s")).allowed);
  EXPECT_TRUE(evaluateRbac(p, ci, res("create", "apps", "deployments", "team")).allowed);
  EXPECT_TRUE(evaluateRbac(p, ci, res("create", "", "pods", "team", "p", "exec")).allowed);
  EXPECT_FALSE(
      evaluateRbac(p, ci, res("create", "rbac.authorization.k8s.io", "rolebindings", "team"))
          .allowed);
  EXPECT_FALSE(evaluateRbac(p, ci, res("get", "", "secrets", "default", "s")).allowed);
  EXPECT_FALSE(
      evaluateRbac(p, user("system:serviceaccount:other:ci"), res("get", "", "secrets", "team"))
          .allowed);

  // A Role is namespaced: a binding elsewhere to a Role of the same name grants nothing.
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "Role",
      "metadata": {"name": "cm-reader", "namespace": "a"},
      "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}]})")));
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "RoleBinding",
      "metadata": {"name": "g", "namespace": "b"},
      "roleRef": {"kind": "Role", "name": "cm-reader"},
      "subjects": [{"kind": "Group", "name": "readers"}]})")));
  EXPECT_FALSE(
      evaluateRbac(p, user("x", {"readers"}), res("get", "", "configmaps", "b", "c")).allowed);
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "RoleBinding",
      "metadata": {"name": "g", "namespace": "a"},
      "roleRef": {"kind": "Role", "name": "cm-reader"},
      "subjects": [{"kind": "Group", "name": "readers"}]})")));
  auto d = evaluateRbac(p, user("x", {"readers"}), res("get", "", "configmaps", "a", "c"));
  EXPECT_TRUE(d.allowed);
  EXPECT_NE(d.reason.find("RoleBinding \"a/g\""), std::string::npos) << d.reason;
}

TEST(RbacTest, RulesForListsWhatBindingsGrantInTheNamespace) {
  RbacPolicy p = defaultPolicy();
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "Role",
      "metadata": {"name": "cm-reader", "namespace": "team"},
      "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"],
                 "resourceNames": ["app"]}]})")));
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "RoleBinding",
      "metadata": {"name": "bob-cm", "namespace": "team"},
      "roleRef": {"kind": "Role", "name": "cm-reader"},
      "subjects": [{"kind": "User", "name": "bob"}]})")));
  ASSERT_TRUE(p.add(Json::parse(R"({"kind": "RoleBinding",
      "metadata": {"name": "bob-missing", "namespace": "team"},
      "roleRef": {"kind": "Role", "name": "gone"},
      "subjects": [{"kind": "User", "name": "bob"}]})")));
  auto inTeam = rbacRulesFor(p, user("bob"), "team");
  auto has = [](const std::vector<PolicyRule>& rules, const std::string& resource) {
    for (const auto& r : rules) {
      for (const auto& x : r.resources) {
        if (x == resource) return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(has(inTeam.resourceRules, "configmaps"));
  EXPECT_TRUE(has(inTeam.resourceRules, "selfsubjectaccessreviews"));  // system:basic-user
  EXPECT_FALSE(inTeam.nonResourceRules.empty());                       // system:discovery
  EXPECT_NE(inTeam.evaluationError.find("Role \"gone\": Role not found"), std::string::npos)
      << inTeam.evaluationError;
  EXPECT_FALSE(inTeam.incomplete);
  for (const auto& r : inTeam.resourceRules) EXPECT_TRUE(r.nonResourceURLs.empty());
  for (const auto& r : inTeam.nonResourceRules) EXPECT_TRUE(r.resources.empty());
  // Elsewhere only the cluster-wide grants remain.
  EXPECT_FALSE(has(rbacRulesFor(p, user("bob"), "other").resourceRules, "configmaps"));
  EXPECT_FALSE(has(rbacRulesFor(p, user("alice"), "team").resourceRules, "configmaps"));
}

TEST(RbacTest, CoveringFollowsKubernetes) {
  std::vector<PolicyRule> owner = {{{"get", "list"}, {""}, {"pods", "*/status"}, {}, {}},
                                   {{"*"}, {"apps"}, {"deployments"}, {"web"}, {}},
                                   {{"get"}, {}, {}, {}, {"/healthz", "/apis/*"}}};
  EXPECT_TRUE(uncoveredRules(owner, {{{"get"}, {""}, {"pods"}, {}, {}}}).empty());
  EXPECT_TRUE(uncoveredRules(owner, {{{"list"}, {""}, {"nodes/status"}, {}, {}}}).empty());
  EXPECT_TRUE(
      uncoveredRules(owner, {{{"delete"}, {"apps"}, {"deployments"}, {"web"}, {}}}).empty());
  EXPECT_TRUE(uncoveredRules(owner, {{{"get"}, {}, {}, {}, {"/apis/apps"}}}).empty());
  // Not covered: another verb, all deployments (not only "web"), a wildcard, another path.
  auto missing = uncoveredRules(owner, {{{"get", "delete"}, {""}, {"pods"}, {}, {}},
                                        {{"get"}, {"apps"}, {"deployments"}, {}, {}},
                                        {{"*"}, {""}, {"pods"}, {}, {}},
                                        {{"get"}, {}, {}, {}, {"/metrics"}}});
  ASSERT_EQ(missing.size(), 4u);
  EXPECT_EQ(missing[0].verbs, std::vector<std::string>{"delete"});
  EXPECT_EQ(missing[1].resources, std::vector<std::string>{"deployments"});
  EXPECT_EQ(missing[2].verbs, std::vector<std::string>{"*"});
  EXPECT_EQ(missing[3].nonResourceURLs, std::vector<std::string>{"/metrics"});
}

TEST(RbacTest, ForbiddenMessagesAreKubernetesWording) {
  EXPECT_EQ(forbiddenMessage(user("bob"), res("get", "", "secrets", "default", "s")),
            "secrets \"s\" is forbidden: User \"bob\" cannot get resource \"secrets\" in API "
            "group \"\" in the namespace \"default\"");
  EXPECT_EQ(forbiddenMessage(user("bob"), res("list", "", "nodes")),
            "nodes is forbidden: User \"bob\" cannot list resource \"nodes\" in API group \"\" "
            "at the cluster scope");
  RequestAttributes nr;
  nr.verb = "get";
  nr.path = "/metrics";
  EXPECT_EQ(forbiddenMessage(user("bob"), nr),
            "forbidden: User \"bob\" cannot get path \"/metrics\"");
}

TEST(RbacTest, MalformedObjectsAreSkipped) {
  RbacPolicy p;
  EXPECT_FALSE(p.add(Json::parse("null")));
  EXPECT_FALSE(p.add(Json::parse(R"({"kind": "Role", "metadata": 3})")));
  EXPECT_FALSE(p.add(Json::parse(R"({"kind": "ClusterRoleBinding", "metadata": {"name": "x"},
      "roleRef": {"kind": "Role", "name": "r"}})")));
  EXPECT_TRUE(p.add(Json::parse(R"({"kind": "ClusterRole", "metadata": {"name": "x"},
      "rules": [3, {"verbs": "get"}, {"verbs": [1, "get"]}]})")));
  EXPECT_EQ(p.clusterRoles["x"].size(), 2u);
}

class RbacAuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_.start().isOk()); }
  void TearDown() override {
    authz_.reset();
    env_.stop();
  }
  testing::StoreFixture env_;
  std::unique_ptr<RbacAuthorizer> authz_;
};

TEST_F(RbacAuthorizerTest, FollowsTheStore) {
  auto first = ensureBootstrapPolicy(*env_.registry);
  ASSERT_TRUE(first.isOk()) << first.toString();
  ASSERT_TRUE(ensureBootstrapPolicy(*env_.registry).isOk());  // idempotent
  authz_ = std::make_unique<RbacAuthorizer>(*env_.registry);
  ASSERT_TRUE(authz_->start().isOk());
  auto bob = user("bob");
  auto listPods = res("list", "", "pods", "default");
  EXPECT_FALSE(authz_->authorize(bob, listPods).allowed);
  const auto* crb = api::findByApiVersionKind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding");
  ASSERT_TRUE(env_.registry
                  ->create(*crb, "", Json::parse(R"({"metadata": {"name": "bob-view"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
      "subjects": [{"kind": "User", "name": "bob"}]})"))
                  .isOk());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!authz_->authorize(bob, listPods).allowed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(authz_->authorize(bob, listPods).allowed);
  // Bound cluster-wide, view reads the nodes too (the dashboard's Nodes page), and changes none.
  EXPECT_TRUE(authz_->authorize(bob, res("watch", "", "nodes")).allowed);
  EXPECT_FALSE(authz_->authorize(bob, res("patch", "", "nodes", "", "edge-1")).allowed);
  ASSERT_TRUE(env_.registry->remove(*crb, "", "bob-view").isOk());
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (authz_->authorize(bob, listPods).allowed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(authz_->authorize(bob, listPods).allowed);
}

}  // namespace
}  // namespace ep::auth

namespace ep::auth {
namespace {

class NodeAuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    const auto* pods = api::findByApiVersionKind("v1", "Pod");
    auto pod = [&](const std::string& name, const std::string& node, const std::string& secret,
                   const std::string& cm) {
      Json p = Json::parse(R"({"spec": {"containers": [{"name": "c", "image": "busybox:1.36",
          "envFrom": [{"configMapRef": {"name": ""}}]}],
          "volumes": [{"name": "v", "secret": {"secretName": ""}}]}})");
      p["metadata"] = {{"name", name}};
      p["spec"]["nodeName"] = node;
      p["spec"]["volumes"][0]["secret"]["secretName"] = secret;
      p["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] = cm;
      ASSERT_TRUE(env_.registry->create(*pods, "default", p).isOk());
    };
    pod("pa", "node-a", "secret-a", "cm-a");
    pod("pb", "node-b", "secret-b", "cm-b");
    authz_ = std::make_unique<NodeAuthorizer>(*env_.registry);
  }
  void TearDown() override {
    authz_.reset();
    env_.stop();
  }
  bool allowed(const std::string& node, RequestAttributes a) {
    UserInfo u;
    u.name = "system:node:" + node;
    u.groups = {"system:nodes", kGroupAuthenticated};
    return authz_->authorize(u, a).allowed;
  }
  testing::StoreFixture env_;
  std::unique_ptr<NodeAuthorizer> authz_;
};

TEST_F(NodeAuthorizerTest, OwnObjectsOnly) {
  EXPECT_TRUE(allowed("node-a", res("get", "", "secrets", "default", "secret-a")));
  EXPECT_FALSE(allowed("node-a", res("get", "", "secrets", "default", "secret-b")));
  EXPECT_FALSE(allowed("node-a", res("list", "", "secrets", "default")));
  EXPECT_TRUE(allowed("node-a", res("get", "", "configmaps", "default", "cm-a")));
  EXPECT_FALSE(allowed("node-a", res("get", "", "configmaps", "default", "cm-b")));
  EXPECT_TRUE(allowed("node-a", res("patch", "", "pods", "default", "pa", "status")));
  EXPECT_FALSE(allowed("node-a", res("patch", "", "pods", "default", "pb", "status")));
  EXPECT_FALSE(allowed("node-a", res("delete", "", "pods", "default", "pa")));
  EXPECT_TRUE(allowed("node-a", res("get", "", "nodes", "", "node-a")));
  EXPECT_TRUE(allowed("node-a", res("patch", "", "nodes", "", "node-a", "status")));
  EXPECT_FALSE(allowed("node-a", res("patch", "", "nodes", "", "node-b", "status")));
  EXPECT_FALSE(allowed("node-a", res("delete", "", "nodes", "", "node-a")));
  EXPECT_TRUE(allowed("node-a", res("create", "", "events", "default")));
  // Not a node identity (no system:nodes group): nothing.
  UserInfo impostor;
  impostor.name = "system:node:node-a";
  EXPECT_FALSE(
      authz_->authorize(impostor, res("get", "", "secrets", "default", "secret-a")).allowed);
}

TEST(PodReferencesTest, AllPlaces) {
  Json pod = Json::parse(R"({"spec": {
      "imagePullSecrets": [{"name": "pull"}],
      "volumes": [{"secret": {"secretName": "vol"}}, {"configMap": {"name": "cmvol"}},
                  {"projected": {"sources": [{"secret": {"name": "proj"}}]}}],
      "initContainers": [{"env": [{"valueFrom": {"secretKeyRef": {"name": "initenv"}}}]}],
      "containers": [{"envFrom": [{"secretRef": {"name": "from"}},
                                  {"configMapRef": {"name": "cmfrom"}}]}]}})");
  auto s = podReferences(pod, "secrets");
  std::sort(s.begin(), s.end());
  EXPECT_EQ(s, (std::vector<std::string>{"from", "initenv", "proj", "pull", "vol"}));
  auto c = podReferences(pod, "configmaps");
  std::sort(c.begin(), c.end());
  EXPECT_EQ(c, (std::vector<std::string>{"cmfrom", "cmvol"}));
  EXPECT_TRUE(podReferences(Json::parse("[1]"), "secrets").empty());
}

// RBAC escalation prevention over a real registry (the bound role is read from it).
class EscalationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.start().isOk());
    ASSERT_TRUE(ensureBootstrapPolicy(*env_.registry).isOk());
    rbac_ = std::make_unique<RbacAuthorizer>(*env_.registry);  // not started: snapshots only
    Json team = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team"}}}};
    ASSERT_TRUE(
        env_.registry->create(*api::findByApiVersionKind("v1", "Namespace"), "", team).isOk());
    // bob is admin of namespace "team"; carol may write ClusterRoleBindings and nothing else.
    create("RoleBinding", "team", R"({"metadata": {"name": "bob-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "name": "bob"}]})");
    create("ClusterRole", "", R"({"metadata": {"name": "crb-writer"},
        "rules": [{"verbs": ["create"], "apiGroups": ["rbac.authorization.k8s.io"],
                   "resources": ["clusterrolebindings"]}]})");
    create("ClusterRoleBinding", "", R"({"metadata": {"name": "carol-crb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "crb-writer"},
        "subjects": [{"kind": "User", "name": "carol"}]})");
    snapshot();
    check_ = std::make_unique<RbacEscalationCheck>(*env_.registry,
                                                   std::vector<const Authorizer*>{rbac_.get()});
  }
  void TearDown() override {
    check_.reset();
    rbac_->stop();
    env_.stop();
  }
  // What RbacAuthorizer::start() would load: every RBAC object in the store.
  void snapshot() {
    RbacPolicy p;
    for (const auto* k : {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}) {
      auto l = env_.registry->list(rbacKind(k), "", {});
      ASSERT_TRUE(l.isOk());
      for (const auto& o : l->items) p.add(o);
    }
    rbac_->setPolicy(std::make_shared<RbacPolicy>(std::move(p)));
  }
  static const api::KindInfo& rbacKind(const std::string& kind) {
    return *api::findByApiVersionKind("rbac.authorization.k8s.io/v1", kind);
  }
  void create(const std::string& kind, const std::string& ns, const std::string& body) {
    Json o = Json::parse(body);
    o["apiVersion"] = "rbac.authorization.k8s.io/v1";
    o["kind"] = kind;
    auto r = env_.registry->create(rbacKind(kind), ns, o);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
  }
  Status admit(const std::string& who, const std::string& kind, const std::string& ns,
               const std::string& body) {
    Json o = Json::parse(body);
    return check_->admit(user(who), rbacKind(kind), ns, nullptr, o);
  }

  testing::StoreFixture env_;
  std::unique_ptr<RbacAuthorizer> rbac_;
  std::unique_ptr<RbacEscalationCheck> check_;
};

TEST_F(EscalationTest, ARoleMayGrantOnlyWhatTheWriterHolds) {
  const std::string podsReader = R"({"metadata": {"name": "r"},
      "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "secrets"]}]})";
  EXPECT_TRUE(admit("bob", "Role", "team", podsReader).isOk());
  // Outside bob's namespace, and cluster-wide, bob holds none of it.
  auto elsewhere = admit("bob", "Role", "other", podsReader);
  EXPECT_EQ(elsewhere.code(), Code::kForbidden);
  EXPECT_NE(elsewhere.message().find("roles.rbac.authorization.k8s.io \"r\" is forbidden: user "
                                     "\"bob\""),
            std::string::npos)
      << elsewhere.message();
  EXPECT_NE(
      elsewhere.message().find("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"),
      std::string::npos)
      << elsewhere.message();
  // admin only reads nodes: a Role deleting them is an escalation even in "team".
  auto nodes = admit("bob", "Role", "team", R"({"metadata": {"name": "n"},
      "rules": [{"verbs": ["delete"], "apiGroups": [""], "resources": ["nodes"]}]})");
  EXPECT_EQ(nodes.code(), Code::kForbidden);
  // An update that leaves the rules alone is not checked again.
  Json current = Json::parse(podsReader);
  Json next = current;
  next["metadata"]["labels"] = {{"a", "b"}};
  EXPECT_TRUE(check_->admit(user("bob"), rbacKind("Role"), "other", &current, next).isOk());
}

TEST_F(EscalationTest, ABindingMayBindOnlyRolesWhosePermissionsTheWriterHolds) {
  const std::string bindAdmin = R"({"metadata": {"name": "b"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ROLE"},
      "subjects": [{"kind": "User", "name": "mallory"}]})";
  auto bind = [&](const std::string& role) {
    std::string b = bindAdmin;
    b.replace(b.find("ROLE"), 4, role);
    return b;
  };
  // bob (admin in team) may hand out edit and view in team, not cluster-admin.
  EXPECT_TRUE(admit("bob", "RoleBinding", "team", bind("edit")).isOk());
  EXPECT_TRUE(admit("bob", "RoleBinding", "team", bind("view")).isOk());
  EXPECT_EQ(admit("bob", "RoleBinding", "team", bind("cluster-admin")).code(), Code::kForbidden);
  // carol may create ClusterRoleBindings, but not of roles whose permissions she lacks.
  auto crb = admit("carol", "ClusterRoleBinding", "", bind("cluster-admin"));
  EXPECT_EQ(crb.code(), Code::kForbidden);
  EXPECT_NE(crb.message().find("not currently held"), std::string::npos) << crb.message();
  EXPECT_TRUE(admit("carol", "ClusterRoleBinding", "", bind("crb-writer")).isOk());
  // A binding to a role that does not exist cannot be checked: refused.
  EXPECT_EQ(admit("carol", "ClusterRoleBinding", "", bind("no-such-role")).code(),
            Code::kForbidden);
  // The "bind" verb on that role allows it regardless.
  create("ClusterRole", "", R"({"metadata": {"name": "binder"},
      "rules": [{"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"],
                 "resources": ["clusterroles"], "resourceNames": ["cluster-admin"]}]})");
  create("ClusterRoleBinding", "", R"({"metadata": {"name": "carol-binder"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "binder"},
      "subjects": [{"kind": "User", "name": "carol"}]})");
  snapshot();
  EXPECT_TRUE(admit("carol", "ClusterRoleBinding", "", bind("cluster-admin")).isOk());
  // Objects of other kinds are not this check's business.
  EXPECT_TRUE(check_
                  ->admit(user("carol"), *api::findByApiVersionKind("v1", "ConfigMap"), "team",
                          nullptr, Json::object())
                  .isOk());
}

}  // namespace
}  // namespace ep::auth
