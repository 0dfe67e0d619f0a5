#pragma once

// unique_ptr ownership of OpenSSL objects, for the .cc files that use OpenSSL directly
// (common/pki, cloudcore/auth's token signing). Include only from .cc files: it pulls in
// nothing of OpenSSL itself, callers include the OpenSSL headers they need.

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

}  // namespace ep::pki
