#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct x509_st;  // OpenSSL's X509

// The cluster PKI (README.md): cloudcore's CA, serving and client certificates, node CSR
// signing and admin kubeconfig material; edgecore's key, CSR and certificate expiry.
//
// Every function is thread-safe and keeps no state between calls: each call builds and frees its
// own OpenSSL objects. Errors are values, never exceptions. The calling thread's OpenSSL error
// queue is empty when any of these functions returns (it is cleared on entry and on exit); an
// error's message carries OpenSSL's reason text ("key: not a PEM private key: no start line").
//
// Formats: keys are PEM (PKCS#8 "PRIVATE KEY" written; PKCS#8 and the traditional EC/RSA forms
// read; encrypted keys are refused), public keys are SubjectPublicKeyInfo PEM ("PUBLIC KEY"),
// certificates and CSRs are PEM. Functions that read a certificate use the first one in the PEM.
namespace ep::pki {

struct KeyAndCert {
  std::string keyPem;
  std::string certPem;
};

// A fresh ECDSA P-256 private key as PKCS#8 PEM. kInternal only if the CSPRNG fails.
[[nodiscard]] Result<std::string> generateKey();

// A new self-signed CA: a P-256 key and an X.509 v3 certificate with subject and issuer
// CN=commonName, basicConstraints critical CA:TRUE, keyUsage critical keyCertSign|cRLSign,
// subjectKeyIdentifier, a random 128-bit serial, valid from one minute ago until now + validity.
// kInvalid when commonName is empty or not UTF-8, or validity is not in (0, 100 years].
[[nodiscard]] Result<KeyAndCert> createCa(const std::string& commonName,
                                          std::chrono::seconds validity);

// What to put in an issued certificate.
struct CertRequest {
  std::string commonName;                  // subject CN; required
  std::vector<std::string> organizations;  // subject O, one RDN each: Kubernetes groups
  std::vector<std::string> dnsNames;       // subjectAltName DNS
  std::vector<std::string> ipAddresses;    // subjectAltName IP, IPv4 or IPv6 text
  bool serverAuth = false;                 // extendedKeyUsage serverAuth
  bool clientAuth = false;                 // extendedKeyUsage clientAuth
  std::chrono::seconds validity{86400 * 365};
};

// Issues a certificate for `publicKeyPem` (SPKI PEM) signed by `ca`: subject O=... then
// CN=commonName, a random 128-bit serial, basicConstraints critical CA:FALSE, keyUsage critical
// digitalSignature (plus keyEncipherment for an RSA key), the requested extendedKeyUsage (none
// when neither flag is set), subjectKeyIdentifier, authorityKeyIdentifier (the CA's SKID), and
// subjectAltName when any name is given. Valid from one minute ago until now + validity, cut
// at the CA's notAfter. Errors:
//   kInvalid naming the field: empty commonName, a name that is empty, not UTF-8 or holds a
//     control character, an invalid IP address ("ipAddresses[1]: invalid IP address \"1.2.3\""),
//     a validity not in (0, 100 years], a public key that is not EC P-256/P-384 or RSA 2048-8192;
//   kInvalid for an unusable CA: key or certificate not parseable, key not the certificate's,
//     certificate not a CA or expired ("ca: key does not match certificate").
[[nodiscard]] Result<std::string> issueCertificate(const KeyAndCert& ca,
                                                   const std::string& publicKeyPem,
                                                   const CertRequest& req);

// generateKey() then issueCertificate() for its public key.
[[nodiscard]] Result<KeyAndCert> issueKeyAndCertificate(const KeyAndCert& ca,
                                                        const CertRequest& req);

// The public key (SPKI PEM) of a private key PEM. kInvalid when keyPem is not a private key.
[[nodiscard]] Result<std::string> publicKeyOf(const std::string& keyPem);

// A PKCS#10 CSR (PEM) for keyPem's public key, signed with keyPem (SHA-256), subject O=... then
// CN=commonName, no extensions. kInvalid for an unreadable key, an empty commonName or a name
// that is not UTF-8 or holds a control character.
[[nodiscard]] Result<std::string> createCsr(const std::string& keyPem,
                                            const std::string& commonName,
                                            const std::vector<std::string>& organizations);

struct CsrInfo {
  std::string commonName;                  // "" when the subject has none
  std::vector<std::string> organizations;  // in subject order
  std::string publicKeyPem;                // SPKI PEM, ready for issueCertificate
};

// Parses the first CSR in `pem` and verifies its self-signature. Only EC P-256/P-384 and RSA
// 2048-8192 bit keys are accepted. Errors name the problem, prefixed "csr: ":
//   kTooLarge above 16 KiB of input;
//   kBadRequest when there is no parseable PEM CSR ("csr: not a PEM certificate request: ...");
//   kInvalid for a signature that does not verify ("csr: signature does not verify"), a key of
//     another kind or size, or a subject with more than one CN.
[[nodiscard]] Result<CsrInfo> parseCsr(std::string_view pem);

struct CertInfo {
  std::string commonName;  // "" when the subject has none
  std::vector<std::string> organizations;
  std::string serialHex;  // lower-case hex, no leading zeros ("0" for zero)
  // Clamped to system_clock's range (about 1678-2262), so 9999-12-31 reads as max().
  std::chrono::system_clock::time_point notBefore;
  std::chrono::system_clock::time_point notAfter;
  bool isCa = false;  // basicConstraints CA:TRUE
  std::vector<std::string> dnsNames;
  std::vector<std::string> ipAddresses;  // "10.0.0.1", "fd00::1" (inet_ntop text)
};

// Parses the first certificate in `pem`. kTooLarge above 64 KiB of input; kBadRequest when no
// PEM certificate can be parsed; kInvalid for content it cannot represent (a subject with more
// than one CN, an unreadable subjectAltName or validity time).
[[nodiscard]] Result<CertInfo> parseCertificate(std::string_view pem);
// The same from a certificate OpenSSL already decoded (a TLS peer's): no parsing again.
[[nodiscard]] Result<CertInfo> certificateInfo(const x509_st* cert);

// Verifies that the first certificate in certPem chains to a certificate in caPem (a bundle:
// each of its certificates is a trust anchor, as in Go's x509 roots pool) and that every
// certificate of the chain is valid at `now`. Signatures, validity, CA constraints and critical
// extensions are checked; no purpose, name or revocation check. Ok, or kForbidden with the
// reason ("certificate verify failed: certificate has expired"), also when certPem cannot be
// parsed; kInvalid when caPem is above 1 MiB, holds no certificate or holds a certificate
// block that does not parse (text between blocks is ignored).
[[nodiscard]] Status verifyCertificate(std::string_view certPem, std::string_view caPem,
                                       std::chrono::system_clock::time_point now);

// Ok when keyPem is the private key of certPem's public key; kInvalid "key does not match
// certificate" when not, kInvalid naming the input when one cannot be parsed.
[[nodiscard]] Status checkKeyMatchesCert(std::string_view keyPem, std::string_view certPem);

// "sha256:<64 lower-case hex>" of the certificate's DER SubjectPublicKeyInfo: kubeadm's
// discovery-token-ca-cert-hash form. Errors as parseCertificate.
[[nodiscard]] Result<std::string> publicKeyHash(std::string_view certPem);

// Replaces `path` atomically with `content`: writes a temporary file in the same directory with
// exactly `mode` (0600 for keys; umask does not apply), fsyncs it, renames it over `path` and
// fsyncs the directory. After a crash `path` holds either the old or the new content. Missing
// parent directories are created with mode 0700; existing ones are left as they are. kInternal
// naming the path and errno text on failure; the temporary file is removed.
[[nodiscard]] Status writeFileAtomic(const std::string& path, std::string_view content,
                                     mode_t mode);

// Like writeFileAtomic, but never replaces: kAlreadyExists when `path` exists (the file is put
// in place with link(2), so two writers racing cannot both succeed and nobody sees it partly
// written). For files that must be created once, such as a generated key.
[[nodiscard]] Status createFileExclusive(const std::string& path, std::string_view content,
                                         mode_t mode);

// The whole file. kNotFound when it does not exist, kTooLarge above 1 MiB, kInternal otherwise;
// messages name the path ("cannot read /x/ca.key: No such file or directory").
[[nodiscard]] Result<std::string> readFile(const std::string& path);

// Standard padded base64 for kubeconfig *-data fields (common/api/base64.h). Decoding ignores
// '\r' and '\n'; kBadRequest "invalid base64" otherwise.
[[nodiscard]] std::string base64Encode(std::string_view data);
[[nodiscard]] Result<std::string> base64Decode(std::string_view text);

// n bytes from the OS CSPRNG (OpenSSL RAND_bytes). kInvalid above 1 MiB; kInternal if the
// generator fails.
[[nodiscard]] Result<std::string> randomBytes(size_t n);
// n characters drawn uniformly from [a-z0-9] (bootstrap token IDs and secrets). As randomBytes.
[[nodiscard]] Result<std::string> randomToken(size_t n);

}  // namespace ep::pki
