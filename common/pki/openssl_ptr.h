#pragma once

// unique_ptr ownership of OpenSSL objects and the error-queue guard, for the .cc files that use
// OpenSSL's API directly (common/pki, cloudcore/auth's token signing; grpclite and the edge PKI
// through wolfSSL's OpenSSL-compatible API). Include only from .cc files, after the OpenSSL
// (or wolfSSL options) headers they need.

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <memory>

namespace ep::pki {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
// Ptr<EVP_PKEY, EVP_PKEY_free> frees with EVP_PKEY_free.
template <typename T, auto Free>
using Ptr = std::unique_ptr<T, Deleter<Free>>;

// Memory OpenSSL allocated for the caller (DER from i2d_*, text from BN_bn2hex ...).
struct OpensslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};
using BytesPtr = std::unique_ptr<unsigned char, OpensslFree>;
using CharsPtr = std::unique_ptr<char, OpensslFree>;

// Empties the thread's OpenSSL error queue on entry and on exit of a public function, so the
// reasons read inside belong to this call and nothing is left behind for the caller (failures
// are reported as Status values, never through the queue).
class ErrorQueueGuard {
 public:
  ErrorQueueGuard() { ERR_clear_error(); }
  ~ErrorQueueGuard() { ERR_clear_error(); }
  ErrorQueueGuard(const ErrorQueueGuard&) = delete;
  ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
};

}  // namespace ep::pki
