// The edge's wolfSSL PKI checked against the cloud's OpenSSL one: what the node creates, the
// cloud accepts, and what the cloud issues, the node reads the same way.
#include "common/pki/edge_pki.h"

#include <gtest/gtest.h>

#include "common/pki/pki.h"

namespace ep::pki {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;

class EdgePkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = createCa("edgeplane-test-ca", hours(24));
    ASSERT_TRUE(ca.isOk()) << ca.status().toString();
    ca_ = *ca;
  }
  // The cloud's side of a join: parse the CSR, issue a client certificate for its key.
  std::string issue(const std::string& csrPem) {
    auto csr = parseCsr(csrPem);
    EXPECT_TRUE(csr.isOk()) << csr.status().toString();
    if (!csr.isOk()) return {};
    CertRequest req{.commonName = csr->commonName,
                    .organizations = csr->organizations,
                    .clientAuth = true,
                    .validity = hours(1)};
    auto cert = issueCertificate(ca_, csr->publicKeyPem, req);
    EXPECT_TRUE(cert.isOk()) << cert.status().toString();
    return cert.isOk() ? *cert : std::string();
  }
  KeyAndCert ca_;
};

TEST_F(EdgePkiTest, ANodeKeyAndCsrFromWolfSslAreAcceptedByTheCloud) {
  auto key = edge::generateKey();
  ASSERT_TRUE(key.isOk()) << key.status().toString();
  EXPECT_NE(key->find("-----BEGIN EC PRIVATE KEY-----"), std::string::npos);
  EXPECT_TRUE(publicKeyOf(*key).isOk());  // OpenSSL reads it

  auto csrPem = edge::createCsr(*key, "system:node:edge-1", {"system:nodes"});
  ASSERT_TRUE(csrPem.isOk()) << csrPem.status().toString();
  auto csr = parseCsr(*csrPem);  // OpenSSL checks the request's signature
  ASSERT_TRUE(csr.isOk()) << csr.status().toString();
  EXPECT_EQ(csr->commonName, "system:node:edge-1");
  EXPECT_EQ(csr->organizations, std::vector<std::string>{"system:nodes"});
  EXPECT_EQ(csr->publicKeyPem, *publicKeyOf(*key));

  const std::string cert = issue(*csrPem);
  ASSERT_FALSE(cert.empty());
  EXPECT_TRUE(edge::checkKeyMatchesCert(*key, cert).isOk());
  auto other = edge::generateKey();
  ASSERT_TRUE(other.isOk());
  EXPECT_EQ(edge::checkKeyMatchesCert(*other, cert).code(), Code::kInvalid);
}

TEST_F(EdgePkiTest, CertificatesReadTheSameAsWithOpenSsl) {
  auto key = edge::generateKey();
  ASSERT_TRUE(key.isOk());
  auto csrPem = edge::createCsr(*key, "system:node:edge-1", {"system:nodes", "team-a"});
  ASSERT_TRUE(csrPem.isOk());
  const std::string cert = issue(*csrPem);
  auto want = parseCertificate(cert);
  auto got = edge::parseCertificate(cert);
  ASSERT_TRUE(want.isOk());
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->commonName, want->commonName);
  EXPECT_EQ(got->organizations, want->organizations);
  EXPECT_EQ(got->serialHex, want->serialHex);
  EXPECT_EQ(got->notBefore, want->notBefore);
  EXPECT_EQ(got->notAfter, want->notAfter);
  EXPECT_FALSE(got->isCa);
  auto caInfo = edge::parseCertificate(ca_.certPem);
  ASSERT_TRUE(caInfo.isOk());
  EXPECT_TRUE(caInfo->isCa);
  // The join token's CA hash: the node computes what the cloud printed.
  EXPECT_EQ(*edge::publicKeyHash(ca_.certPem), *publicKeyHash(ca_.certPem));
  EXPECT_EQ(*edge::publicKeyHash(cert), *publicKeyHash(cert));
}

TEST_F(EdgePkiTest, VerificationChecksTheIssuerTheSignatureAndTheTime) {
  auto key = edge::generateKey();
  ASSERT_TRUE(key.isOk());
  const std::string cert = issue(*edge::createCsr(*key, "system:node:a", {"system:nodes"}));
  auto now = system_clock::now();
  EXPECT_TRUE(edge::verifyCertificate(cert, ca_.certPem, now).isOk());
  EXPECT_FALSE(edge::verifyCertificate(cert, ca_.certPem, now + hours(2)).isOk());  // expired
  auto otherCa = createCa("edgeplane-test-ca", hours(24));  // same name, other key
  ASSERT_TRUE(otherCa.isOk());
  auto wrong = edge::verifyCertificate(cert, otherCa->certPem, now);
  EXPECT_EQ(wrong.code(), Code::kInvalid);
  EXPECT_NE(wrong.message().find("signature"), std::string::npos) << wrong.message();
  auto anotherName = createCa("another-ca", hours(24));
  ASSERT_TRUE(anotherName.isOk());
  EXPECT_FALSE(edge::verifyCertificate(cert, anotherName->certPem, now).isOk());
  // A leaf is not a CA.
  EXPECT_FALSE(edge::verifyCertificate(cert, cert, now).isOk());
}

TEST_F(EdgePkiTest, KeysMadeByOpenSslStillWork) {
  // Nodes that joined before the edge moved to wolfSSL hold PKCS#8 keys from OpenSSL.
  auto key = generateKey();
  ASSERT_TRUE(key.isOk());
  ASSERT_NE(key->find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  auto csrPem = edge::createCsr(*key, "system:node:old", {"system:nodes"});
  ASSERT_TRUE(csrPem.isOk()) << csrPem.status().toString();
  const std::string cert = issue(*csrPem);
  EXPECT_TRUE(edge::checkKeyMatchesCert(*key, cert).isOk());
}

TEST_F(EdgePkiTest, BadInputIsAnErrorNamingIt) {
  auto key = edge::generateKey();
  ASSERT_TRUE(key.isOk());
  EXPECT_EQ(edge::createCsr(*key, "", {}).status().code(), Code::kInvalid);
  auto longName = edge::createCsr(*key, "system:node:" + std::string(60, 'a'), {});
  EXPECT_EQ(longName.status().code(), Code::kInvalid);
  EXPECT_NE(longName.status().message().find("commonName"), std::string::npos);
  EXPECT_EQ(
      edge::createCsr(*key, "x", {"bad\nname"}).status().message().rfind("organizations[0]", 0),
      0u);
  EXPECT_EQ(edge::createCsr("not a key", "x", {}).status().code(), Code::kInvalid);
  for (std::string bad :
       {std::string(), std::string("garbage"),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}) {
    EXPECT_FALSE(edge::parseCertificate(bad).isOk());
    EXPECT_FALSE(edge::publicKeyHash(bad).isOk());
    EXPECT_FALSE(edge::checkKeyMatchesCert(*key, bad).isOk());
  }
  EXPECT_EQ(edge::parseCertificate(std::string(70000, 'A')).status().code(), Code::kTooLarge);
}

}  // namespace
}  // namespace ep::pki
