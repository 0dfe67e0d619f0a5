#include "common/kubeconfig/kubeconfig.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/temp_dir.h"

namespace ep::kubeconfig {
namespace {

const char* kCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const char* kKey = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n";

TEST(KubeconfigTest, RenderThenParse) {
  RenderInput in;
  in.server = "https://127.0.0.1:6443";
  in.caPem = kCert;
  in.clientCertPem = kCert;
  in.clientKeyPem = kKey;
  auto c = parse(render(in), {.source = "admin.kubeconfig"});
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->caPem, kCert);
  EXPECT_EQ(c->clientCertPem, kCert);
  EXPECT_EQ(c->clientKeyPem, kKey);
  EXPECT_EQ(c->token, "");
  EXPECT_FALSE(c->insecureSkipVerify);

  RenderInput tok;
  tok.server = "https://h:1";
  tok.token = "abc.def";
  auto t = parse(render(tok), {});
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(t->token, "abc.def");
  EXPECT_EQ(t->caPem, "");
}

TEST(KubeconfigTest, ContextsFilesAndOverrides) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/ca.crt") << kCert;
  std::ofstream(dir.path() + "/token") << "file-token\n";
  const std::string text = R"(apiVersion: v1
kind: Config
current-context: a
clusters:
- name: c1
  cluster: {server: "https://one:1", certificate-authority: ca.crt, tls-server-name: api.local}
- name: c2
  cluster: {server: "https://two:2", insecure-skip-tls-verify: true}
contexts:
- name: a
  context: {cluster: c1, user: u1, namespace: team}
- name: b
  context: {cluster: c2, user: u2}
users:
- name: u1
  user: {tokenFile: token}
- name: u2
  user: {token: inline}
)";
  auto a = parse(text, {.source = "cfg", .baseDir = dir.path()});
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_EQ(a->server, "https://one:1");
  EXPECT_EQ(a->caPem, kCert);
  EXPECT_EQ(a->tlsServerName, "api.local");
  EXPECT_EQ(a->token, "file-token");
  EXPECT_EQ(a->ns, "team");
  auto b = parse(text, {.source = "cfg", .baseDir = dir.path(), .context = "b"});
  ASSERT_TRUE(b.isOk()) << b.status().toString();
  EXPECT_EQ(b->server, "https://two:2");
  EXPECT_TRUE(b->insecureSkipVerify);
  EXPECT_EQ(b->token, "inline");

  std::ofstream(dir.path() + "/kc") << text;
  auto loaded = load(dir.path() + "/kc");
  ASSERT_TRUE(loaded.isOk()) << loaded.status().toString();
  EXPECT_EQ(loaded->caPem, kCert);
}

TEST(KubeconfigTest, ErrorsNameTheField) {
  auto expectError = [](const std::string& text, const std::string& needle,
                        const std::string& context = "") {
    auto r = parse(text, {.source = "kc", .context = context});
    ASSERT_FALSE(r.isOk()) << text;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  expectError("", "empty kubeconfig");
  expectError("[1, 2]", "expected a mapping");
  expectError("kind: Config\n", "current-context is not set");
  expectError("current-context: x\ncontexts: []\n", "context \"x\" not found");
  expectError("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n",
              "cluster \"c\" not found");
  expectError(
      "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
      "clusters: [{name: c, cluster: {server: s}}]\n"
      "users: [{name: u, user: {client-key-data: '!!!'}}]\n",
      "client-key-data: invalid base64");
  expectError(
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
      "clusters: [{name: c, cluster: {server: [1]}}]\n",
      "server: must be a string");
  expectError(
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
      "clusters: [{name: c, cluster: {server: s, certificate-authority: /nonexistent/ca}}]\n",
      "certificate-authority: cannot read /nonexistent/ca");
  expectError("current-context: x\n", "context \"x\" not found", "");
  EXPECT_FALSE(load("/nonexistent/kubeconfig").isOk());
  EXPECT_FALSE(parse(std::string(2 << 20, 'a'), {}).isOk());
}

}  // namespace
}  // namespace ep::kubeconfig
