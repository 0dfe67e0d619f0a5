#include "common/pki/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <system_error>
#include <utility>

#include "common/api/base64.h"
#include "common/pki/openssl_ptr.h"

namespace ep::pki {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// --- OpenSSL object ownership -------------------------------------------------------------

using AkidPtr = Ptr<AUTHORITY_KEYID, AUTHORITY_KEYID_free>;
using Asn1IntegerPtr = Ptr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1StringPtr = Ptr<ASN1_STRING, ASN1_STRING_free>;
using BasicConstraintsPtr = Ptr<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;
using BignumPtr = Ptr<BIGNUM, BN_free>;
using BioPtr = Ptr<BIO, BIO_free_all>;
using BitStringPtr = Ptr<ASN1_BIT_STRING, ASN1_BIT_STRING_free>;
using EkuPtr = Ptr<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;
using GeneralNamePtr = Ptr<GENERAL_NAME, GENERAL_NAME_free>;
using GeneralNamesPtr = Ptr<GENERAL_NAMES, GENERAL_NAMES_free>;
using NamePtr = Ptr<X509_NAME, X509_NAME_free>;
using OctetStringPtr = Ptr<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using PkeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;
using ReqPtr = Ptr<X509_REQ, X509_REQ_free>;
using StoreCtxPtr = Ptr<X509_STORE_CTX, X509_STORE_CTX_free>;
using StorePtr = Ptr<X509_STORE, X509_STORE_free>;
using X509Ptr = Ptr<X509, X509_free>;

// --- Limits --------------------------------------------------------------------------------

constexpr size_t kMaxCsrBytes = 16 * 1024;
constexpr size_t kMaxCertBytes = 64 * 1024;
constexpr size_t kMaxKeyBytes = 64 * 1024;
constexpr size_t kMaxBundleBytes = 1024 * 1024;
constexpr size_t kMaxRandomBytes = 1024 * 1024;
constexpr size_t kMaxNameBytes = 1024;
constexpr seconds kMaxValidity{int64_t{86400} * 365 * 100};
constexpr seconds kBackdate{60};
constexpr int kSerialBytes = 16;

// --- Errors --------------------------------------------------------------------------------

// The reason of the first (innermost) queued error, with its detail text when it has one, and
// an empty queue afterwards.
std::string takeOpensslReason() {
  std::string reason;
  const char* data = nullptr;
  int flags = 0;
  for (unsigned long e; (e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0;) {
    if (!reason.empty()) continue;
    const char* text = ERR_reason_error_string(e);
    reason = text ? text : "error " + std::to_string(ERR_GET_REASON(e));
    if (data && *data && (flags & ERR_TXT_STRING)) reason += std::string(" (") + data + ")";
  }
  return reason.empty() ? std::string("unknown error") : reason;
}

std::string withReason(std::string what) {
  return what + ": " + takeOpensslReason();
}

Status tooLarge(std::string m) {
  return {Code::kTooLarge, std::move(m)};
}

// Runs `steps` in order until one fails; returns that failure or ok.
template <typename... Step>
Status inOrder(Step&&... steps) {
  Status st;
  (void)((st = steps(), st.isOk()) && ...);
  return st;
}

// --- BIO and PEM ---------------------------------------------------------------------------

// A read-only memory BIO over `text` (which must outlive it). Callers bound the size first.
BioPtr readBio(std::string_view text) {
  const char* data = text.empty() ? "" : text.data();  // BIO_new_mem_buf refuses null
  return BioPtr(BIO_new_mem_buf(data, static_cast<int>(text.size())));
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 && data ? std::string(data, static_cast<size_t>(n)) : std::string();
}

// Runs `write` on a fresh memory BIO and returns what it wrote.
template <typename Write>
Result<std::string> writePem(const char* what, Write&& write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return internalError(withReason(std::string(what)));
  return bioText(bio.get());
}

// PEM password callback: encrypted keys are refused instead of prompting on the terminal
// (OpenSSL's default callback would).
int noPassphrase(char*, int, int, void*) {
  return -1;
}

Result<PkeyPtr> readPrivateKey(std::string_view pem, const std::string& what) {
  if (pem.size() > kMaxKeyBytes) return invalidError(what + ": larger than 64 KiB");
  BioPtr bio = readBio(pem);
  if (!bio) return internalError(withReason(what));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
  if (!key) return invalidError(withReason(what + ": not a PEM private key"));
  return key;
}

Result<PkeyPtr> readPublicKey(std::string_view pem, const std::string& what) {
  if (pem.size() > kMaxKeyBytes) return invalidError(what + ": larger than 64 KiB");
  BioPtr bio = readBio(pem);
  if (!bio) return internalError(withReason(what));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, noPassphrase, nullptr));
  if (!key) return invalidError(withReason(what + ": not a PEM public key"));
  return key;
}

// The first certificate of `pem`; errors carry `code`.
Result<X509Ptr> readCertificate(std::string_view pem, Code code, const std::string& what) {
  if (pem.size() > kMaxCertBytes) {
    return Status(code == Code::kBadRequest ? Code::kTooLarge : code,
                  what + ": larger than 64 KiB");
  }
  BioPtr bio = readBio(pem);
  if (!bio) return internalError(withReason(what));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr));
  if (!cert) return Status(code, withReason(what + ": not a PEM certificate"));
  return cert;
}

Result<std::string> privateKeyPem(EVP_PKEY* key) {
  // PEM_write_bio_PrivateKey writes unencrypted PKCS#8 ("BEGIN PRIVATE KEY").
  return writePem("write private key", [key](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

Result<std::string> publicKeyPem(EVP_PKEY* key) {
  return writePem("write public key", [key](BIO* bio) { return PEM_write_bio_PUBKEY(bio, key); });
}

Result<std::string> certificatePem(X509* cert) {
  return writePem("write certificate", [cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

// --- Keys ----------------------------------------------------------------------------------

Result<PkeyPtr> newP256Key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", const_cast<char*>("P-256")));
  if (!key) return internalError(withReason("generate P-256 key"));
  return key;
}

// Only keys whose strength and verification cost are known: EC P-256/P-384, RSA 2048-8192.
Status checkKeyAccepted(EVP_PKEY* key, const std::string& what) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[80] = {};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) {
        ERR_clear_error();
        return invalidError(what + ": EC key without a named curve is not accepted");
      }
      std::string_view name(group, len);
      if (name == "prime256v1" || name == "secp384r1") return Status::ok();
      return invalidError(what + ": EC curve " + std::string(name) +
                          " is not accepted (P-256 or P-384)");
    }
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits >= 2048 && bits <= 8192) return Status::ok();
      return invalidError(what + ": RSA key of " + std::to_string(bits) +
                          " bits is not accepted (2048 to 8192)");
    }
    default: {
      const char* type = EVP_PKEY_get0_type_name(key);
      return invalidError(what + ": key type " + std::string(type ? type : "unknown") +
                          " is not accepted (EC P-256/P-384 or RSA)");
    }
  }
}

// The digest to sign with `key`: SHA-384 for P-384, none for EdDSA, SHA-256 otherwise.
const EVP_MD* signingDigest(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) return nullptr;
  if (id == EVP_PKEY_EC && EVP_PKEY_get_bits(key) >= 384) return EVP_sha384();
  return EVP_sha256();
}

// --- Names ---------------------------------------------------------------------------------

bool isUtf8(std::string_view s) {
  // Counts characters with OpenSSL's UTF-8 checks (no output is built).
  return ASN1_mbstring_ncopy(nullptr, reinterpret_cast<const unsigned char*>(s.data()),
                             static_cast<int>(s.size()), MBSTRING_UTF8, B_ASN1_UTF8STRING, 0,
                             0) >= 0;
}

bool hasControlCharacter(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// A subject attribute value: non-empty UTF-8 without control characters, at most 1 KiB.
Status checkNameValue(std::string_view value, const std::string& field) {
  if (value.empty()) return invalidError(field + ": Required value");
  if (value.size() > kMaxNameBytes) return invalidError(field + ": longer than 1024 bytes");
  if (hasControlCharacter(value)) return invalidError(field + ": holds a control character");
  if (!isUtf8(value)) {
    ERR_clear_error();
    return invalidError(field + ": not valid UTF-8");
  }
  return Status::ok();
}

// O=organizations[0], ..., O=organizations[n-1], CN=commonName (Go's pkix.Name order), each
// a UTF8String. No length bound beyond kMaxNameBytes: Kubernetes node names exceed X.520's 64.
Result<NamePtr> buildName(const std::string& commonName,
                          const std::vector<std::string>& organizations) {
  Status st = checkNameValue(commonName, "commonName");
  if (!st.isOk()) return st;
  for (size_t i = 0; i < organizations.size(); ++i) {
    st = checkNameValue(organizations[i], "organizations[" + std::to_string(i) + "]");
    if (!st.isOk()) return st;
  }
  NamePtr name(X509_NAME_new());
  if (!name) return internalError(withReason("build subject"));
  auto add = [&name](int nid, const std::string& value) {
    return X509_NAME_add_entry_by_NID(name.get(), nid, V_ASN1_UTF8STRING,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  for (const auto& org : organizations) {
    if (!add(NID_organizationName, org)) return internalError(withReason("build subject"));
  }
  if (!add(NID_commonName, commonName)) return internalError(withReason("build subject"));
  return name;
}

struct SubjectNames {
  std::string commonName;
  std::vector<std::string> organizations;
};

// CN and O values of `name` as UTF-8. More than one CN is refused: it is the identity.
Result<SubjectNames> readSubject(const X509_NAME* name, const std::string& what,
                                 bool refuseControlCharacters) {
  SubjectNames out;
  bool haveCn = false;
  int count = X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    if (nid != NID_commonName && nid != NID_organizationName) continue;
    const char* attr = nid == NID_commonName ? "CN" : "O";
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    BytesPtr owned(utf8);
    if (len < 0) return invalidError(withReason(what + ": subject " + attr + " is not a string"));
    std::string value(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
    if (refuseControlCharacters && hasControlCharacter(value)) {
      return invalidError(what + ": subject " + attr + " holds a control character");
    }
    if (nid == NID_commonName) {
      if (haveCn) return invalidError(what + ": subject has more than one CN");
      haveCn = true;
      out.commonName = std::move(value);
    } else {
      out.organizations.push_back(std::move(value));
    }
  }
  return out;
}

// --- Certificate building ------------------------------------------------------------------

Status checkValidity(seconds validity) {
  if (validity <= seconds{0} || validity > kMaxValidity) {
    return invalidError("validity: must be more than 0 and at most 100 years, got " +
                        std::to_string(validity.count()) + "s");
  }
  return Status::ok();
}

Status setRandomSerial(X509* cert) {
  unsigned char bytes[kSerialBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return internalError(withReason("random serial"));
  bytes[sizeof bytes - 1] |= 1;  // never zero
  BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn) return internalError(withReason("serial"));
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial || X509_set_serialNumber(cert, serial.get()) != 1) {
    return internalError(withReason("serial"));
  }
  return Status::ok();
}

// notBefore = now - kBackdate, notAfter = now + validity, cut at `notAfterCap` when given.
Status setValidity(X509* cert, seconds validity, const ASN1_TIME* notAfterCap) {
  // system_clock, as every reader of the result: std::time() reads the coarse clock, which
  // can still show the previous second just after system_clock passed it (PkiTest.CaRoundTrip
  // failed so in CI, by 2.6 ms).
  const time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  auto days = static_cast<int>(validity.count() / 86400);
  auto rest = static_cast<long>(validity.count() % 86400);
  if (!ASN1_TIME_adj(X509_getm_notBefore(cert), now, 0, -static_cast<long>(kBackdate.count())) ||
      !ASN1_TIME_adj(X509_getm_notAfter(cert), now, days, rest)) {
    return internalError(withReason("validity"));
  }
  if (notAfterCap && ASN1_TIME_compare(X509_get0_notAfter(cert), notAfterCap) > 0 &&
      X509_set1_notAfter(cert, notAfterCap) != 1) {
    return internalError(withReason("validity"));
  }
  return Status::ok();
}

Status addExtension(X509* cert, int nid, void* value, bool critical, const char* what) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1) {
    return internalError(withReason(std::string("add ") + what));
  }
  return Status::ok();
}

Status addBasicConstraints(X509* cert, bool isCa) {
  BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());
  if (!bc) return internalError(withReason("basicConstraints"));
  bc->ca = isCa ? 0xff : 0;
  return addExtension(cert, NID_basic_constraints, bc.get(), true, "basicConstraints");
}

// keyUsage bit numbers (RFC 5280 4.2.1.3).
constexpr int kDigitalSignature = 0;
constexpr int kKeyEncipherment = 2;
constexpr int kKeyCertSign = 5;
constexpr int kCrlSign = 6;

Status addKeyUsage(X509* cert, std::initializer_list<int> bits) {
  BitStringPtr ku(ASN1_BIT_STRING_new());
  if (!ku) return internalError(withReason("keyUsage"));
  for (int bit : bits) {
    if (ASN1_BIT_STRING_set_bit(ku.get(), bit, 1) != 1)
      return internalError(withReason("keyUsage"));
  }
  return addExtension(cert, NID_key_usage, ku.get(), true, "keyUsage");
}

Status addExtendedKeyUsage(X509* cert, bool serverAuth, bool clientAuth) {
  if (!serverAuth && !clientAuth) return Status::ok();
  EkuPtr eku(sk_ASN1_OBJECT_new_null());
  if (!eku) return internalError(withReason("extendedKeyUsage"));
  // OBJ_nid2obj returns static objects, which ASN1_OBJECT_free leaves alone.
  if ((serverAuth && sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth)) <= 0) ||
      (clientAuth && sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_client_auth)) <= 0)) {
    return internalError(withReason("extendedKeyUsage"));
  }
  return addExtension(cert, NID_ext_key_usage, eku.get(), false, "extendedKeyUsage");
}

// RFC 5280 4.2.1.2 method 1 (as Go and OpenSSL do): SHA-1 of the subjectPublicKey bits.
Result<OctetStringPtr> keyIdentifier(const X509* cert) {
  const unsigned char* bits = nullptr;
  int len = 0;
  if (X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, X509_get_X509_PUBKEY(cert)) != 1) {
    return internalError(withReason("key identifier"));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  OctetStringPtr id(ASN1_OCTET_STRING_new());
  if (!id || EVP_Digest(bits, static_cast<size_t>(len), md, &mdLen, EVP_sha1(), nullptr) != 1 ||
      ASN1_OCTET_STRING_set(id.get(), md, static_cast<int>(mdLen)) != 1) {
    return internalError(withReason("key identifier"));
  }
  return id;
}

Status addSubjectKeyId(X509* cert) {
  auto id = keyIdentifier(cert);
  if (!id) return id.status();
  return addExtension(cert, NID_subject_key_identifier, id->get(), false, "subjectKeyIdentifier");
}

// keyIdentifier = the CA's subjectKeyIdentifier, or one computed from its key when it has none.
Status addAuthorityKeyId(X509* cert, X509* ca) {
  AkidPtr akid(AUTHORITY_KEYID_new());
  if (!akid) return internalError(withReason("authorityKeyIdentifier"));
  if (const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(ca)) {
    akid->keyid = ASN1_OCTET_STRING_dup(skid);
    if (!akid->keyid) return internalError(withReason("authorityKeyIdentifier"));
  } else {
    auto id = keyIdentifier(ca);
    if (!id) return id.status();
    akid->keyid = id->release();
  }
  return addExtension(cert, NID_authority_key_identifier, akid.get(), false,
                      "authorityKeyIdentifier");
}

Status pushName(GENERAL_NAMES* names, int type, ASN1_STRING* value) {
  GeneralNamePtr name(GENERAL_NAME_new());
  if (!name) {
    ASN1_STRING_free(value);
    return internalError(withReason("subjectAltName"));
  }
  GENERAL_NAME_set0_value(name.get(), type, value);
  if (sk_GENERAL_NAME_push(names, name.get()) <= 0)
    return internalError(withReason("subjectAltName"));
  name.release();  // owned by `names` now
  return Status::ok();
}

// Validates the SAN entries of `req` and builds the extension value (null when there is none).
Result<GeneralNamesPtr> buildSubjectAltNames(const CertRequest& req) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return internalError(withReason("subjectAltName"));
  for (size_t i = 0; i < req.dnsNames.size(); ++i) {
    const std::string& dns = req.dnsNames[i];
    std::string field = "dnsNames[" + std::to_string(i) + "]";
    bool printable = !dns.empty() && dns.size() <= 253;
    for (char c : dns) printable = printable && c > 0x20 && c < 0x7f;
    if (!printable) return invalidError(field + ": invalid DNS name " + quoted(dns));
    Asn1StringPtr value(ASN1_IA5STRING_new());
    if (!value || ASN1_STRING_set(value.get(), dns.data(), static_cast<int>(dns.size())) != 1) {
      return internalError(withReason("subjectAltName"));
    }
    Status st = pushName(names.get(), GEN_DNS, value.release());
    if (!st.isOk()) return st;
  }
  for (size_t i = 0; i < req.ipAddresses.size(); ++i) {
    const std::string& ip = req.ipAddresses[i];
    std::string field = "ipAddresses[" + std::to_string(i) + "]";
    unsigned char addr[16];
    int len = 0;
    if (ip.find('\0') == std::string::npos && inet_pton(AF_INET, ip.c_str(), addr) == 1) {
      len = 4;
    } else if (ip.find('\0') == std::string::npos && inet_pton(AF_INET6, ip.c_str(), addr) == 1) {
      len = 16;
    } else {
      return invalidError(field + ": invalid IP address " + quoted(ip));
    }
    Asn1StringPtr value(ASN1_OCTET_STRING_new());
    if (!value || ASN1_OCTET_STRING_set(value.get(), addr, len) != 1) {
      return internalError(withReason("subjectAltName"));
    }
    Status st = pushName(names.get(), GEN_IPADD, value.release());
    if (!st.isOk()) return st;
  }
  if (sk_GENERAL_NAME_num(names.get()) == 0) names.reset();
  return names;
}

Status sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, signingDigest(key)) <= 0) return internalError(withReason("sign"));
  return Status::ok();
}

// --- Certificate reading -------------------------------------------------------------------

Result<system_clock::time_point> timePoint(const ASN1_TIME* t, const std::string& what) {
  struct tm tm = {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return invalidError(withReason(what));
  using namespace std::chrono;
  year_month_day ymd{year{tm.tm_year + 1900}, month{static_cast<unsigned>(tm.tm_mon + 1)},
                     day{static_cast<unsigned>(tm.tm_mday)}};
  if (!ymd.ok()) return invalidError(what + ": invalid date");
  sys_seconds s = sys_days{ymd} + hours{tm.tm_hour} + minutes{tm.tm_min} + seconds{tm.tm_sec};
  constexpr auto kMax = duration_cast<seconds>(system_clock::duration::max());
  constexpr auto kMin = duration_cast<seconds>(system_clock::duration::min());
  if (s.time_since_epoch() >= kMax) return system_clock::time_point::max();
  if (s.time_since_epoch() <= kMin) return system_clock::time_point::min();
  return time_point_cast<system_clock::duration>(s);
}

std::string lowerHex(const unsigned char* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

Result<std::string> serialHex(const X509* cert) {
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return invalidError(withReason("certificate: serial"));
  CharsPtr hex(BN_bn2hex(bn.get()));
  if (!hex) return internalError(withReason("certificate: serial"));
  std::string text(hex.get());
  std::string sign;
  if (!text.empty() && text[0] == '-') {
    sign = "-";
    text.erase(0, 1);
  }
  size_t firstDigit = text.find_first_not_of('0');
  text = firstDigit == std::string::npos ? "0" : text.substr(firstDigit);
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return sign + text;
}

Status readSubjectAltNames(X509* cert, CertInfo& info) {
  int critical = -1;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  if (!names) {
    if (critical == -1) return Status::ok();  // absent
    return invalidError(withReason("certificate: unreadable or repeated subjectAltName"));
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
    if (type == GEN_DNS) {
      info.dnsNames.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                                 static_cast<size_t>(ASN1_STRING_length(value)));
    } else if (type == GEN_IPADD) {
      int len = ASN1_STRING_length(value);
      char text[INET6_ADDRSTRLEN] = {};
      if ((len != 4 && len != 16) || !inet_ntop(len == 4 ? AF_INET : AF_INET6,
                                                ASN1_STRING_get0_data(value), text, sizeof text)) {
        return invalidError("certificate: subjectAltName IP address of " + std::to_string(len) +
                            " bytes");
      }
      info.ipAddresses.emplace_back(text);
    }
  }
  return Status::ok();
}

Result<X509Ptr> newCertificate() {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return internalError(withReason("new certificate"));
  }
  return cert;
}

}  // namespace

// --- Public API ----------------------------------------------------------------------------

Result<std::string> generateKey() {
  ErrorQueueGuard guard;
  auto key = newP256Key();
  if (!key) return key.status();
  return privateKeyPem(key->get());
}

Result<KeyAndCert> createCa(const std::string& commonName, std::chrono::seconds validity) {
  ErrorQueueGuard guard;
  Status st = checkValidity(validity);
  if (!st.isOk()) return st;
  auto name = buildName(commonName, {});
  if (!name) return name.status();
  auto key = newP256Key();
  if (!key) return key.status();
  auto cert = newCertificate();
  if (!cert) return cert.status();
  X509* x = cert->get();
  if (X509_set_subject_name(x, name->get()) != 1 || X509_set_issuer_name(x, name->get()) != 1 ||
      X509_set_pubkey(x, key->get()) != 1) {
    return internalError(withReason("ca"));
  }
  st =
      inOrder([&] { return setRandomSerial(x); }, [&] { return setValidity(x, validity, nullptr); },
              [&] { return addBasicConstraints(x, true); },
              [&] {
                return addKeyUsage(x, {kKeyCertSign, kCrlSign});
              },
              [&] { return addSubjectKeyId(x); }, [&] { return sign(x, key->get()); });
  if (!st.isOk()) return st;
  auto keyPem = privateKeyPem(key->get());
  if (!keyPem) return keyPem.status();
  auto certPem = certificatePem(x);
  if (!certPem) return certPem.status();
  return KeyAndCert{std::move(*keyPem), std::move(*certPem)};
}

Result<std::string> issueCertificate(const KeyAndCert& ca, const std::string& publicKeyPem,
                                     const CertRequest& req) {
  ErrorQueueGuard guard;
  Status st = checkValidity(req.validity);
  if (!st.isOk()) return st;
  auto subject = buildName(req.commonName, req.organizations);
  if (!subject) return subject.status();
  auto altNames = buildSubjectAltNames(req);
  if (!altNames) return altNames.status();

  auto caKey = readPrivateKey(ca.keyPem, "ca: key");
  if (!caKey) return caKey.status();
  auto caCert = readCertificate(ca.certPem, Code::kInvalid, "ca: certificate");
  if (!caCert) return caCert.status();
  X509* caX = caCert->get();
  if (EVP_PKEY_eq(X509_get0_pubkey(caX), caKey->get()) != 1) {
    return invalidError("ca: key does not match certificate");
  }
  if ((X509_get_extension_flags(caX) & EXFLAG_CA) == 0) {
    return invalidError("ca: certificate is not a CA");
  }
  if (X509_cmp_time(X509_get0_notAfter(caX), nullptr) <= 0) {
    return invalidError("ca: certificate has expired");
  }
  auto key = readPublicKey(publicKeyPem, "publicKey");
  if (!key) return key.status();
  st = checkKeyAccepted(key->get(), "publicKey");
  if (!st.isOk()) return st;

  auto cert = newCertificate();
  if (!cert) return cert.status();
  X509* x = cert->get();
  if (X509_set_subject_name(x, subject->get()) != 1 ||
      X509_set_issuer_name(x, X509_get_subject_name(caX)) != 1 ||
      X509_set_pubkey(x, key->get()) != 1) {
    return internalError(withReason("certificate"));
  }
  bool rsa = EVP_PKEY_get_base_id(key->get()) == EVP_PKEY_RSA;
  st = inOrder([&] { return setRandomSerial(x); },
               [&] { return setValidity(x, req.validity, X509_get0_notAfter(caX)); },
               [&] { return addBasicConstraints(x, false); },
               [&] {
                 return rsa ? addKeyUsage(x, {kDigitalSignature, kKeyEncipherment})
                            : addKeyUsage(x, {kDigitalSignature});
               },
               [&] { return addExtendedKeyUsage(x, req.serverAuth, req.clientAuth); },
               [&] { return addSubjectKeyId(x); }, [&] { return addAuthorityKeyId(x, caX); },
               [&] {
                 if (!*altNames) return Status::ok();
                 return addExtension(x, NID_subject_alt_name, altNames->get(), false,
                                     "subjectAltName");
               },
               [&] { return sign(x, caKey->get()); });
  if (!st.isOk()) return st;
  return certificatePem(x);
}

Result<KeyAndCert> issueKeyAndCertificate(const KeyAndCert& ca, const CertRequest& req) {
  auto key = generateKey();
  if (!key) return key.status();
  auto pub = publicKeyOf(*key);
  if (!pub) return pub.status();
  auto cert = issueCertificate(ca, *pub, req);
  if (!cert) return cert.status();
  return KeyAndCert{std::move(*key), std::move(*cert)};
}

Result<std::string> publicKeyOf(const std::string& keyPem) {
  ErrorQueueGuard guard;
  auto key = readPrivateKey(keyPem, "key");
  if (!key) return key.status();
  return publicKeyPem(key->get());
}

Result<std::string> createCsr(const std::string& keyPem, const std::string& commonName,
                              const std::vector<std::string>& organizations) {
  ErrorQueueGuard guard;
  auto subject = buildName(commonName, organizations);
  if (!subject) return subject.status();
  auto key = readPrivateKey(keyPem, "key");
  if (!key) return key.status();
  Status st = checkKeyAccepted(key->get(), "key");
  if (!st.isOk()) return st;
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), subject->get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key->get()) != 1 ||
      X509_REQ_sign(req.get(), key->get(), signingDigest(key->get())) <= 0) {
    return internalError(withReason("csr"));
  }
  X509_REQ* r = req.get();
  return writePem("csr", [r](BIO* bio) { return PEM_write_bio_X509_REQ(bio, r); });
}

Result<CsrInfo> parseCsr(std::string_view pem) {
  ErrorQueueGuard guard;
  if (pem.size() > kMaxCsrBytes) return tooLarge("csr: larger than 16 KiB");
  BioPtr bio = readBio(pem);
  if (!bio) return internalError(withReason("csr"));
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, noPassphrase, nullptr));
  if (!req) return badRequestError(withReason("csr: not a PEM certificate request"));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (!key) return badRequestError(withReason("csr: unreadable public key"));
  Status st = checkKeyAccepted(key, "csr");
  if (!st.isOk()) return st;
  if (X509_REQ_verify(req.get(), key) != 1) return invalidError("csr: signature does not verify");
  auto names = readSubject(X509_REQ_get_subject_name(req.get()), "csr", true);
  if (!names) return names.status();
  auto pub = publicKeyPem(key);
  if (!pub) return pub.status();
  return CsrInfo{std::move(names->commonName), std::move(names->organizations), std::move(*pub)};
}

Result<CertInfo> parseCertificate(std::string_view pem) {
  ErrorQueueGuard guard;
  auto cert = readCertificate(pem, Code::kBadRequest, "certificate");
  if (!cert) return cert.status();
  return certificateInfo(cert->get());
}

Result<CertInfo> certificateInfo(const x509_st* cert) {
  ErrorQueueGuard guard;
  if (cert == nullptr) return badRequestError("certificate: none");
  // OpenSSL's getters take non-const pointers; none of them modifies the certificate.
  X509* x = const_cast<X509*>(cert);
  CertInfo info;
  auto names = readSubject(X509_get_subject_name(x), "certificate", false);
  if (!names) return names.status();
  info.commonName = std::move(names->commonName);
  info.organizations = std::move(names->organizations);
  auto serial = serialHex(x);
  if (!serial) return serial.status();
  info.serialHex = std::move(*serial);
  auto notBefore = timePoint(X509_get0_notBefore(x), "certificate: notBefore");
  if (!notBefore) return notBefore.status();
  auto notAfter = timePoint(X509_get0_notAfter(x), "certificate: notAfter");
  if (!notAfter) return notAfter.status();
  info.notBefore = *notBefore;
  info.notAfter = *notAfter;
  info.isCa = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
  Status st = readSubjectAltNames(x, info);
  if (!st.isOk()) return st;
  return info;
}

Status verifyCertificate(std::string_view certPem, std::string_view caPem,
                         std::chrono::system_clock::time_point now) {
  ErrorQueueGuard guard;
  auto cert = readCertificate(certPem, Code::kForbidden, "certificate");
  if (!cert) return cert.status();
  if (caPem.size() > kMaxBundleBytes) return invalidError("ca: larger than 1 MiB");
  StorePtr store(X509_STORE_new());
  BioPtr bio = readBio(caPem);
  if (!store || !bio) return internalError(withReason("verify"));
  int anchors = 0;
  while (X509Ptr ca{PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr)}) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) return internalError(withReason("verify"));
    ++anchors;
  }
  // The read that ended the loop: "no start line" at the end of the input, anything else is a
  // certificate block that does not parse.
  unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    return invalidError(
        withReason("ca: certificate " + std::to_string(anchors + 1) + " is not a PEM certificate"));
  }
  ERR_clear_error();
  if (anchors == 0) return invalidError("ca: no PEM certificate");
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr) != 1) {
    return internalError(withReason("verify"));
  }
  // Every certificate in caPem is a trust anchor, self-signed or not.
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
  X509_STORE_CTX_set_time(ctx.get(), 0, system_clock::to_time_t(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    return {Code::kForbidden,
            std::string("certificate verify failed: ") + X509_verify_cert_error_string(err)};
  }
  return Status::ok();
}

Status checkKeyMatchesCert(std::string_view keyPem, std::string_view certPem) {
  ErrorQueueGuard guard;
  auto key = readPrivateKey(keyPem, "key");
  if (!key) return key.status();
  auto cert = readCertificate(certPem, Code::kInvalid, "certificate");
  if (!cert) return cert.status();
  if (EVP_PKEY_eq(X509_get0_pubkey(cert->get()), key->get()) != 1) {
    return invalidError("key does not match certificate");
  }
  return Status::ok();
}

Result<std::string> publicKeyHash(std::string_view certPem) {
  ErrorQueueGuard guard;
  auto cert = readCertificate(certPem, Code::kBadRequest, "certificate");
  if (!cert) return cert.status();
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert->get()), &der);
  BytesPtr owned(der);
  if (len <= 0) return internalError(withReason("certificate: public key"));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdLen = 0;
  if (EVP_Digest(der, static_cast<size_t>(len), md, &mdLen, EVP_sha256(), nullptr) != 1) {
    return internalError(withReason("sha256"));
  }
  return "sha256:" + lowerHex(md, mdLen);
}

std::string base64Encode(std::string_view data) {
  return api::base64Encode(data);
}

Result<std::string> base64Decode(std::string_view text) {
  auto out = api::base64Decode(text);
  if (!out) return badRequestError("invalid base64");
  return std::move(*out);
}

Result<std::string> randomBytes(size_t n) {
  ErrorQueueGuard guard;
  if (n > kMaxRandomBytes) return invalidError("random: more than 1 MiB requested");
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return internalError(withReason("random"));
  }
  return out;
}

Result<std::string> randomToken(size_t n) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  constexpr unsigned kSize = sizeof kAlphabet - 1;   // 36
  constexpr unsigned kAccept = 256 / kSize * kSize;  // 252: keeps the draw uniform
  if (n > kMaxRandomBytes) return invalidError("random: more than 1 MiB requested");
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    auto bytes = randomBytes(std::min(n - out.size() + 8, kMaxRandomBytes));
    if (!bytes) return bytes.status();
    for (char c : *bytes) {
      auto u = static_cast<unsigned char>(c);
      if (u < kAccept && out.size() < n) out += kAlphabet[u % kSize];
    }
  }
  return out;
}

}  // namespace ep::pki
