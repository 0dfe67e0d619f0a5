// libFuzzer: ep_pki's parsers (parseCsr, parseCertificate, publicKeyHash, verifyCertificate,
// checkKeyMatchesCert) on arbitrary bytes. Invariants: no crash, leak or sanitizer report; the
// size limits hold; a parsed CSR's public key is SPKI PEM; parseCertificate and publicKeyHash
// agree on what is a certificate; serials are lower-case hex; the OpenSSL error queue is empty
// after every call.
#include <openssl/err.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/pki/pki.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

bool isLowerHex(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace pki = ep::pki;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto csr = pki::parseCsr(input);
  if (csr.isOk()) {
    check(size <= 16 * 1024);
    check(csr->publicKeyPem.rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);
  } else {
    check(!csr.status().message().empty());
  }
  check(ERR_peek_error() == 0);

  auto cert = pki::parseCertificate(input);
  auto hash = pki::publicKeyHash(input);
  check(ERR_peek_error() == 0);
  if (cert.isOk()) {
    check(size <= 64 * 1024);
    check(isLowerHex(cert->serialHex));
    check(hash.isOk() && hash->size() == 7 + 64 && hash->rfind("sha256:", 0) == 0);
  } else if (cert.status().code() != ep::Code::kInvalid) {
    // Unparseable or too large for one is the same for the other.
    check(!hash.isOk() && hash.status().code() == cert.status().code());
  }

  // The input as both the certificate and its own trust anchor, and as key and certificate.
  auto now = std::chrono::system_clock::now();
  ep::Status verified = pki::verifyCertificate(input, input, now);
  if (!cert.isOk() && cert.status().code() != ep::Code::kInvalid) check(!verified.isOk());
  (void)pki::checkKeyMatchesCert(input, input);
  check(ERR_peek_error() == 0);
  return 0;
}
