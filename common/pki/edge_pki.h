#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/pki/pki.h"
#include "common/status.h"

// The node's side of the PKI on wolfSSL (ep_pki_edge), so that edgecore loads one small TLS
// library instead of OpenSSL (docs/performance.md). Same contracts as the functions of the same
// names in pki.h (OpenSSL, the cloud's), with the differences noted. Thread-safe; no state.
namespace ep::pki::edge {

// A new ECDSA P-256 key as PEM ("EC PRIVATE KEY", SEC1 with the public point).
[[nodiscard]] Result<std::string> generateKey();

// A PEM PKCS#10 request signed with `keyPem` (SEC1 or PKCS#8, EC or RSA) with subject
// O=organizations..., CN=commonName. kInvalid naming the field for an empty, non-printable or
// longer than 64 bytes name (X.520's ub-common-name), or an unusable key.
[[nodiscard]] Result<std::string> createCsr(const std::string& keyPem,
                                            const std::string& commonName,
                                            const std::vector<std::string>& organizations);

// commonName, organizations, serialHex, notBefore, notAfter and isCa of a PEM certificate
// (dnsNames and ipAddresses are left empty: the edge does not use them). kBadRequest when it
// does not parse.
[[nodiscard]] Result<CertInfo> parseCertificate(std::string_view pem);

// OK when `certPem` is signed by the CA certificate `caPem` (one level: the cluster CA issues
// node certificates directly), its issuer is the CA's subject, and both are valid at `at`.
[[nodiscard]] Status verifyCertificate(std::string_view certPem, std::string_view caPem,
                                       std::chrono::system_clock::time_point at);

// OK when `keyPem` is the private key of `certPem`'s public key (checked by a signature).
[[nodiscard]] Status checkKeyMatchesCert(std::string_view keyPem, std::string_view certPem);

// "sha256:HEX" of the certificate's SubjectPublicKeyInfo DER, as pki::publicKeyHash.
[[nodiscard]] Result<std::string> publicKeyHash(std::string_view certPem);

}  // namespace ep::pki::edge
