#include "common/pki/edge_pki.h"

// wolfSSL's build options first, then its OpenSSL-compatible API (under <openssl/...> through
// the include path) and its native one.
#include <wolfssl/options.h>
// clang-format off
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
// clang-format on
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <cctype>
#include <ctime>
#include <memory>

#include "common/pki/openssl_ptr.h"

namespace ep::pki::edge {
namespace {

// Frees wolfSSL's per-thread fixed-point ECC cache (FP_ECC in Debian's build: megabytes of
// precomputed points) when an operation ends; the edge signs and verifies rarely.
struct FreeEccCache {
  ~FreeEccCache() { wc_ecc_fp_free(); }
};

constexpr size_t kMaxPemBytes = 64 * 1024;
constexpr size_t kMaxCommonName = 64;  // X.520 ub-common-name

using BioPtr = Ptr<BIO, BIO_free>;
using X509Ptr = Ptr<X509, X509_free>;
using PkeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;

int noPassphrase(char*, int, int, void*) {
  return -1;
}

BioPtr readBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

Result<X509Ptr> readCertificate(std::string_view pem, const char* what) {
  if (pem.size() > kMaxPemBytes) return Status(Code::kTooLarge, std::string(what) + ": too large");
  auto bio = readBio(pem);
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, &noPassphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!cert) return Status(Code::kBadRequest, std::string(what) + ": not a PEM certificate");
  return cert;
}

Result<PkeyPtr> readPrivateKey(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) return Status(Code::kTooLarge, "key: too large");
  auto bio = readBio(pem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &noPassphrase, nullptr) : nullptr);
  ERR_clear_error();
  if (!key) return invalidError("key: not an unencrypted PEM private key");
  return key;
}

std::vector<std::string> entries(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = -1; (i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0;) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n >= 0 && utf8 != nullptr) out.emplace_back(reinterpret_cast<char*>(utf8), n);
    OPENSSL_free(utf8);
  }
  return out;
}

Result<std::chrono::system_clock::time_point> timePoint(const ASN1_TIME* t, const char* what) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return Status(Code::kBadRequest, std::string("certificate: unreadable ") + what);
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string lowerHex(const unsigned char* data, size_t len) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

bool printable(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// A signature with `key` over fixed data verifies with `pub`.
bool signatureVerifies(EVP_PKEY* key, EVP_PKEY* pub) {
  static const unsigned char kData[] = "edgeplane key check";
  std::vector<unsigned char> sig(1024);
  size_t sigLen = sig.size();
  EVP_MD_CTX* sign = EVP_MD_CTX_new();
  bool ok = sign != nullptr && EVP_DigestSignInit(sign, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSignUpdate(sign, kData, sizeof kData) == 1 &&
            EVP_DigestSignFinal(sign, sig.data(), &sigLen) == 1;
  EVP_MD_CTX_free(sign);
  if (!ok) return false;
  EVP_MD_CTX* verify = EVP_MD_CTX_new();
  ok = verify != nullptr &&
       EVP_DigestVerifyInit(verify, nullptr, EVP_sha256(), nullptr, pub) == 1 &&
       EVP_DigestVerifyUpdate(verify, kData, sizeof kData) == 1 &&
       EVP_DigestVerifyFinal(verify, sig.data(), sigLen) == 1;
  EVP_MD_CTX_free(verify);
  ERR_clear_error();
  return ok;
}

}  // namespace

Result<std::string> generateKey() {
  FreeEccCache freeCache;
  WC_RNG rng;
  if (wc_InitRng(&rng) != 0) return internalError("key: cannot seed the random generator");
  ecc_key key;
  int rc = wc_ecc_init(&key);
  if (rc == 0) rc = wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1);
  unsigned char der[256];
  int derLen = rc == 0 ? wc_EccKeyToDer(&key, der, sizeof der) : rc;
  wc_ecc_free(&key);
  wc_FreeRng(&rng);
  if (derLen <= 0) return internalError("key: cannot generate an ECDSA P-256 key");
  unsigned char pem[512];
  const int pemLen =
      wc_DerToPem(der, static_cast<word32>(derLen), pem, sizeof pem, ECC_PRIVATEKEY_TYPE);
  std::fill(std::begin(der), std::end(der), 0);
  if (pemLen <= 0) return internalError("key: cannot encode the key as PEM");
  std::string out(reinterpret_cast<char*>(pem), static_cast<size_t>(pemLen));
  std::fill(std::begin(pem), std::end(pem), 0);
  return out;
}

Result<std::string> createCsr(const std::string& keyPem, const std::string& commonName,
                              const std::vector<std::string>& organizations) {
  FreeEccCache freeCache;
  if (commonName.empty() || commonName.size() > kMaxCommonName || !printable(commonName)) {
    return invalidError("commonName: must be 1 to 64 printable characters");
  }
  for (size_t i = 0; i < organizations.size(); ++i) {
    const auto& o = organizations[i];
    if (o.empty() || o.size() > kMaxCommonName || !printable(o)) {
      return invalidError("organizations[" + std::to_string(i) +
                          "]: must be 1 to 64 printable characters");
    }
  }
  auto key = readPrivateKey(keyPem);
  if (!key) return key.status();
  Ptr<X509_REQ, X509_REQ_free> req(X509_REQ_new());
  Ptr<X509_NAME, X509_NAME_free> name(X509_NAME_new());
  if (!req || !name) return internalError("csr: out of memory");
  auto add = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  bool ok = true;
  for (const auto& o : organizations) ok = ok && add("O", o);
  ok = ok && add("CN", commonName);
  ok = ok && X509_REQ_set_subject_name(req.get(), name.get()) == 1 &&
       X509_REQ_set_pubkey(req.get(), key->get()) == 1 &&
       X509_REQ_sign(req.get(), key->get(), EVP_sha256()) > 0;
  if (!ok) {
    ERR_clear_error();
    return internalError("csr: cannot build or sign the request");
  }
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_X509_REQ(out.get(), req.get()) != 1) {
    ERR_clear_error();
    return internalError("csr: cannot encode the request as PEM");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  if (n <= 0 || data == nullptr) return internalError("csr: empty PEM");
  return std::string(data, static_cast<size_t>(n));
}

Result<CertInfo> parseCertificate(std::string_view pem) {
  auto cert = readCertificate(pem, "certificate");
  if (!cert) return cert.status();
  CertInfo info;
  X509_NAME* subject = X509_get_subject_name(cert->get());
  auto cns = entries(subject, NID_commonName);
  if (!cns.empty()) info.commonName = cns.front();
  info.organizations = entries(subject, NID_organizationName);
  ASN1_INTEGER* serial = X509_get_serialNumber(cert->get());
  BIGNUM* bn = serial != nullptr ? ASN1_INTEGER_to_BN(serial, nullptr) : nullptr;
  char* hex = bn != nullptr ? BN_bn2hex(bn) : nullptr;
  if (hex == nullptr) {
    BN_free(bn);
    return Status(Code::kBadRequest, "certificate: unreadable serial number");
  }
  info.serialHex = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  for (auto& c : info.serialHex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t nz = info.serialHex.find_first_not_of('0');
  info.serialHex = nz == std::string::npos ? "0" : info.serialHex.substr(nz);
  auto notBefore = timePoint(X509_get_notBefore(cert->get()), "notBefore");
  if (!notBefore) return notBefore.status();
  auto notAfter = timePoint(X509_get_notAfter(cert->get()), "notAfter");
  if (!notAfter) return notAfter.status();
  info.notBefore = *notBefore;
  info.notAfter = *notAfter;
  info.isCa = wolfSSL_X509_get_isCA(cert->get()) != 0;
  ERR_clear_error();
  return info;
}

Status verifyCertificate(std::string_view certPem, std::string_view caPem,
                         std::chrono::system_clock::time_point at) {
  FreeEccCache freeCache;
  auto cert = readCertificate(certPem, "certificate");
  if (!cert) return cert.status();
  auto ca = readCertificate(caPem, "ca");
  if (!ca) return ca.status();
  auto caInfo = parseCertificate(caPem);
  if (!caInfo) return caInfo.status();
  if (!caInfo->isCa) return invalidError("ca: not a CA certificate");
  if (X509_NAME_cmp(X509_get_issuer_name(cert->get()), X509_get_subject_name(ca->get())) != 0) {
    return invalidError("certificate: issued by another CA (issuer is not the CA's subject)");
  }
  PkeyPtr caKey(X509_get_pubkey(ca->get()));
  const bool signedByCa = caKey && X509_verify(cert->get(), caKey.get()) == 1;
  ERR_clear_error();
  if (!signedByCa) return invalidError("certificate: signature does not verify with the CA's key");
  auto info = parseCertificate(certPem);
  if (!info) return info.status();
  if (at < info->notBefore || at > info->notAfter) {
    return invalidError("certificate: not valid at the time checked");
  }
  if (at < caInfo->notBefore || at > caInfo->notAfter) {
    return invalidError("ca: not valid at the time checked");
  }
  return Status::ok();
}

Status checkKeyMatchesCert(std::string_view keyPem, std::string_view certPem) {
  FreeEccCache freeCache;
  auto key = readPrivateKey(keyPem);
  if (!key) return key.status();
  auto cert = readCertificate(certPem, "certificate");
  if (!cert) return invalidError(cert.status().message());
  PkeyPtr pub(X509_get_pubkey(cert->get()));
  if (!pub || !signatureVerifies(key->get(), pub.get())) {
    return invalidError("key does not match certificate");
  }
  return Status::ok();
}

Result<std::string> publicKeyHash(std::string_view certPem) {
  auto cert = readCertificate(certPem, "certificate");
  if (!cert) return cert.status();
  PkeyPtr pub(X509_get_pubkey(cert->get()));
  unsigned char* der = nullptr;
  const int len = pub ? i2d_PUBKEY(pub.get(), &der) : -1;
  if (len <= 0 || der == nullptr) {
    ERR_clear_error();
    return internalError("certificate: public key");
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  const bool ok = EVP_Digest(der, static_cast<size_t>(len), md, &mdLen, EVP_sha256(), nullptr) == 1;
  OPENSSL_free(der);
  if (!ok) return internalError("sha256");
  return "sha256:" + lowerHex(md, mdLen);
}

}  // namespace ep::pki::edge
