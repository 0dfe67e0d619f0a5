// Unit tests for ep_pki: CA and leaf issuance, CSRs, verification, key files, encodings.
#include "common/pki/pki.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ep::pki {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

constexpr std::chrono::seconds kYear{86400 * 365};

// The value of an ok Result; throws (a test failure naming the status) otherwise.
template <typename T>
T ok(Result<T> r) {
  if (!r.isOk()) throw std::runtime_error("unexpected error: " + r.status().toString());
  return std::move(r).value();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// PEM <-> DER for tampering tests (64-column base64 as OpenSSL writes it).
std::string pemBody(const std::string& pem) {
  std::string b64;
  size_t pos = 0;
  while (pos < pem.size()) {
    size_t end = pem.find('\n', pos);
    if (end == std::string::npos) end = pem.size();
    std::string line = pem.substr(pos, end - pos);
    if (line.rfind("-----", 0) != 0) b64 += line;
    pos = end + 1;
  }
  return ok(base64Decode(b64));
}

std::string toPem(const std::string& der, const std::string& label) {
  std::string b64 = base64Encode(der);
  std::string out = "-----BEGIN " + label + "-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END " + label + "-----\n";
}

// Made with `openssl req -new -newkey ... -nodes -subj ...` (OpenSSL 3.0).
constexpr char kRsa2048Csr[] = R"(-----BEGIN CERTIFICATE REQUEST-----
MIICjDCCAXQCAQAwRzEVMBMGA1UECgwMc3lzdGVtOm5vZGVzMQ8wDQYDVQQKDAZ0
ZWFtIGExHTAbBgNVBAMMFHN5c3RlbTpub2RlOnJzYS1lZGdlMIIBIjANBgkqhkiG
9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuouP5V4KXmO90PyxlJSkSx5BZhz3uFN3ABAB
o2D3uiPf0gauwnnleRJsSXPmp3RSBqHeGeJ7fhjF2SvFPcgm7fU7rLlhBaQWEc41
Y4t3IgSZpmKsfuw0lHIbLUTltXyEyWu6CApE78NaFpN7scZpfzCEEpP+CFEXh5Ua
Br5f05Soc3YqFHS/kWsK9HkT+dE4YYaX/tPOc/HYREmrqhtBryvfG5HpBKFMO8vf
1iuJgwZQUkrjfgsAwvLCYZmCZQ2bwEciXlYJz+xA9BN/d8WpXDUGHYOyS/IheDiL
BYwL6xTOQDePAByhqhZcl4fbwwI7N6xQhjwolzrran5pKTSm2QIDAQABoAAwDQYJ
KoZIhvcNAQELBQADggEBAKz2fpjwlagAFNVRj0O7TOinlrsmfY85bErKn04+K6ja
K5U64NeH3rSg0bmc+zKrrCTQjG1g/LVl9gLtimfBqELZwIHCzsYoulvfDAGTbU5o
W/3DhiI2eN9qpLTnFYL5RYai0ZJsv3zvP6Q4sMSX6fxzhg2sTKAE+LAKukZx3FtT
SPZajPFfeAu3VUIJxLXrXjOtrnk9UOyq63qNxfiDAcpvFiYlqkXcdUuX/UvgZ87T
05f5Aumn2RO7jhd8gVphb33AmywqFvSJiyZDOsCG1peHL97/P1LnE0eLb9oohhPe
N1mTkezuiWtFWvWQ3RWQpuGIUGYsasQowFvxuzw+5ns=
-----END CERTIFICATE REQUEST-----
)";
constexpr char kP384Csr[] = R"(-----BEGIN CERTIFICATE REQUEST-----
MIIBBzCBjgIBADAPMQ0wCwYDVQQDDARwMzg0MHYwEAYHKoZIzj0CAQYFK4EEACID
YgAEOm/dOzSLi11nYYZCjlAXENguOV2Q9QKbw+Gt5zyqhs8CoamGtU//ueR9ncLB
ILzAthrV3lQRzlzo+XMfDW4/Dv9tGQ+wKSr7vTCTYZfvrWLZnFechbk/FfVAfMaY
6m/aoAAwCgYIKoZIzj0EAwIDaAAwZQIwJcpCzh8SqsJWSnRplGFIK6W7oJNyFj/d
liJPhLogvGMTpGXvVqLAWceHweVtzkveAjEAyefUmMMeG/V9aW0nuELZSX1qnAZV
KSwEUYCTWo10Djne9AkhVG023Zq3F891n0CG
-----END CERTIFICATE REQUEST-----
)";
constexpr char kRsa1024Csr[] = R"(-----BEGIN CERTIFICATE REQUEST-----
MIIBTjCBuAIBADAPMQ0wCwYDVQQDDAR3ZWFrMIGfMA0GCSqGSIb3DQEBAQUAA4GN
ADCBiQKBgQC/BrNqOxjk9od7/oqIcuxEu4Q7kMTz3O5ePZlhAz2wVZV5KX6hAUEH
SyycG/b/GuYtPXx9xicgDidtBzulZy2PZnRO59sz+9Es4R6xNwQd0JNRAVr4nhXM
zkh3PSbBxUC78h/AiwQAzYokAdvRVoTn8cVwLAraSARkhe5Sr0VcNQIDAQABoAAw
DQYJKoZIhvcNAQELBQADgYEASJx1vGPXIwNFLC8swrRL4gLcabxQv5Gb+q1Y9MIz
MVntwkufTu560Z/wzMu6qZ/vG+gmtEmmnXFmBko8XNcfDedRAHZ4CKzOZ7SV/NLf
yDaYKEO5c7lBrFaHPlnHwQKGrsUw7BeBNgYt8HAk+Uqi3DgCdS7xNztrABH2OKjm
bgw=
-----END CERTIFICATE REQUEST-----
)";
constexpr char kEd25519Csr[] = R"(-----BEGIN CERTIFICATE REQUEST-----
MIGMMEACAQAwDTELMAkGA1UEAwwCZWQwKjAFBgMrZXADIQASwQawBZMUxR5USLw0
vDSEO9uz0x1wO9aO13MX1UwbaKAAMAUGAytlcANBACZfUiuX25twtxFvWyZd5msW
IiZuAdd20A6TbKos/HsKovc5r896Nc+j4IdKIuBhVWK1oOXXLUv75Ge91CTd4Ac=
-----END CERTIFICATE REQUEST-----
)";
constexpr char kP521Csr[] = R"(-----BEGIN CERTIFICATE REQUEST-----
MIIBUjCBtAIBADAPMQ0wCwYDVQQDDARwNTIxMIGbMBAGByqGSM49AgEGBSuBBAAj
A4GGAAQBJxWFFwGkNrTrtQDpu3oIGiH7vzYcx4sn24FjwthFSWc0D+q0lAQJDLIa
Ned2jMrTmCnmgMSUa3fHhB0X59B5OTUBm3J3ea/EAti3o+2w8pLg4skLicxLCfLC
R0MOkm0oJebd7NWPnnm5FMp2gRAMfIaf39UFKeoXljX5mzCtBXwPA76gADAKBggq
hkjOPQQDAgOBjAAwgYgCQgGKvl+TlPeLWCqRIJtb8SAlMhlsIob8ChOwi5PzH8b0
Qu7loNintGfqpz3VpmG3KYb2yyyynMD6nXHRvCuE/2bX2wJCAISTRiGUVH/KI439
BKV5efVNxNmlSl+gaFt2RBlVaecGyhqCRRCZL5AT3uj1R3MKgBbcnxYzmBC+7d0j
vIE+ukHi
-----END CERTIFICATE REQUEST-----
)";
// genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:secret
constexpr char kEncryptedKey[] = R"(-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAj0tPIOeIbMnwICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEENDHG3GWfntZMoUet12l2EEEgZAJ
2XuZBOSj0ru1QgUsmn4vecLF0JktMqzCU8DXzgH+Stv8Lj9Y+c/l3GM+bV2sNb8V
9cjlWNGS/7jdGURWoG4tuGavBQBfZYAs2uTso99n0AoeeAPxasZtFVcsT23Z53Xl
KGZ4ufn+07RtDNDNcG9Fc9TAIy1pNuEp3Qst9XF7Qo5pcdDfYtt84CYCv1a9Euc=
-----END ENCRYPTED PRIVATE KEY-----
)";

class PkiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ca_ = new KeyAndCert(ok(createCa("edgeplane-ca", 10 * kYear)));
    otherCa_ = new KeyAndCert(ok(createCa("edgeplane-ca", 10 * kYear)));
  }
  static void TearDownTestSuite() {
    delete ca_;
    delete otherCa_;
  }
  static CertRequest nodeRequest() {
    CertRequest req;
    req.commonName = "system:node:edge-1";
    req.organizations = {"system:nodes", "edgeplane:edge"};
    req.dnsNames = {"edge-1", "edge-1.example.com"};
    req.ipAddresses = {"10.0.0.7", "fd00::7"};
    req.serverAuth = true;
    req.clientAuth = true;
    req.validity = 1h;
    return req;
  }

  static KeyAndCert* ca_;
  static KeyAndCert* otherCa_;
};

KeyAndCert* PkiTest::ca_ = nullptr;
KeyAndCert* PkiTest::otherCa_ = nullptr;

TEST_F(PkiTest, GenerateKeyIsPkcs8AndFresh) {
  std::string a = ok(generateKey());
  std::string b = ok(generateKey());
  EXPECT_EQ(a.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u) << a;
  EXPECT_NE(a, b);
  std::string pub = ok(publicKeyOf(a));
  EXPECT_EQ(pub.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u) << pub;
  EXPECT_EQ(ok(publicKeyOf(a)), pub);
  EXPECT_NE(ok(publicKeyOf(b)), pub);
}

TEST_F(PkiTest, CaRoundTrip) {
  auto before = system_clock::now();
  KeyAndCert ca = ok(createCa("my-ca", 2 * kYear));
  auto after = system_clock::now();
  EXPECT_EQ(ca.keyPem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  EXPECT_EQ(ca.certPem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);

  CertInfo info = ok(parseCertificate(ca.certPem));
  EXPECT_EQ(info.commonName, "my-ca");
  EXPECT_TRUE(info.organizations.empty());
  EXPECT_TRUE(info.isCa);
  EXPECT_TRUE(info.dnsNames.empty());
  EXPECT_TRUE(info.ipAddresses.empty());
  EXPECT_TRUE(std::regex_match(info.serialHex, std::regex("[1-9a-f][0-9a-f]{0,31}")))
      << info.serialHex;
  EXPECT_GE(info.notBefore, before - 61s);
  EXPECT_LE(info.notBefore, after - 59s);
  EXPECT_EQ(info.notAfter - info.notBefore, 2 * kYear + 60s);

  EXPECT_TRUE(checkKeyMatchesCert(ca.keyPem, ca.certPem).isOk());
  Status self = verifyCertificate(ca.certPem, ca.certPem, system_clock::now());
  EXPECT_TRUE(self.isOk()) << self.toString();
  EXPECT_NE(ok(parseCertificate(ca_->certPem)).serialHex, info.serialHex);
}

TEST_F(PkiTest, CreateCaRefusesBadArguments) {
  EXPECT_EQ(createCa("", kYear).status().code(), Code::kInvalid);
  EXPECT_EQ(createCa("ca", 0s).status().code(), Code::kInvalid);
  EXPECT_EQ(createCa("ca", -1s).status().code(), Code::kInvalid);
  EXPECT_EQ(createCa("ca", 101 * kYear).status().code(), Code::kInvalid);
  EXPECT_EQ(createCa("bad\xff", kYear).status().code(), Code::kInvalid);
  Status st = createCa("ca\n", kYear).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "commonName")) << st.message();
}

TEST_F(PkiTest, IssuedCertificateParses) {
  auto before = system_clock::now();
  KeyAndCert leaf = ok(issueKeyAndCertificate(*ca_, nodeRequest()));
  CertInfo info = ok(parseCertificate(leaf.certPem));
  EXPECT_EQ(info.commonName, "system:node:edge-1");
  EXPECT_EQ(info.organizations, (std::vector<std::string>{"system:nodes", "edgeplane:edge"}));
  EXPECT_EQ(info.dnsNames, (std::vector<std::string>{"edge-1", "edge-1.example.com"}));
  EXPECT_EQ(info.ipAddresses, (std::vector<std::string>{"10.0.0.7", "fd00::7"}));
  EXPECT_FALSE(info.isCa);
  EXPECT_TRUE(std::regex_match(info.serialHex, std::regex("[1-9a-f][0-9a-f]{0,31}")))
      << info.serialHex;
  EXPECT_GE(info.notBefore, before - 61s);
  EXPECT_EQ(info.notAfter - info.notBefore, 1h + 60s);
  EXPECT_TRUE(checkKeyMatchesCert(leaf.keyPem, leaf.certPem).isOk());

  // Serials are random: many certificates, no repeat.
  std::set<std::string> serials{info.serialHex};
  std::string pub = ok(publicKeyOf(leaf.keyPem));
  for (int i = 0; i < 20; ++i) {
    serials.insert(ok(parseCertificate(ok(issueCertificate(*ca_, pub, nodeRequest())))).serialHex);
  }
  EXPECT_EQ(serials.size(), 21u);
}

TEST_F(PkiTest, VerifyAgainstCa) {
  KeyAndCert leaf = ok(issueKeyAndCertificate(*ca_, nodeRequest()));
  CertInfo info = ok(parseCertificate(leaf.certPem));
  auto now = system_clock::now();

  Status st = verifyCertificate(leaf.certPem, ca_->certPem, now);
  EXPECT_TRUE(st.isOk()) << st.toString();
  // A bundle: any certificate in it is an anchor.
  st = verifyCertificate(leaf.certPem, otherCa_->certPem + ca_->certPem, now);
  EXPECT_TRUE(st.isOk()) << st.toString();

  st = verifyCertificate(leaf.certPem, otherCa_->certPem, now);
  EXPECT_EQ(st.code(), Code::kForbidden);
  EXPECT_TRUE(contains(st.message(), "certificate verify failed")) << st.message();

  st = verifyCertificate(leaf.certPem, ca_->certPem, info.notAfter + 1h);
  EXPECT_EQ(st.code(), Code::kForbidden);
  EXPECT_TRUE(contains(st.message(), "expired")) << st.message();

  st = verifyCertificate(leaf.certPem, ca_->certPem, info.notBefore - 1h);
  EXPECT_EQ(st.code(), Code::kForbidden);
  EXPECT_TRUE(contains(st.message(), "not yet valid")) << st.message();

  // A leaf is no CA: a certificate "issued" by it does not chain.
  KeyAndCert fakeCa{leaf.keyPem, leaf.certPem};
  Status issued =
      issueCertificate(fakeCa, ok(publicKeyOf(ok(generateKey()))), nodeRequest()).status();
  EXPECT_EQ(issued.code(), Code::kInvalid);
  EXPECT_EQ(issued.message(), "ca: certificate is not a CA");

  // Text around the certificates is ignored; a certificate block that does not parse is not.
  st = verifyCertificate(leaf.certPem, "# cluster CA\n" + ca_->certPem + "end\n", now);
  EXPECT_TRUE(st.isOk()) << st.toString();
  st = verifyCertificate(
      leaf.certPem, ca_->certPem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      now);
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "ca: certificate 2 is not a PEM certificate")) << st.message();
  EXPECT_EQ(verifyCertificate(leaf.certPem, "", now).code(), Code::kInvalid);
  EXPECT_EQ(verifyCertificate("", ca_->certPem, now).code(), Code::kForbidden);
}

TEST_F(PkiTest, ValidityIsCutAtTheCasNotAfter) {
  KeyAndCert shortCa = ok(createCa("short-lived", 1h));
  CertRequest req = nodeRequest();
  req.validity = kYear;
  KeyAndCert leaf = ok(issueKeyAndCertificate(shortCa, req));
  EXPECT_EQ(ok(parseCertificate(leaf.certPem)).notAfter,
            ok(parseCertificate(shortCa.certPem)).notAfter);
  EXPECT_TRUE(verifyCertificate(leaf.certPem, shortCa.certPem, system_clock::now()).isOk());
}

TEST_F(PkiTest, IssueRefusesInvalidRequests) {
  std::string pub = ok(publicKeyOf(ok(generateKey())));
  auto issueWith = [&](auto edit) {
    CertRequest req = nodeRequest();
    edit(req);
    return issueCertificate(*ca_, pub, req).status();
  };
  Status st = issueWith([](CertRequest& r) { r.ipAddresses = {"10.0.0.1", "1.2.3"}; });
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_EQ(st.message(), "ipAddresses[1]: invalid IP address \"1.2.3\"");
  for (std::string bad : {"1.2.3.4x", " 1.2.3.4", "1.2.3.256", "fe80::1%eth0", "", "::g"}) {
    st = issueWith([&](CertRequest& r) { r.ipAddresses = {bad}; });
    EXPECT_EQ(st.code(), Code::kInvalid) << bad;
    EXPECT_TRUE(contains(st.message(), "ipAddresses[0]")) << st.message();
  }
  st = issueWith([](CertRequest& r) { r.dnsNames = {"ok.example", "has space"}; });
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "dnsNames[1]")) << st.message();
  st = issueWith([](CertRequest& r) { r.commonName.clear(); });
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "commonName")) << st.message();
  st = issueWith([](CertRequest& r) { r.organizations = {"a", "b\nc"}; });
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "organizations[1]")) << st.message();
  st = issueWith([](CertRequest& r) { r.organizations = {std::string("a\0b", 3)}; });
  EXPECT_EQ(st.code(), Code::kInvalid);
  st = issueWith([](CertRequest& r) { r.validity = 0s; });
  EXPECT_EQ(st.code(), Code::kInvalid);

  // Unusable CA material.
  CertRequest req = nodeRequest();
  st = issueCertificate({otherCa_->keyPem, ca_->certPem}, pub, req).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_EQ(st.message(), "ca: key does not match certificate");
  st = issueCertificate({"junk", ca_->certPem}, pub, req).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "ca: key")) << st.message();
  st = issueCertificate({ca_->keyPem, "junk"}, pub, req).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "ca: certificate")) << st.message();
  // A private key where the public key belongs.
  st = issueCertificate(*ca_, ca_->keyPem, req).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "publicKey")) << st.message();
}

TEST_F(PkiTest, IssueWithoutNamesOrUsages) {
  CertRequest req;
  req.commonName = "kubernetes-admin";
  req.organizations = {"system:masters"};
  CertInfo info = ok(parseCertificate(ok(issueKeyAndCertificate(*ca_, req)).certPem));
  EXPECT_EQ(info.commonName, "kubernetes-admin");
  EXPECT_EQ(info.organizations, std::vector<std::string>{"system:masters"});
  EXPECT_TRUE(info.dnsNames.empty());
  EXPECT_TRUE(info.ipAddresses.empty());
  EXPECT_EQ(info.notAfter - info.notBefore, kYear + 60s);
  // Kubernetes node names may exceed X.520's 64-character CN bound.
  req.commonName = "system:node:" + std::string(200, 'n');
  EXPECT_EQ(ok(parseCertificate(ok(issueKeyAndCertificate(*ca_, req)).certPem)).commonName,
            req.commonName);
}

TEST_F(PkiTest, KeyCertMismatchDetected) {
  KeyAndCert leaf = ok(issueKeyAndCertificate(*ca_, nodeRequest()));
  EXPECT_TRUE(checkKeyMatchesCert(leaf.keyPem, leaf.certPem).isOk());
  Status st = checkKeyMatchesCert(ok(generateKey()), leaf.certPem);
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_EQ(st.message(), "key does not match certificate");
  st = checkKeyMatchesCert(ca_->keyPem, leaf.certPem);
  EXPECT_EQ(st.message(), "key does not match certificate");
  EXPECT_EQ(checkKeyMatchesCert("", leaf.certPem).code(), Code::kInvalid);
  // Encrypted keys are refused, never prompted for.
  st = checkKeyMatchesCert(kEncryptedKey, leaf.certPem);
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "key: not a PEM private key")) << st.message();
  EXPECT_EQ(publicKeyOf(kEncryptedKey).status().code(), Code::kInvalid);
  EXPECT_EQ(checkKeyMatchesCert(leaf.keyPem, "").code(), Code::kInvalid);
}

TEST_F(PkiTest, CsrRoundTrip) {
  std::string key = ok(generateKey());
  std::string csr = ok(createCsr(key, "system:node:edge-1", {"system:nodes"}));
  EXPECT_EQ(csr.rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0), 0u) << csr;
  CsrInfo info = ok(parseCsr(csr));
  EXPECT_EQ(info.commonName, "system:node:edge-1");
  EXPECT_EQ(info.organizations, std::vector<std::string>{"system:nodes"});
  EXPECT_EQ(info.publicKeyPem, ok(publicKeyOf(key)));

  // cloudcore signs it; edgecore's key matches the result.
  CertRequest req;
  req.commonName = info.commonName;
  req.organizations = info.organizations;
  req.clientAuth = true;
  std::string cert = ok(issueCertificate(*ca_, info.publicKeyPem, req));
  EXPECT_TRUE(checkKeyMatchesCert(key, cert).isOk());
  EXPECT_TRUE(verifyCertificate(cert, ca_->certPem, system_clock::now()).isOk());

  EXPECT_EQ(createCsr(key, "", {}).status().code(), Code::kInvalid);
  EXPECT_EQ(createCsr("junk", "cn", {}).status().code(), Code::kInvalid);
  EXPECT_EQ(createCsr(key, "cn", {""}).status().code(), Code::kInvalid);
}

TEST_F(PkiTest, TamperedCsrIsRefused) {
  std::string key = ok(generateKey());
  std::string csr = ok(createCsr(key, "system:node:edge-1", {"system:nodes"}));
  std::string der = pemBody(csr);
  ASSERT_TRUE(ok(parseCsr(toPem(der, "CERTIFICATE REQUEST"))).commonName == "system:node:edge-1");

  // The signed content: the node name becomes another node's.
  std::string renamed = der;
  size_t at = renamed.find("edge-1");
  ASSERT_NE(at, std::string::npos);
  renamed[at + 5] = '2';
  Status st = parseCsr(toPem(renamed, "CERTIFICATE REQUEST")).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_EQ(st.message(), "csr: signature does not verify");

  // The signature itself: its last byte.
  std::string resigned = der;
  resigned.back() = static_cast<char>(resigned.back() ^ 0x01);
  st = parseCsr(toPem(resigned, "CERTIFICATE REQUEST")).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_EQ(st.message(), "csr: signature does not verify");

  // Every single-byte flip is refused or, where it only breaks the structure, a parse error.
  for (size_t i = 0; i < der.size(); ++i) {
    std::string flipped = der;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x80);
    auto r = parseCsr(toPem(flipped, "CERTIFICATE REQUEST"));
    EXPECT_FALSE(r.isOk()) << "byte " << i;
  }
}

TEST_F(PkiTest, CsrKeyPolicy) {
  CsrInfo rsa = ok(parseCsr(kRsa2048Csr));
  EXPECT_EQ(rsa.commonName, "system:node:rsa-edge");
  EXPECT_EQ(rsa.organizations, (std::vector<std::string>{"system:nodes", "team a"}));
  CertRequest req;
  req.commonName = rsa.commonName;
  req.clientAuth = true;
  EXPECT_TRUE(issueCertificate(*ca_, rsa.publicKeyPem, req).isOk());
  EXPECT_EQ(ok(parseCsr(kP384Csr)).commonName, "p384");

  Status st = parseCsr(kRsa1024Csr).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "RSA key of 1024 bits")) << st.message();
  st = parseCsr(kEd25519Csr).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "ED25519")) << st.message();
  st = parseCsr(kP521Csr).status();
  EXPECT_EQ(st.code(), Code::kInvalid);
  EXPECT_TRUE(contains(st.message(), "secp521r1")) << st.message();
}

TEST_F(PkiTest, CsrGarbageIsRefused) {
  Status st = parseCsr("").status();
  EXPECT_EQ(st.code(), Code::kBadRequest);
  EXPECT_TRUE(contains(st.message(), "csr: not a PEM certificate request")) << st.message();
  st = parseCsr("hello").status();
  EXPECT_EQ(st.code(), Code::kBadRequest);
  EXPECT_TRUE(contains(st.message(), "no start line")) << st.message();  // OpenSSL's reason
  EXPECT_EQ(parseCsr(ca_->certPem).status().code(), Code::kBadRequest);
  std::string csr = ok(createCsr(ok(generateKey()), "n", {}));
  EXPECT_EQ(parseCsr(csr.substr(0, csr.size() / 2)).status().code(), Code::kBadRequest);
  EXPECT_EQ(parseCsr(csr + std::string(16 * 1024, '\n')).status().code(), Code::kTooLarge);
  EXPECT_TRUE(parseCsr(csr + std::string(16 * 1024 - csr.size(), '\n')).isOk());
}

TEST_F(PkiTest, PublicKeyHash) {
  std::string hash = ok(publicKeyHash(ca_->certPem));
  EXPECT_TRUE(std::regex_match(hash, std::regex("sha256:[0-9a-f]{64}"))) << hash;
  EXPECT_EQ(ok(publicKeyHash(ca_->certPem)), hash);
  EXPECT_NE(ok(publicKeyHash(otherCa_->certPem)), hash);
  // It is the key's hash: two certificates for one key share it.
  std::string pub = ok(publicKeyOf(ok(generateKey())));
  std::string a = ok(issueCertificate(*ca_, pub, nodeRequest()));
  std::string b = ok(issueCertificate(*otherCa_, pub, nodeRequest()));
  EXPECT_EQ(ok(publicKeyHash(a)), ok(publicKeyHash(b)));
  EXPECT_NE(ok(publicKeyHash(a)), hash);
  EXPECT_EQ(publicKeyHash("").status().code(), Code::kBadRequest);
}

class PkiFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("pki_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static unsigned modeOf(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }

  std::filesystem::path dir_;
};

TEST_F(PkiFileTest, WriteFileAtomicModesAndContent) {
  mode_t old = ::umask(022);
  auto path = dir_ / "pki" / "nested" / "ca.key";
  Status st = writeFileAtomic(path.string(), "secret\n", 0600);
  ASSERT_TRUE(st.isOk()) << st.toString();
  EXPECT_EQ(modeOf(path), 0600u);
  EXPECT_EQ(modeOf(dir_ / "pki"), 0700u);
  EXPECT_EQ(modeOf(dir_ / "pki" / "nested"), 0700u);
  EXPECT_EQ(ok(readFile(path.string())), "secret\n");

  // Replacing keeps exactly the requested mode and leaves no temporary file behind.
  st = writeFileAtomic(path.string(), std::string(100000, 'x'), 0644);
  ASSERT_TRUE(st.isOk()) << st.toString();
  EXPECT_EQ(modeOf(path), 0644u);
  EXPECT_EQ(ok(readFile(path.string())), std::string(100000, 'x'));
  st = writeFileAtomic(path.string(), "", 0600);
  ASSERT_TRUE(st.isOk()) << st.toString();
  EXPECT_EQ(ok(readFile(path.string())), "");
  EXPECT_EQ(modeOf(path), 0600u);
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "pki" / "nested")) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "ca.key");
  }
  EXPECT_EQ(entries, 1u);

  // An existing directory keeps its mode.
  std::filesystem::create_directories(dir_ / "open");
  std::filesystem::permissions(dir_ / "open", std::filesystem::perms(0755));
  ASSERT_TRUE(writeFileAtomic((dir_ / "open" / "f").string(), "x", 0600).isOk());
  EXPECT_EQ(modeOf(dir_ / "open"), 0755u);
  ::umask(old);
}

TEST_F(PkiFileTest, CreateFileExclusiveNeverReplaces) {
  auto path = dir_ / "keys" / "encryption-config.yaml";
  Status st = createFileExclusive(path.string(), "first\n", 0600);
  ASSERT_TRUE(st.isOk()) << st.toString();
  EXPECT_EQ(modeOf(path), 0600u);
  EXPECT_EQ(modeOf(dir_ / "keys"), 0700u);
  st = createFileExclusive(path.string(), "second\n", 0644);
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.toString();
  EXPECT_EQ(ok(readFile(path.string())), "first\n");
  EXPECT_EQ(modeOf(path), 0600u);
  // Neither call leaves its temporary file behind.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "keys")) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "encryption-config.yaml");
  }
  EXPECT_EQ(entries, 1u);
}

TEST_F(PkiFileTest, WriteFileAtomicErrorsNameThePath) {
  auto file = dir_ / "plain";
  ASSERT_TRUE(writeFileAtomic(file.string(), "x", 0600).isOk());
  // A parent that is a file.
  Status st = writeFileAtomic((file / "key").string(), "x", 0600);
  EXPECT_FALSE(st.isOk());
  EXPECT_TRUE(contains(st.message(), file.string())) << st.message();
  EXPECT_EQ(writeFileAtomic((dir_ / "d").string() + "/", "x", 0600).code(), Code::kInvalid);
}

TEST_F(PkiFileTest, ReadFileErrors) {
  std::string missing = (dir_ / "ca.key").string();
  Status st = readFile(missing).status();
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "cannot read " + missing + ": No such file or directory");
  auto big = dir_ / "big";
  ASSERT_TRUE(writeFileAtomic(big.string(), std::string(1024 * 1024 + 1, 'b'), 0600).isOk());
  EXPECT_EQ(readFile(big.string()).status().code(), Code::kTooLarge);
  ASSERT_TRUE(writeFileAtomic(big.string(), std::string(1024 * 1024, 'b'), 0600).isOk());
  EXPECT_EQ(ok(readFile(big.string())).size(), 1024u * 1024u);
  EXPECT_FALSE(readFile(dir_.string()).isOk());  // a directory
}

TEST(PkiEncodingTest, Base64) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(ok(base64Decode("aGVsbG8=")), "hello");
  EXPECT_EQ(ok(base64Decode("aGVs\nbG8=\r\n")), "hello");
  EXPECT_EQ(base64Decode("aGVsbG8").status().code(), Code::kBadRequest);
  EXPECT_EQ(base64Decode("a$==").status().code(), Code::kBadRequest);
  std::string bytes = ok(randomBytes(1000));
  EXPECT_EQ(ok(base64Decode(base64Encode(bytes))), bytes);
}

TEST(PkiRandomTest, BytesAndTokens) {
  EXPECT_EQ(ok(randomBytes(0)), "");
  std::string a = ok(randomBytes(32));
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, ok(randomBytes(32)));
  EXPECT_EQ(randomBytes(2 * 1024 * 1024).status().code(), Code::kInvalid);

  EXPECT_EQ(ok(randomToken(0)), "");
  std::string id = ok(randomToken(6));
  EXPECT_TRUE(std::regex_match(id, std::regex("[a-z0-9]{6}"))) << id;
  std::string secret = ok(randomToken(16));
  EXPECT_TRUE(std::regex_match(secret, std::regex("[a-z0-9]{16}"))) << secret;
  std::string many = ok(randomToken(36 * 200));
  EXPECT_EQ(many.size(), 36u * 200u);
  EXPECT_EQ(std::set<char>(many.begin(), many.end()).size(), 36u);
  EXPECT_EQ(ok(randomToken(1024 * 1024)).size(), 1024u * 1024u);
  EXPECT_EQ(randomToken(1024 * 1024 + 1).status().code(), Code::kInvalid);
}

// Inputs that are not what they claim give errors: never a crash, never an ok.
TEST_F(PkiTest, GarbageInputsGiveErrors) {
  std::string cert = ca_->certPem;
  std::string csr = ok(createCsr(ok(generateKey()), "n", {}));
  std::vector<std::string> inputs = {
      "",
      "garbage",
      std::string("\0\0\0", 3),
      "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n",
      cert.substr(0, cert.size() / 2),
      cert.substr(0, cert.size() - 30),
      std::string(70000, 'A'),
      "-----BEGIN CERTIFICATE-----\n" + std::string(200000, 'A') + "\n-----END CERTIFICATE-----\n",
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
  };
  auto now = system_clock::now();
  CertRequest req = nodeRequest();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& in = inputs[i];
    SCOPED_TRACE("input " + std::to_string(i));
    EXPECT_FALSE(parseCertificate(in).isOk());
    EXPECT_FALSE(parseCsr(in).isOk());
    EXPECT_FALSE(publicKeyHash(in).isOk());
    EXPECT_FALSE(publicKeyOf(in).isOk());
    EXPECT_EQ(verifyCertificate(in, cert, now).code(), Code::kForbidden);
    EXPECT_EQ(verifyCertificate(cert, in, now).code(), Code::kInvalid);
    EXPECT_FALSE(checkKeyMatchesCert(in, cert).isOk());
    EXPECT_FALSE(checkKeyMatchesCert(ca_->keyPem, in).isOk());
    EXPECT_FALSE(issueCertificate(*ca_, in, req).isOk());
    EXPECT_FALSE(issueCertificate({in, cert}, ok(publicKeyOf(ca_->keyPem)), req).isOk());
    EXPECT_FALSE(issueCertificate({ca_->keyPem, in}, ok(publicKeyOf(ca_->keyPem)), req).isOk());
    EXPECT_FALSE(createCsr(in, "n", {}).isOk());
    EXPECT_EQ(ERR_peek_error(), 0ul) << "OpenSSL error queue not empty";
  }
  // Oversized but otherwise valid input is refused by size.
  EXPECT_EQ(parseCertificate(cert + std::string(64 * 1024, '\n')).status().code(), Code::kTooLarge);
  EXPECT_EQ(publicKeyHash(cert + std::string(64 * 1024, '\n')).status().code(), Code::kTooLarge);
  // Trailing data after the first certificate is ignored.
  EXPECT_EQ(ok(parseCertificate(cert + "trailing\n")).commonName, "edgeplane-ca");
}

TEST_F(PkiTest, ErrorsLeaveTheOpensslQueueEmpty) {
  ERR_raise(ERR_LIB_USER, 1);  // a stale error from elsewhere
  EXPECT_FALSE(parseCertificate("garbage").isOk());
  EXPECT_EQ(ERR_peek_error(), 0ul);
  EXPECT_FALSE(verifyCertificate(ok(issueKeyAndCertificate(*ca_, nodeRequest())).certPem,
                                 otherCa_->certPem, system_clock::now())
                   .isOk());
  EXPECT_EQ(ERR_peek_error(), 0ul);
  EXPECT_FALSE(checkKeyMatchesCert(ok(generateKey()), ca_->certPem).isOk());
  EXPECT_EQ(ERR_peek_error(), 0ul);
  EXPECT_TRUE(
      verifyCertificate(ca_->certPem, ca_->certPem + ca_->certPem, system_clock::now()).isOk());
  EXPECT_EQ(ERR_peek_error(), 0ul);
}

TEST_F(PkiTest, ConcurrentUse) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto leaf = issueKeyAndCertificate(*ca_, nodeRequest());
        if (!leaf.isOk() ||
            !verifyCertificate(leaf->certPem, ca_->certPem, system_clock::now()).isOk() ||
            !checkKeyMatchesCert(leaf->keyPem, leaf->certPem).isOk() ||
            parseCsr("garbage").isOk()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace ep::pki
