#pragma once

// Test-only certificates for grpclite's TLS tests, made with OpenSSL's C API at run time (ECDSA
// P-256, SHA-256, valid from an hour ago for a day). Not a PKI library: errors throw.
#include <string>
#include <vector>

namespace ep::grpclite::testing {

struct KeyCert {
  std::string certPem;
  std::string keyPem;  // PKCS#8, unencrypted
};

struct LeafSpec {
  std::string commonName;
  std::string organization;           // empty: none
  std::vector<std::string> dnsNames;  // subjectAltName DNS entries
  std::vector<std::string> ips;       // subjectAltName IP entries
  bool serverAuth = false;            // extendedKeyUsage
  bool clientAuth = false;
};

// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign).
KeyCert makeCa(const std::string& commonName);
// A leaf certificate signed by `ca`.
KeyCert makeLeaf(const KeyCert& ca, const LeafSpec& spec);
// `keyPem` re-encoded as an encrypted PKCS#8 PEM (AES-256-CBC) under `password`.
std::string encryptKeyPem(const std::string& keyPem, const std::string& password);

// What the TLS tests use: one CA, a server certificate for 127.0.0.1 and localhost, a node's
// client certificate (CN=system:node:n1, O=system:nodes), and an unrelated second CA. Made once
// per process.
struct TestPki {
  KeyCert ca;
  KeyCert server;
  KeyCert client;
  KeyCert otherCa;
};
const TestPki& testPki();

}  // namespace ep::grpclite::testing
