#include "tests/common/grpclite/test_certs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace ep::grpclite::testing {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

[[noreturn]] void fail(const std::string& what) {
  char buf[256] = "unknown error";
  if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  throw std::runtime_error("test certificates: " + what + ": " + buf);
}

void check(int ok, const std::string& what) {
  if (ok != 1) fail(what);
}

std::string bioString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Ptr<EVP_PKEY> newKey() {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) fail("EC key");
  return key;
}

std::string keyPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), "key PEM");
  return bioString(bio.get());
}

std::string certPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert), "certificate PEM");
  return bioString(bio.get());
}

Ptr<EVP_PKEY> readKey(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) fail("read key");
  return key;
}

Ptr<X509> readCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Ptr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) fail("read certificate");
  return cert;
}

void addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) fail("extension " + value);
  check(X509_add_ext(cert, ext.get(), -1), "add extension " + value);
}

// A certificate for `key` with the subject filled in, not yet signed.
Ptr<X509> newCert(EVP_PKEY* key, const std::string& cn, const std::string& org) {
  Ptr<X509> cert(X509_new());
  if (!cert) fail("X509_new");
  check(X509_set_version(cert.get(), 2), "version");
  unsigned char serial[16];
  check(RAND_bytes(serial, sizeof serial), "serial");
  serial[0] &= 0x7f;  // positive
  Ptr<BIGNUM> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    fail("serial");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) == nullptr) {
    fail("validity");
  }
  check(X509_set_pubkey(cert.get(), key), "public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!org.empty()) {
    check(
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0),
        "O");
  }
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0),
        "CN");
  return cert;
}

}  // namespace

KeyCert makeCa(const std::string& commonName) {
  auto key = newKey();
  auto cert = newCert(key.get(), commonName, "");
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())), "issuer");
  addExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  addExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  addExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) fail("sign CA");
  return {certPem(cert.get()), keyPem(key.get())};
}

KeyCert makeLeaf(const KeyCert& ca, const LeafSpec& spec) {
  auto caKey = readKey(ca.keyPem);
  auto caCert = readCert(ca.certPem);
  auto key = newKey();
  auto cert = newCert(key.get(), spec.commonName, spec.organization);
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(caCert.get())), "issuer");
  addExt(cert.get(), caCert.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExt(cert.get(), caCert.get(), NID_key_usage, "critical,digitalSignature");
  std::string eku;
  if (spec.serverAuth) eku = "serverAuth";
  if (spec.clientAuth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
  if (!eku.empty()) addExt(cert.get(), caCert.get(), NID_ext_key_usage, eku);
  std::string san;
  for (const auto& d : spec.dnsNames) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : spec.ips) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) addExt(cert.get(), caCert.get(), NID_subject_alt_name, san);
  addExt(cert.get(), caCert.get(), NID_subject_key_identifier, "hash");
  addExt(cert.get(), caCert.get(), NID_authority_key_identifier, "keyid:always");
  if (X509_sign(cert.get(), caKey.get(), EVP_sha256()) <= 0) fail("sign leaf");
  return {certPem(cert.get()), keyPem(key.get())};
}

std::string encryptKeyPem(const std::string& pem, const std::string& password) {
  auto key = readKey(pem);
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), password.data(),
                                      static_cast<int>(password.size()), nullptr, nullptr),
        "encrypted key PEM");
  return bioString(bio.get());
}

const TestPki& testPki() {
  static const TestPki pki = [] {
    TestPki p;
    p.ca = makeCa("edgeplane-test-ca");
    p.server = makeLeaf(p.ca, {.commonName = "cloudhub",
                               .dnsNames = {"localhost"},
                               .ips = {"127.0.0.1"},
                               .serverAuth = true});
    p.client = makeLeaf(
        p.ca, {.commonName = "system:node:n1", .organization = "system:nodes", .clientAuth = true});
    p.otherCa = makeCa("some-other-ca");
    return p;
  }();
  return pki;
}

}  // namespace ep::grpclite::testing
