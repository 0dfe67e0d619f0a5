// edgecore's node credentials (wolfSSL) against a CA made with the cloud's PKI (OpenSSL).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/pki/pki.h"
#include "edgecore/certmanager/node_credentials.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::certmanager {
namespace {

using std::chrono::hours;

class CertmanagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = pki::createCa("edgeplane-test-ca", hours(24));
    ASSERT_TRUE(ca.isOk());
    ca_ = *ca;
  }
  std::string sign(const std::string& csrPem, std::chrono::seconds life = hours(1)) {
    auto csr = pki::parseCsr(csrPem);
    EXPECT_TRUE(csr.isOk()) << csr.status().toString();
    if (!csr.isOk()) return {};
    pki::CertRequest req{.commonName = csr->commonName,
                         .organizations = csr->organizations,
                         .clientAuth = true,
                         .validity = life};
    auto cert = pki::issueCertificate(ca_, csr->publicKeyPem, req);
    EXPECT_TRUE(cert.isOk()) << cert.status().toString();
    return cert.isOk() ? *cert : std::string();
  }
  testing::TempDir dir_;
  pki::KeyAndCert ca_;
};

TEST_F(CertmanagerTest, RenewalKeyAndCertificateAreStoredPrivateAndReloaded) {
  NodeCredentials creds(dir_.path());
  // The first credentials, as a join installs them (key made by the CA's side here).
  auto first = pki::issueKeyAndCertificate(ca_, {.commonName = "system:node:edge-1",
                                                 .organizations = {"system:nodes"},
                                                 .clientAuth = true,
                                                 .validity = hours(1)});
  ASSERT_TRUE(first.isOk());
  ASSERT_TRUE(creds.install(ca_.certPem, first->keyPem, first->certPem).isOk());

  auto csr = creds.prepareRenewal("edge-1");
  ASSERT_TRUE(csr.isOk()) << csr.status().toString();
  const std::string renewed = sign(*csr);
  ASSERT_TRUE(creds.installRenewal(renewed).isOk());
  // A certificate for another key is refused and changes nothing.
  auto stranger = pki::issueKeyAndCertificate(
      ca_,
      {.commonName = "system:node:edge-1", .organizations = {"system:nodes"}, .clientAuth = true});
  ASSERT_TRUE(stranger.isOk());
  ASSERT_TRUE(creds.prepareRenewal("edge-1").isOk());
  EXPECT_FALSE(creds.installRenewal(stranger->certPem).isOk());
  EXPECT_EQ(creds.snapshot().certPem, renewed);

  struct stat st {};
  ASSERT_EQ(::stat((creds.dir() + "/node.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  NodeCredentials reloaded(dir_.path());
  ASSERT_TRUE(reloaded.load().isOk());
  EXPECT_EQ(reloaded.snapshot().certPem, renewed);
  auto info = pki::parseCertificate(renewed);
  ASSERT_TRUE(info.isOk());
  EXPECT_EQ(reloaded.snapshot().serial, info->serialHex);
}

TEST_F(CertmanagerTest, NodeNamesTooLongForACertificateAreRefusedBeforeJoining) {
  NodeCredentials creds(dir_.path());
  const std::string name(53, 'n');
  auto st =
      join(creds, "127.0.0.1:1", name, "abcdef.0123456789abcdef.sha256:" + std::string(64, 'a'),
           std::chrono::milliseconds(100));
  EXPECT_EQ(st.code(), Code::kInvalid) << st.toString();
  EXPECT_NE(st.message().find("longer than 52 characters"), std::string::npos) << st.message();
  EXPECT_EQ(creds.prepareRenewal(name).status().code(), Code::kInvalid);
  EXPECT_TRUE(creds.prepareRenewal(std::string(52, 'n')).isOk());
}

}  // namespace
}  // namespace ep::edgecore::certmanager
