// Security end to end (docs/security.md): the HTTPS API with certificates, tokens and RBAC, the
// audit log; nodes joining with tokens over the mTLS tunnel, node identity, revocation and
// certificate renewal. Real cloudcore and edgecore processes, edgectl and kubectl.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/pki/pki.h"
#include "tests/integration/edge_fixture.h"

namespace ep::testing {
namespace {

using nlohmann::json;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class SecurityTest : public EdgeFixture {
 protected:
  void SetUp() override {
    tunnelPort_ = freePort();
    dataDir_ = dir_.path() + "/data";
    tokenFile_ = writeFile("tokens.csv",
                           "viewer-token-0123456789,viewer,u-viewer\n"
                           "editor-token-0123456789,editor,u-editor,\"devs,team-a\"\n");
    startCloud(cloudArgs({"--token-auth-file", tokenFile_}));
  }

  // An HTTP client as a given identity: "admin" (the kubeconfig's certificate), a bearer
  // token, or none (anonymous); always verifying the server with the cluster CA.
  http::HttpClient as(const std::string& token, bool adminCert = false) {
    http::ClientOptions o = adminOptions();
    if (!adminCert) {
      o.clientCertPem.clear();
      o.clientKeyPem.clear();
    }
    o.bearerToken = token;
    return http::HttpClient(server(), o);
  }
  int status(http::HttpClient& c, const std::string& method, const std::string& path,
             const std::string& body = "") {
    auto r = c.request(method, path, body, body.empty() ? "" : "application/json");
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? r->status : -1;
  }
  CommandResult kubectlAs(const std::string& token, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/kubectl", "--kubeconfig=" + kubeconfig(),
                                     "--cache-dir=" + dir_.path() + "/kcache"};
    if (!token.empty()) {
      // The kubeconfig's client certificate would win over nothing: use a token-only config.
      std::string ca = dir_.path() + "/ca.crt";
      std::ofstream(ca) << adminOptions().caPem;
      argv = {
          "/usr/bin/kubectl",     "--kubeconfig=/dev/null",
          "--server=" + server(), "--certificate-authority=" + ca,
          "--token=" + token,     "--cache-dir=" + dir_.path() + "/kcache-" + token.substr(0, 6)};
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, "", std::chrono::seconds(60));
  }

  std::string tokenFile_;
};

TEST_F(SecurityTest, PkiFilesAreCreatedPrivate) {
  for (const char* f : {"pki/ca.key", "pki/apiserver.key", "pki/tunnel.key", "admin.kubeconfig"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dataDir_ + "/" + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  struct stat st {};
  ASSERT_EQ(::stat((dataDir_ + "/pki").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // A restart reuses the CA: the admin kubeconfig keeps working.
  auto before = slurp(dataDir_ + "/pki/ca.crt");
  restartCloud({"--token-auth-file", tokenFile_});
  EXPECT_EQ(slurp(dataDir_ + "/pki/ca.crt"), before);
  EXPECT_EQ(edgectl({"get", "ns"}).exitCode, 0);
}

TEST_F(SecurityTest, NoPlainHttp) {
  http::HttpClient plain("http://127.0.0.1:" + std::to_string(port_));
  auto r = plain.request("GET", "/api/v1/namespaces");
  // The TLS listener does not speak HTTP: the connection fails or the answer is not a 2xx.
  EXPECT_TRUE(!r.isOk() || r->status >= 400);
}

TEST_F(SecurityTest, AuthorizationMatrix) {
  // Bindings: viewer may view everywhere; editor may edit in namespace team-a only.
  ASSERT_EQ(post("/api/v1/namespaces", R"({"metadata":{"name":"team-a"}})"), 201);
  ASSERT_EQ(post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                 R"({"metadata":{"name":"viewer-view"},
                     "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
                     "subjects":[{"kind":"User","name":"viewer"}]})"),
            201);
  ASSERT_EQ(post("/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
                 R"({"metadata":{"name":"editors"},
                     "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},
                     "subjects":[{"kind":"Group","name":"devs"}]})"),
            201);
  ASSERT_EQ(post("/api/v1/namespaces/team-a/secrets",
                 R"({"metadata":{"name":"db"},"stringData":{"password":"hunter2-secret-value"}})"),
            201);

  auto admin = as("", true);
  auto viewer = as("viewer-token-0123456789");
  auto editor = as("editor-token-0123456789");
  auto anon = as("");
  auto bogus = as("not-a-known-token");

  // Wait until the RBAC cache saw the bindings (it follows the store).
  ASSERT_TRUE(eventually([&] {
    return status(viewer, "GET", "/api/v1/namespaces/default/pods") == 200 &&
           status(editor, "GET", "/api/v1/namespaces/team-a/secrets/db") == 200;
  }));

  struct Case {
    const char* who;
    http::HttpClient* client;
    const char* method;
    std::string path;
    std::string body;
    int want;
  };
  const std::string cm = R"({"metadata":{"name":"c1"},"data":{"k":"v"}})";
  const std::string cm2 = R"({"metadata":{"name":"c2"},"data":{"k":"v"}})";
  std::vector<Case> cases = {
      {"admin", &admin, "GET", "/api/v1/nodes", "", 200},
      {"admin", &admin, "GET", "/api/v1/namespaces/team-a/secrets/db", "", 200},
      {"admin", &admin, "GET", "/metrics", "", 200},
      {"viewer", &viewer, "GET", "/api/v1/namespaces/team-a/pods", "", 200},
      {"viewer", &viewer, "GET", "/apis/apps/v1/deployments", "", 200},
      {"viewer", &viewer, "GET", "/api/v1/namespaces/team-a/secrets/db", "", 403},
      {"viewer", &viewer, "GET", "/api/v1/namespaces/team-a/secrets", "", 403},
      {"viewer", &viewer, "POST", "/api/v1/namespaces/team-a/configmaps", cm, 403},
      {"viewer", &viewer, "GET", "/api/v1/nodes", "", 200},  // view bound cluster-wide reads nodes
      {"viewer", &viewer, "DELETE", "/api/v1/nodes/whatever", "", 403},
      {"viewer", &viewer, "GET", "/metrics", "", 403},
      {"viewer", &viewer, "GET", "/apis", "", 200},
      {"editor", &editor, "POST", "/api/v1/namespaces/team-a/configmaps", cm, 201},
      {"editor", &editor, "GET", "/api/v1/namespaces/team-a/secrets/db", "", 200},
      {"editor", &editor, "POST", "/api/v1/namespaces/default/configmaps", cm2, 403},
      {"editor", &editor, "GET", "/api/v1/namespaces/default/secrets", "", 403},
      {"editor", &editor, "POST",
       "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
       R"({"metadata":{"name":"x"},"roleRef":{"kind":"ClusterRole","name":"admin"},"subjects":[]})",
       403},
      {"editor", &editor, "DELETE", "/api/v1/nodes/whatever", "", 403},
      {"anonymous", &anon, "GET", "/api/v1/namespaces", "", 401},
      {"anonymous", &anon, "GET", "/api/v1/namespaces/team-a/secrets/db", "", 401},
      {"anonymous", &anon, "GET", "/healthz", "", 200},
      {"anonymous", &anon, "GET", "/readyz", "", 200},
      {"anonymous", &anon, "GET", "/livez", "", 200},
      {"anonymous", &anon, "GET", "/version", "", 200},
      {"anonymous", &anon, "GET", "/metrics", "", 401},
      {"bogus token", &bogus, "GET", "/api/v1/namespaces", "", 401},
      {"bogus token", &bogus, "GET", "/healthz", "", 401},
  };
  for (auto& c : cases) {
    EXPECT_EQ(status(*c.client, c.method, c.path, c.body), c.want)
        << c.who << " " << c.method << " " << c.path;
  }

  // A certificate from another CA is not an identity: 401.
  auto other = pki::createCa("other-ca", std::chrono::hours(1));
  ASSERT_TRUE(other.isOk());
  auto forged = pki::issueKeyAndCertificate(*other, {.commonName = "kubernetes-admin",
                                                     .organizations = {"system:masters"},
                                                     .clientAuth = true,
                                                     .validity = std::chrono::hours(1)});
  ASSERT_TRUE(forged.isOk());
  http::ClientOptions fo = adminOptions();
  fo.clientCertPem = forged->certPem;
  fo.clientKeyPem = forged->keyPem;
  http::HttpClient forger(server(), fo);
  EXPECT_EQ(status(forger, "GET", "/api/v1/namespaces"), 401);

  // Node identities on the API: system:node:NAME in system:nodes, limited by the node
  // authorizer to its own Node, its pods and what they use; one whose Node is gone is
  // revoked: 401.
  auto nodeClient = [&](const std::string& node, bool registered) {
    pki::KeyAndCert ca{slurp(dataDir_ + "/pki/ca.key"), slurp(dataDir_ + "/pki/ca.crt")};
    auto cert = pki::issueKeyAndCertificate(ca, {.commonName = "system:node:" + node,
                                                 .organizations = {"system:nodes"},
                                                 .clientAuth = true,
                                                 .validity = std::chrono::hours(1)});
    EXPECT_TRUE(cert.isOk());
    if (registered) {
      auto serial = pki::parseCertificate(cert->certPem)->serialHex;
      EXPECT_EQ(post("/api/v1/nodes",
                     json{{"metadata",
                           {{"name", node},
                            {"annotations", {{"edgeplane.io/client-certificates", serial}}}}}}
                         .dump()),
                201);
    }
    http::ClientOptions o = adminOptions();
    o.clientCertPem = cert->certPem;
    o.clientKeyPem = cert->keyPem;
    return http::HttpClient(server(), o);
  };
  auto nodeA = nodeClient("node-a", true);
  auto revoked = nodeClient("node-gone", false);
  // node-b runs a pod that uses Secret team-a/db; node-a runs nothing.
  ASSERT_EQ(post("/api/v1/namespaces/team-a/pods",
                 R"({"metadata":{"name":"pb"},"spec":{"nodeName":"node-b","containers":[
                     {"name":"c","image":"busybox:1.36"}],
                     "volumes":[{"name":"v","secret":{"secretName":"db"}}]}})"),
            201);
  EXPECT_EQ(status(nodeA, "GET", "/api/v1/namespaces/team-a/secrets/db"), 403);
  EXPECT_EQ(status(nodeA, "GET", "/api/v1/namespaces/team-a/pods/pb"), 403);
  EXPECT_EQ(status(nodeA, "PATCH", "/api/v1/namespaces/team-a/pods/pb/status", "{}"), 403);
  EXPECT_EQ(status(nodeA, "GET", "/api/v1/nodes"), 403);
  EXPECT_EQ(status(nodeA, "GET", "/api/v1/nodes/node-a"), 200);
  auto nodeB = nodeClient("node-b", true);
  EXPECT_EQ(status(nodeB, "GET", "/api/v1/namespaces/team-a/secrets/db"), 200);
  EXPECT_EQ(status(nodeB, "GET", "/api/v1/namespaces/team-a/pods/pb"), 200);
  EXPECT_EQ(status(revoked, "GET", "/api/v1/namespaces"), 401);
  EXPECT_EQ(status(revoked, "GET", "/healthz"), 401);

  // A 403 names the user, verb and resource, as Kubernetes does.
  auto denied = viewer.request("GET", "/api/v1/namespaces/team-a/secrets/db");
  ASSERT_TRUE(denied.isOk());
  auto body = json::parse(denied->body, nullptr, false);
  EXPECT_EQ(body.value("kind", ""), "Status");
  EXPECT_EQ(body.value("reason", ""), "Forbidden");
  EXPECT_EQ(body.value("message", ""),
            "secrets \"db\" is forbidden: User \"viewer\" cannot get resource \"secrets\" in API "
            "group \"\" in the namespace \"team-a\"");
}

TEST_F(SecurityTest, KubectlAuthCanIAndWhoami) {
  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  ASSERT_EQ(post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                 R"({"metadata":{"name":"viewer-view"},
                     "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
                     "subjects":[{"kind":"User","name":"viewer"}]})"),
            201);
  auto who = kubectlAs("", {"auth", "whoami"});
  ASSERT_EQ(who.exitCode, 0) << who.err;
  EXPECT_NE(who.out.find("kubernetes-admin"), std::string::npos) << who.out;
  EXPECT_NE(who.out.find("system:masters"), std::string::npos) << who.out;
  EXPECT_EQ(kubectlAs("", {"auth", "can-i", "delete", "nodes"}).out, "yes\n");

  auto vwho = kubectlAs("viewer-token-0123456789", {"auth", "whoami"});
  ASSERT_EQ(vwho.exitCode, 0) << vwho.err;
  EXPECT_NE(vwho.out.find("viewer"), std::string::npos) << vwho.out;
  ASSERT_TRUE(eventually([&] {
    return kubectlAs("viewer-token-0123456789", {"auth", "can-i", "list", "pods"}).out == "yes\n";
  }));
  auto secrets = kubectlAs("viewer-token-0123456789", {"auth", "can-i", "get", "secrets"});
  EXPECT_EQ(secrets.out, "no\n");
  EXPECT_NE(secrets.exitCode, 0);
  auto get = kubectlAs("viewer-token-0123456789", {"get", "secrets"});
  EXPECT_NE(get.exitCode, 0);
  EXPECT_NE(get.err.find("forbidden: User \"viewer\" cannot list resource \"secrets\""),
            std::string::npos)
      << get.err;
  auto anon = kubectlAs("wrong-token", {"get", "pods"});
  EXPECT_NE(anon.exitCode, 0);
  // kubectl words a 401 as "Unauthorized", or during discovery as "asked for the client to
  // provide credentials".
  const std::string said = anon.out + anon.err;
  EXPECT_TRUE(said.find("Unauthorized") != std::string::npos ||
              said.find("provide credentials") != std::string::npos)
      << said;
}

TEST_F(SecurityTest, KubectlAuthCanIListShowsTheCallersRules) {
  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  ASSERT_EQ(post("/api/v1/namespaces", R"({"metadata":{"name":"team-l"}})"), 201);
  ASSERT_EQ(post("/apis/rbac.authorization.k8s.io/v1/namespaces/team-l/rolebindings",
                 R"({"metadata":{"name":"viewer-view"},
                     "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
                     "subjects":[{"kind":"User","name":"viewer"}]})"),
            201);
  // kubectl prints one row per rule: resources, non-resource URLs, resource names, verbs.
  ASSERT_TRUE(eventually([&] {
    auto l = kubectlAs("viewer-token-0123456789", {"auth", "can-i", "--list", "-n", "team-l"});
    return l.exitCode == 0 && l.out.find("deployments.apps") != std::string::npos;
  }));
  auto inTeam = kubectlAs("viewer-token-0123456789", {"auth", "can-i", "--list", "-n", "team-l"});
  EXPECT_NE(inTeam.out.find("selfsubjectrulesreviews.authorization.k8s.io"), std::string::npos)
      << inTeam.out;
  EXPECT_NE(inTeam.out.find("/healthz"), std::string::npos) << inTeam.out;
  EXPECT_EQ(inTeam.out.find("secrets"), std::string::npos) << inTeam.out;  // view: no Secrets
  auto elsewhere =
      kubectlAs("viewer-token-0123456789", {"auth", "can-i", "--list", "-n", "default"});
  ASSERT_EQ(elsewhere.exitCode, 0) << elsewhere.err;
  EXPECT_EQ(elsewhere.out.find("deployments.apps"), std::string::npos) << elsewhere.out;
  // The admin holds everything.
  auto admin = kubectlAs("", {"auth", "can-i", "--list"});
  ASSERT_EQ(admin.exitCode, 0) << admin.err;
  EXPECT_NE(admin.out.find("*.*"), std::string::npos) << admin.out;
}

TEST_F(SecurityTest, RbacWritesCannotEscalate) {
  // editor administers namespace team-e (admin includes Roles and RoleBindings there).
  ASSERT_EQ(post("/api/v1/namespaces", R"({"metadata":{"name":"team-e"}})"), 201);
  ASSERT_EQ(post("/apis/rbac.authorization.k8s.io/v1/namespaces/team-e/rolebindings",
                 R"({"metadata":{"name":"editor-admin"},
                     "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"admin"},
                     "subjects":[{"kind":"User","name":"editor"}]})"),
            201);
  auto editor = as("editor-token-0123456789");
  auto post_ = [&](const std::string& path, const std::string& body) {
    auto r = editor.request("POST", path, body, "application/json");
    return r.isOk() ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
  };
  const std::string rb = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-e/rolebindings";
  // Handing out a role the editor holds works (once the RBAC snapshot has its binding).
  ASSERT_TRUE(eventually([&] {
    return post_(rb, R"({"metadata":{"name":"viewers"},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
        "subjects":[{"kind":"User","name":"someone"}]})")
               .first == 201;
  }));
  // Binding cluster-admin, even inside the namespace, is refused and nothing is stored.
  auto [code, body] = post_(rb, R"({"metadata":{"name":"grab"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
      "subjects":[{"kind":"User","name":"editor"}]})");
  EXPECT_EQ(code, 403) << body;
  EXPECT_NE(body.find("is attempting to grant RBAC permissions not currently held"),
            std::string::npos)
      << body;
  auto admin = as("", true);
  EXPECT_EQ(status(admin, "GET", rb + "/grab"), 404);
  // So is a Role granting what the editor lacks (admin only reads nodes: deleting them is more).
  auto [roleCode, roleBody] = post_("/apis/rbac.authorization.k8s.io/v1/namespaces/team-e/roles",
                                    R"({"metadata":{"name":"nodes"},
                "rules":[{"verbs":["delete"],"apiGroups":[""],"resources":["nodes"]}]})");
  EXPECT_EQ(roleCode, 403) << roleBody;
  // A Role within what the editor holds is fine.
  EXPECT_EQ(post_("/apis/rbac.authorization.k8s.io/v1/namespaces/team-e/roles",
                  R"({"metadata":{"name":"cm"},
                      "rules":[{"verbs":["get"],"apiGroups":[""],"resources":["configmaps"]}]})")
                .first,
            201);
}

TEST_F(SecurityTest, ServiceAccountTokens) {
  if (access("/usr/bin/kubectl", X_OK) != 0) GTEST_SKIP() << "kubectl is not installed";
  auto admin = as("", true);
  // Every namespace gets a `default` ServiceAccount, re-created when deleted.
  ASSERT_EQ(post("/api/v1/namespaces", R"({"metadata":{"name":"team-b"}})"), 201);
  const std::string defaultSa = "/api/v1/namespaces/team-b/serviceaccounts/default";
  ASSERT_TRUE(eventually([&] { return status(admin, "GET", defaultSa) == 200; }));
  const std::string firstUid = getJson(defaultSa)["metadata"].value("uid", "");
  ASSERT_EQ(del(defaultSa), 200);
  ASSERT_TRUE(eventually([&] {
    auto r = admin.request("GET", defaultSa);
    return r.isOk() && r->status == 200 &&
           json::parse(r->body)["metadata"].value("uid", "") != firstUid;
  }));

  // ServiceAccount team-b/ci may edit team-b. (Created with JSON: `kubectl create
  // serviceaccount` sends protobuf, which the generic create path does not read yet.)
  ASSERT_EQ(post("/api/v1/namespaces/team-b/serviceaccounts", R"({"metadata":{"name":"ci"}})"),
            201);
  ASSERT_EQ(post("/apis/rbac.authorization.k8s.io/v1/namespaces/team-b/rolebindings",
                 R"({"metadata":{"name":"ci-edit"},
                     "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},
                     "subjects":[{"kind":"ServiceAccount","name":"ci","namespace":"team-b"}]})"),
            201);
  auto mint = [&](std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"create", "token", "ci", "-n", "team-b"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = kubectlAs("", args);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::string t = r.out;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    return t;
  };
  auto claims = [](const std::string& token) {
    std::string p = token.substr(token.find('.') + 1);
    p = p.substr(0, p.find('.'));
    for (char& c : p) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (p.size() % 4) p.push_back('=');
    auto d = pki::base64Decode(p);
    return d.isOk() ? json::parse(*d, nullptr, false) : json();
  };
  const std::string token = mint();
  ASSERT_EQ(std::count(token.begin(), token.end(), '.'), 2) << token;
  json c = claims(token);
  EXPECT_EQ(c.value("sub", ""), "system:serviceaccount:team-b:ci");
  EXPECT_EQ(c.value("exp", 0) - c.value("iat", 0), 3600);

  auto ci = as(token);
  ASSERT_TRUE(
      eventually([&] { return status(ci, "GET", "/api/v1/namespaces/team-b/secrets") == 200; }));
  const std::string cm = R"({"metadata":{"name":"from-ci"},"data":{"k":"v"}})";
  EXPECT_EQ(status(ci, "POST", "/api/v1/namespaces/team-b/configmaps", cm), 201);
  EXPECT_EQ(status(ci, "POST", "/api/v1/namespaces/default/configmaps", cm), 403);
  EXPECT_EQ(status(ci, "GET", "/api/v1/nodes"), 403);
  auto who = kubectlAs(token, {"auth", "whoami"});
  ASSERT_EQ(who.exitCode, 0) << who.err;
  EXPECT_NE(who.out.find("system:serviceaccount:team-b:ci"), std::string::npos) << who.out;
  EXPECT_NE(who.out.find("system:serviceaccounts:team-b"), std::string::npos) << who.out;
  EXPECT_EQ(kubectlAs(token, {"auth", "can-i", "create", "configmaps", "-n", "team-b"}).out,
            "yes\n");

  // --duration: at least 10 minutes.
  const std::string shortToken = mint({"--duration=600s"});
  EXPECT_EQ(claims(shortToken).value("exp", 0) - claims(shortToken).value("iat", 0), 600);
  auto shortClient = as(shortToken);
  EXPECT_EQ(status(shortClient, "GET", "/api/v1/namespaces/team-b/secrets"), 200);
  auto tooShort = kubectlAs("", {"create", "token", "ci", "-n", "team-b", "--duration=5m"});
  EXPECT_NE(tooShort.exitCode, 0);
  EXPECT_NE(tooShort.err.find("may not specify a duration less than 10 minutes"), std::string::npos)
      << tooShort.err;
  // A token for another audience is no API credential.
  auto vault = as(mint({"--audience=vault"}));
  EXPECT_EQ(status(vault, "GET", "/api/v1/namespaces/team-b/secrets"), 401);
  auto missing = kubectlAs("", {"create", "token", "nosuch", "-n", "team-b"});
  EXPECT_NE(missing.exitCode, 0);
  EXPECT_NE(missing.err.find("serviceaccounts \"nosuch\" not found"), std::string::npos)
      << missing.err;
  // Forged: the claims of another ServiceAccount under ci's signature.
  std::string forged = token;
  {
    size_t a = token.find('.'), b = token.rfind('.');
    json fc = claims(token);
    fc["sub"] = "system:serviceaccount:kube-system:default";
    fc["kubernetes.io"]["namespace"] = "kube-system";
    std::string p = pki::base64Encode(fc.dump());
    while (!p.empty() && p.back() == '=') p.pop_back();
    for (char& ch : p) ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    forged = token.substr(0, a + 1) + p + token.substr(b);
  }
  auto forger = as(forged);
  EXPECT_EQ(status(forger, "GET", "/api/v1/namespaces/team-b/secrets"), 401);

  // The signing key is kept (0600): tokens survive a restart of cloudcore.
  struct stat st {};
  ASSERT_EQ(::stat((dataDir_ + "/pki/sa.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  restartCloud({"--token-auth-file", tokenFile_});
  auto afterRestart = as(token);
  ASSERT_TRUE(eventually(
      [&] { return status(afterRestart, "GET", "/api/v1/namespaces/team-b/secrets") == 200; }));

  // Deleting the ServiceAccount revokes its tokens at once.
  ASSERT_EQ(del("/api/v1/namespaces/team-b/serviceaccounts/ci"), 200);
  auto revoked = as(token);
  EXPECT_EQ(status(revoked, "GET", "/api/v1/namespaces/team-b/secrets"), 401);
  auto gone = kubectlAs(token, {"get", "configmaps", "-n", "team-b"});
  EXPECT_NE(gone.exitCode, 0);
}

TEST_F(SecurityTest, AuditLogRecordsRequestsWithoutSecretValues) {
  ASSERT_EQ(post("/api/v1/namespaces/default/secrets",
                 R"({"metadata":{"name":"audited"},"stringData":{"k":"audit-secret-value-42"}})"),
            201);
  auto anon = as("");
  EXPECT_EQ(status(anon, "GET", "/api/v1/namespaces/default/secrets/audited"), 401);
  std::string log;
  ASSERT_TRUE(eventually([&] {
    log = slurp(dataDir_ + "/audit.log");
    return log.find("\"code\":401") != std::string::npos;
  }));
  bool sawCreate = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    auto ev = json::parse(line, nullptr, false);
    ASSERT_TRUE(ev.is_object()) << line;
    EXPECT_EQ(ev.value("apiVersion", ""), "audit.k8s.io/v1");
    EXPECT_EQ(ev.value("kind", ""), "Event");
    if (ev.value("verb", "") == "create" && ev["objectRef"].value("resource", "") == "secrets") {
      sawCreate = true;
      EXPECT_EQ(ev["user"].value("username", ""), "kubernetes-admin");
      EXPECT_EQ(ev["responseStatus"].value("code", 0), 201);
      EXPECT_EQ(ev["objectRef"].value("namespace", ""), "default");
      EXPECT_FALSE(ev.value("requestReceivedTimestamp", "").empty());
    }
  }
  EXPECT_TRUE(sawCreate) << log;
  EXPECT_EQ(log.find("audit-secret-value-42"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat((dataDir_ + "/audit.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// ---- nodes ----

TEST_F(SecurityTest, NodeJoinsWithTokenAndUsesMtls) {
  startEdge("edge-a");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }));
  const std::string pki = dir_.path() + "/edge-a/pki";
  struct stat st {};
  ASSERT_EQ(::stat((pki + "/node.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(pki.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_.path() + "/edge-a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto pem = slurp(pki + "/node.pem");
  auto cert = pki::parseCertificate(pem.substr(pem.find("-----BEGIN CERTIFICATE")));
  ASSERT_TRUE(cert.isOk());
  EXPECT_EQ(cert->commonName, "system:node:edge-a");
  EXPECT_EQ(cert->organizations, std::vector<std::string>{"system:nodes"});

  // Restarting needs no token: the credentials are on disk.
  edges_["edge-a"].proc.reset();
  auto& e = edges_["edge-a"];
  e.localPort = freePort();  // the old one may be taken meanwhile
  e.proc = std::make_unique<Process>(
      std::vector<std::string>{buildPath("edgecore/edgecore"), "--node-name", "edge-a", "--cloud",
                               "127.0.0.1:" + std::to_string(tunnelPort_), "--data-dir",
                               dir_.path() + "/edge-a", "--local-api-listen",
                               "127.0.0.1:" + std::to_string(e.localPort), "--heartbeat-interval",
                               "1s", "--runtime-endpoint", "", "--mqtt-server", "", "--dmi-socket",
                               "", "--service-proxy", "off"},
      dir_.path() + "/edge-a-2.log");
  ASSERT_TRUE(e.proc->start());
  ASSERT_TRUE(eventually([&] {
    auto s = edgeGet("edge-a", "/status");
    return s.is_object() && s["tunnel"].value("connected", false);
  })) << e.proc->log();

  // The local API never serves Secrets.
  EXPECT_EQ(edgeStatus("edge-a", "/api/v1/namespaces/default/secrets"), 403);
  EXPECT_EQ(edgeStatus("edge-a", "/api/v1/namespaces/default/pods"), 200);
}

CommandResult runEdgecore(const std::string& dataDir, const std::string& node, int tunnelPort,
                          const std::string& token) {
  return runCommand(
      {buildPath("edgecore/edgecore"), "--node-name", node, "--cloud",
       "127.0.0.1:" + std::to_string(tunnelPort), "--data-dir", dataDir, "--local-api-listen",
       "127.0.0.1:" + std::to_string(freePort()), "--runtime-endpoint", "", "--mqtt-server", "",
       "--dmi-socket", "", "--service-proxy", "off", "--token", token},
      "", std::chrono::seconds(30));
}

TEST_F(SecurityTest, BadTokensAreRefusedWithTheReason) {
  const std::string good = joinToken();
  // Malformed.
  auto malformed = runEdgecore(dir_.path() + "/m", "n-m", tunnelPort_, "not-a-token");
  EXPECT_EQ(malformed.exitCode, 1);
  EXPECT_NE((malformed.out + malformed.err).find("join token"), std::string::npos) << malformed.err;
  // A CA hash that is not the cluster's: refused before the token is sent.
  std::string wrongHash = good.substr(0, good.rfind('.') + 1) + std::string(64, 'a');
  auto mismatch = runEdgecore(dir_.path() + "/h", "n-h", tunnelPort_, wrongHash);
  EXPECT_EQ(mismatch.exitCode, 1);
  EXPECT_NE((mismatch.out + mismatch.err).find("does not match the hash in the join token"),
            std::string::npos)
      << mismatch.err;
  // A wrong secret.
  std::string wrongSecret = good.substr(0, 7) + "zzzzzzzzzzzzzzzz" + good.substr(23);
  auto secret = runEdgecore(dir_.path() + "/s", "n-s", tunnelPort_, wrongSecret);
  EXPECT_EQ(secret.exitCode, 1);
  EXPECT_NE((secret.out + secret.err).find("wrong secret"), std::string::npos) << secret.err;

  // Exhausted: one use.
  auto once = edgectl({"token", "create", "--usages", "1", "--ttl", "1h"});
  ASSERT_EQ(once.exitCode, 0) << once.err;
  std::string onceToken = once.out.substr(0, once.out.find('\n'));
  startEdge("edge-once", {"--token", onceToken});
  auto second = runEdgecore(dir_.path() + "/x", "n-x", tunnelPort_, onceToken);
  EXPECT_EQ(second.exitCode, 1);
  EXPECT_NE((second.out + second.err).find("exhausted"), std::string::npos) << second.err;

  // Deleted.
  auto del = edgectl({"token", "delete", onceToken.substr(0, 6)});
  EXPECT_EQ(del.exitCode, 0) << del.err;
  auto deleted = runEdgecore(dir_.path() + "/d", "n-d", tunnelPort_, onceToken);
  EXPECT_EQ(deleted.exitCode, 1);
  EXPECT_NE((deleted.out + deleted.err).find("does not exist"), std::string::npos) << deleted.err;

  // Expired.
  auto brief = edgectl({"token", "create", "--ttl", "1s"});
  ASSERT_EQ(brief.exitCode, 0) << brief.err;
  std::string briefToken = brief.out.substr(0, brief.out.find('\n'));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let the token's TTL pass
  auto expired = runEdgecore(dir_.path() + "/e", "n-e", tunnelPort_, briefToken);
  EXPECT_EQ(expired.exitCode, 1);
  EXPECT_NE((expired.out + expired.err).find("has expired"), std::string::npos) << expired.err;

  auto list = edgectl({"token", "list"});
  EXPECT_EQ(list.exitCode, 0) << list.err;
  EXPECT_NE(list.out.find(good.substr(0, 6)), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("<expired>"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("test nodes"), std::string::npos) << list.out;
}

TEST_F(SecurityTest, CertificateOfOneNodeCannotActAsAnother) {
  startEdge("edge-a");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }));
  edges_["edge-a"].proc.reset();
  // edge-a's credentials, but claiming to be edge-b.
  int port = freePort();
  Process impostor(
      {buildPath("edgecore/edgecore"), "--node-name", "edge-b", "--cloud",
       "127.0.0.1:" + std::to_string(tunnelPort_), "--data-dir", dir_.path() + "/edge-a",
       "--local-api-listen", "127.0.0.1:" + std::to_string(port), "--runtime-endpoint", "",
       "--mqtt-server", "", "--dmi-socket", "", "--service-proxy", "off"},
      dir_.path() + "/impostor.log");
  ASSERT_TRUE(impostor.start());
  ASSERT_TRUE(eventually([&] {
    return cloud_->log().find(
               "certificate of node \"edge-a\" sent a Hello naming node "
               "\"edge-b\"") != std::string::npos;
  })) << cloud_->log();
  EXPECT_TRUE(eventually([&] {
    return impostor.log().find("belongs to node \"edge-a\", not \"edge-b\"") != std::string::npos;
  })) << impostor.log();
  auto nodes = getJson("/api/v1/nodes");
  for (const auto& n : nodes["items"]) EXPECT_NE(n["metadata"].value("name", ""), "edge-b");
}

TEST_F(SecurityTest, DeletingTheNodeRevokesItsCertificate) {
  startEdge("edge-a");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-a") == "True"; }));
  auto connected = [&] {
    auto s = edgeGet("edge-a", "/status");
    return s.is_object() && s["tunnel"].value("connected", false);
  };
  ASSERT_TRUE(eventually(connected));
  auto deleted = edgectl({"delete", "node", "edge-a", "--wait=false"});
  ASSERT_EQ(deleted.exitCode, 0) << deleted.err;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return !connected(); }, std::chrono::seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // Reconnecting with the same certificate is refused; the Node is not recreated.
  EXPECT_TRUE(eventually(
      [&] {
        return edges_["edge-a"].proc->log().find("is revoked") != std::string::npos ||
               edges_["edge-a"].proc->log().find("does not exist (deleted?)") != std::string::npos;
      },
      std::chrono::seconds(40)))
      << edges_["edge-a"].proc->log();
  EXPECT_FALSE(connected());
  EXPECT_EQ(getJson("/api/v1/nodes/edge-a", 404).value("reason", ""), "NotFound");
}

// A restarted cloudcore keeps its ticket key (pki/tunnel-ticket.key): the node's reconnect
// resumes its TLS session instead of a full handshake. The resumed session still names the
// node's certificate, so revoking that certificate (its serial removed from the Node) closes
// the tunnel and refuses the next connection.
TEST_F(SecurityTest, NodesResumeTlsAfterARestartAndRemovingTheSerialRevokes) {
  startEdge("edge-a");
  auto connected = [&] {
    auto s = edgeGet("edge-a", "/status");
    return s.is_object() && s["tunnel"].value("connected", false);
  };
  ASSERT_TRUE(eventually(connected));
  auto handshakes = [&](const char* resumed) -> long {
    auto c = client();
    auto r = c.request("GET", "/metrics");
    if (!r.isOk() || r->status != 200) return -1;
    const std::string key =
        std::string("edgeplane_cloudhub_tls_handshakes_total{resumed=\"") + resumed + "\"} ";
    auto at = r->body.find(key);
    return at == std::string::npos ? -1 : std::stol(r->body.substr(at + key.size()));
  };
  restartCloud();
  ASSERT_TRUE(
      eventually([&] { return handshakes("true") >= 1 && connected(); }, std::chrono::seconds(40)))
      << cloud_->log();
  EXPECT_EQ(handshakes("false"), 0) << "the reconnect after the restart was a full handshake";

  auto c = client();
  auto r = c.request("PATCH", "/api/v1/nodes/edge-a",
                     R"({"metadata":{"annotations":{"edgeplane.io/client-certificates":"1"}}})",
                     "application/merge-patch+json");
  ASSERT_TRUE(r.isOk() && r->status == 200) << (r.isOk() ? r->body : r.status().toString());
  ASSERT_TRUE(eventually([&] { return !connected(); }, std::chrono::seconds(10)));
  EXPECT_NE(cloud_->log().find("is no longer listed"), std::string::npos) << cloud_->log();
  EXPECT_TRUE(eventually(
      [&] { return edges_["edge-a"].proc->log().find("is revoked") != std::string::npos; },
      std::chrono::seconds(40)))
      << edges_["edge-a"].proc->log();
}

TEST_F(SecurityTest, PlainAndTls12ClientsAreRefusedOnTheTunnel) {
  // No TLS at all: the handshake never completes, nothing is served.
  {
    auto r = runCommand({"curl", "-sS", "--max-time", "3", "--http2-prior-knowledge",
                         "http://127.0.0.1:" + std::to_string(tunnelPort_) + "/"});
    EXPECT_NE(r.exitCode, 0) << r.out;
  }
  if (system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
  auto tls12 = runCommand({"openssl", "s_client", "-connect",
                           "127.0.0.1:" + std::to_string(tunnelPort_), "-tls1_2", "-alpn", "h2"},
                          "", std::chrono::seconds(10));
  // s_client prints "New, TLSv1.2, Cipher is ..." only for an established session.
  EXPECT_EQ(tls12.out.find("New, TLSv1.2"), std::string::npos) << tls12.out;
  EXPECT_NE(tls12.out.find("Cipher is (NONE)"), std::string::npos) << tls12.out;
  auto tls13 = runCommand({"openssl", "s_client", "-connect",
                           "127.0.0.1:" + std::to_string(tunnelPort_), "-tls1_3", "-alpn", "h2"},
                          "", std::chrono::seconds(10));
  EXPECT_NE(tls13.out.find("TLSv1.3"), std::string::npos) << tls13.out;
}

TEST_F(SecurityTest, SecretsAreEncryptedAtRestAndKeysRotate) {
  const std::string value = "at-rest-plaintext-7f3a9c";
  ASSERT_EQ(
      post("/api/v1/namespaces/default/secrets",
           json{{"metadata", {{"name", "db"}}}, {"stringData", {{"password", value}}}}.dump()),
      201);
  auto readBack = [&] {
    auto s = getJson("/api/v1/namespaces/default/secrets/db");
    return s.is_object() ? s["data"].value("password", "") : std::string();
  };
  const std::string encoded = readBack();
  ASSERT_FALSE(encoded.empty());
  // No file under the data dir holds the value, in plain text or base64.
  auto leaks = [&] {
    std::string found;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dataDir_)) {
      if (!e.is_regular_file()) continue;
      std::string bytes = slurp(e.path().string());
      if (bytes.find(value) != std::string::npos || bytes.find(encoded) != std::string::npos) {
        found += e.path().string() + " ";
      }
    }
    return found;
  };
  EXPECT_EQ(leaks(), "");
  EXPECT_NE(cloud_->log().find("cloudcore"), std::string::npos);
  EXPECT_EQ(cloud_->log().find(value), std::string::npos);

  // Rotation: key2 added first (new writes use it), every Secret rewritten, key1 removed.
  const std::string generated = slurp(dataDir_ + "/pki/encryption-config.yaml");
  auto key1 = generated.substr(generated.find("secret:") + 7);
  key1 = key1.substr(key1.find_first_not_of(" \"'"));
  key1 = key1.substr(0, key1.find_first_of("\"'\n"));
  const std::string key2 = pki::base64Encode(std::string(32, 'k'));
  auto config = [&](const std::vector<std::pair<std::string, std::string>>& keys) {
    std::string y =
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n";
    for (const auto& [name, secret] : keys) {
      y += "      - name: " + name + "\n        secret: " + secret + "\n";
    }
    y += "  - identity: {}\n";
    std::string path = writeFile("enc-" + std::to_string(keys.size()) + keys[0].first + ".yaml", y);
    ::chmod(path.c_str(), 0600);
    return path;
  };
  const std::string both = config({{"key2", key2}, {"key1", key1}});
  cloud_.reset();
  auto rewrite = runCommand({buildPath("cloudcore/cloudcore"), "--data-dir", dataDir_,
                             "--encryption-provider-config", both, "--rewrite-secrets"});
  ASSERT_EQ(rewrite.exitCode, 0) << rewrite.out << rewrite.err;
  EXPECT_NE(rewrite.out.find("rewrote"), std::string::npos) << rewrite.out;
  startCloud(cloudArgs(
      {"--token-auth-file", tokenFile_, "--encryption-provider-config", config({{"key2", key2}})}));
  EXPECT_EQ(readBack(), encoded);
  EXPECT_EQ(leaks(), "");
}

class CertificateRenewalTest : public SecurityTest {
 protected:
  void SetUp() override {
    tunnelPort_ = freePort();
    dataDir_ = dir_.path() + "/data";
    startCloud(cloudArgs({"--node-certificate-lifetime", "1m"}));
  }
};

TEST_F(CertificateRenewalTest, NodeRenewsWithoutDisconnecting) {
  startEdge("edge-r");
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-r") == "True"; }));
  const std::string pemPath = dir_.path() + "/edge-r/pki/node.pem";
  auto serialOf = [&] {
    auto pem = slurp(pemPath);
    auto at = pem.find("-----BEGIN CERTIFICATE");
    if (at == std::string::npos) return std::string();
    auto c = pki::parseCertificate(pem.substr(at));
    return c.isOk() ? c->serialHex : std::string();
  };
  const std::string first = serialOf();
  ASSERT_FALSE(first.empty());
  // 80% of a minute: renewed after about 48 s, over the open stream.
  ASSERT_TRUE(eventually([&] { return serialOf() != first && !serialOf().empty(); },
                         std::chrono::seconds(75)))
      << edges_["edge-r"].proc->log();
  auto status = edgeGet("edge-r", "/status");
  EXPECT_EQ(status["tunnel"].value("connects", 0), 1) << status.dump();
  EXPECT_TRUE(status["tunnel"].value("connected", false));
  auto node = getJson("/api/v1/nodes/edge-r");
  std::string serials =
      node["metadata"]["annotations"].value("edgeplane.io/client-certificates", "");
  EXPECT_NE(serials.find(serialOf()), std::string::npos) << serials;
  // The renewed certificate is what a restart uses.
  edges_["edge-r"].proc->stop(SIGTERM);
  edges_["edge-r"].proc.reset();
  auto& e = edges_["edge-r"];
  e.localPort = freePort();  // the old one may be taken meanwhile
  e.proc = std::make_unique<Process>(
      std::vector<std::string>{buildPath("edgecore/edgecore"), "--node-name", "edge-r", "--cloud",
                               "127.0.0.1:" + std::to_string(tunnelPort_), "--data-dir",
                               dir_.path() + "/edge-r", "--local-api-listen",
                               "127.0.0.1:" + std::to_string(e.localPort), "--runtime-endpoint", "",
                               "--mqtt-server", "", "--dmi-socket", "", "--service-proxy", "off"},
      dir_.path() + "/edge-r-2.log");
  ASSERT_TRUE(e.proc->start());
  EXPECT_TRUE(eventually([&] {
    auto s = edgeGet("edge-r", "/status");
    return s.is_object() && s["tunnel"].value("connected", false);
  })) << e.proc->log();
}

}  // namespace
}  // namespace ep::testing
