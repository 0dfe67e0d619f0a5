// wolfSSL's build options first (they decide the structure layouts), then its SHA-256.
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <cstdlib>

#include "common/digest/sha256.h"
#include "common/digest/sha256_common.inc"

namespace ep::digest {

struct Sha256::State {
  wc_Sha256 sha;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  if (wc_InitSha256(&state_->sha) != 0) std::abort();  // cannot fail for software SHA-256
}

Sha256::~Sha256() {
  wc_Sha256Free(&state_->sha);
}

void Sha256::update(std::string_view bytes) {
  if (!bytes.empty()) {
    wc_Sha256Update(&state_->sha, reinterpret_cast<const byte*>(bytes.data()),
                    static_cast<word32>(bytes.size()));
  }
}

std::string Sha256::finish() {
  unsigned char md[WC_SHA256_DIGEST_SIZE];
  wc_Sha256Final(&state_->sha, md);
  return hexDigest(md, sizeof md);
}

}  // namespace ep::digest
