#include "cloudcore/certs/cluster_pki.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/kubeconfig/kubeconfig.h"
#include "tests/testing/temp_dir.h"

namespace ep::certs {
namespace {

mode_t modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

ClusterPkiOptions options(const std::string& dir) {
  ClusterPkiOptions o;
  o.dataDir = dir;
  o.apiServerUrl = "https://127.0.0.1:6443";
  o.sans = {"edge.example.com", "10.1.2.3"};
  return o;
}

TEST(ClusterPkiTest, FirstStartCreatesThenReuses) {
  testing::TempDir dir;
  auto first = loadOrCreateClusterPki(options(dir.path()));
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  EXPECT_EQ(modeOf(dir.path() + "/pki"), 0700u);
  for (const char* key : {"ca.key", "apiserver.key", "tunnel.key"}) {
    EXPECT_EQ(modeOf(dir.path() + "/pki/" + key), 0600u) << key;
  }
  EXPECT_EQ(modeOf(dir.path() + "/admin.kubeconfig"), 0600u);
  EXPECT_EQ(first->caHash.rfind("sha256:", 0), 0u);

  auto api = pki::parseCertificate(first->apiServing.certPem);
  ASSERT_TRUE(api.isOk());
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  EXPECT_TRUE(has(api->dnsNames, "localhost"));
  EXPECT_TRUE(has(api->dnsNames, "edge.example.com"));
  EXPECT_TRUE(has(api->ipAddresses, "127.0.0.1"));
  EXPECT_TRUE(has(api->ipAddresses, "10.1.2.3"));
  EXPECT_TRUE(pki::verifyCertificate(first->apiServing.certPem, first->ca.certPem,
                                     std::chrono::system_clock::now())
                  .isOk());

  auto admin = kubeconfig::load(dir.path() + "/admin.kubeconfig");
  ASSERT_TRUE(admin.isOk()) << admin.status().toString();
  EXPECT_EQ(admin->server, "https://127.0.0.1:6443");
  EXPECT_EQ(admin->caPem, first->ca.certPem);
  auto adminCert = pki::parseCertificate(admin->clientCertPem);
  ASSERT_TRUE(adminCert.isOk());
  EXPECT_EQ(adminCert->organizations, std::vector<std::string>{"system:masters"});

  auto second = loadOrCreateClusterPki(options(dir.path()));
  ASSERT_TRUE(second.isOk()) << second.status().toString();
  EXPECT_EQ(second->ca.certPem, first->ca.certPem);
  EXPECT_EQ(second->apiServing.certPem, first->apiServing.certPem);
  EXPECT_EQ(second->caHash, first->caHash);
}

TEST(ClusterPkiTest, NewNamesIssueTheServingCertificateAgain) {
  testing::TempDir dir;
  auto first = loadOrCreateClusterPki(options(dir.path()));
  ASSERT_TRUE(first.isOk());
  auto o = options(dir.path());
  o.sans.push_back("new.example.com");
  auto second = loadOrCreateClusterPki(o);
  ASSERT_TRUE(second.isOk()) << second.status().toString();
  EXPECT_EQ(second->ca.certPem, first->ca.certPem);
  EXPECT_NE(second->apiServing.certPem, first->apiServing.certPem);
  auto info = pki::parseCertificate(second->apiServing.certPem);
  ASSERT_TRUE(info.isOk());
  EXPECT_NE(std::find(info->dnsNames.begin(), info->dnsNames.end(), "new.example.com"),
            info->dnsNames.end());
}

TEST(ClusterPkiTest, MissingOrMismatchedFilesAreNamed) {
  testing::TempDir dir;
  ASSERT_TRUE(loadOrCreateClusterPki(options(dir.path())).isOk());
  const std::string pkiDir = dir.path() + "/pki";
  std::filesystem::rename(pkiDir + "/apiserver.key", pkiDir + "/apiserver.key.bak");
  auto missing = loadOrCreateClusterPki(options(dir.path()));
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("apiserver.key is missing"), std::string::npos)
      << missing.status().message();

  // A key of another pair: mismatched.
  std::filesystem::copy_file(pkiDir + "/tunnel.key", pkiDir + "/apiserver.key");
  auto mismatched = loadOrCreateClusterPki(options(dir.path()));
  ASSERT_FALSE(mismatched.isOk());
  EXPECT_NE(mismatched.status().message().find("apiserver.key does not belong to"),
            std::string::npos)
      << mismatched.status().message();
  std::filesystem::remove(pkiDir + "/apiserver.key");
  std::filesystem::rename(pkiDir + "/apiserver.key.bak", pkiDir + "/apiserver.key");

  // A CA key without its certificate.
  std::filesystem::remove(pkiDir + "/ca.crt");
  auto noCa = loadOrCreateClusterPki(options(dir.path()));
  ASSERT_FALSE(noCa.isOk());
  EXPECT_NE(noCa.status().message().find("ca.crt is missing"), std::string::npos);

  // Garbage in a certificate.
  testing::TempDir other;
  ASSERT_TRUE(loadOrCreateClusterPki(options(other.path())).isOk());
  std::ofstream(other.path() + "/pki/ca.crt") << "garbage";
  auto garbage = loadOrCreateClusterPki(options(other.path()));
  ASSERT_FALSE(garbage.isOk());
  EXPECT_NE(garbage.status().message().find("ca"), std::string::npos);
}

TEST(ClusterPkiTest, ServingCertificateFromAnotherCaIsRefused) {
  testing::TempDir a, b;
  ASSERT_TRUE(loadOrCreateClusterPki(options(a.path())).isOk());
  ASSERT_TRUE(loadOrCreateClusterPki(options(b.path())).isOk());
  for (const char* f : {"apiserver.crt", "apiserver.key"}) {
    std::filesystem::copy_file(b.path() + "/pki/" + f, a.path() + "/pki/" + f,
                               std::filesystem::copy_options::overwrite_existing);
  }
  auto r = loadOrCreateClusterPki(options(a.path()));
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("was not issued by"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace ep::certs
