// wolfSSL's build options first (they decide the structure layouts), then its SHA-256.
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <cstdlib>
#include <cstring>

#include "common/digest/sha256.h"
#include "common/digest/sha256_common.inc"
#include "common/digest/sha256_x86.h"

namespace ep::digest {

// With the CPU's SHA extensions the blocks go to sha256_x86 (buffering and padding here, FIPS
// 180-4 5.1.1); otherwise to wolfSSL's C code.
struct Sha256::State {
  bool hw = x86::shaExtensionsAvailable();
  wc_Sha256 sha;
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char buffer[64];
  size_t buffered = 0;
  uint64_t total = 0;  // bytes
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  if (!state_->hw && wc_InitSha256(&state_->sha) != 0) {
    std::abort();  // cannot fail for software SHA-256
  }
}

Sha256::~Sha256() {
  if (!state_->hw) wc_Sha256Free(&state_->sha);
}

void Sha256::update(std::string_view bytes) {
  if (bytes.empty()) return;
  State& st = *state_;
  if (!st.hw) {
    wc_Sha256Update(&st.sha, reinterpret_cast<const byte*>(bytes.data()),
                    static_cast<word32>(bytes.size()));
    return;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  st.total += n;
  if (st.buffered > 0) {
    const size_t take = std::min(n, 64 - st.buffered);
    std::memcpy(st.buffer + st.buffered, p, take);
    st.buffered += take;
    p += take;
    n -= take;
    if (st.buffered < 64) return;
    x86::compressBlocks(st.h, st.buffer, 1);
    st.buffered = 0;
  }
  if (n >= 64) {
    x86::compressBlocks(st.h, p, n / 64);
    p += n / 64 * 64;
    n %= 64;
  }
  std::memcpy(st.buffer, p, n);
  st.buffered = n;
}

std::string Sha256::finish() {
  unsigned char md[32];
  State& st = *state_;
  if (!st.hw) {
    wc_Sha256Final(&st.sha, md);
    return hexDigest(md, sizeof md);
  }
  // Padding: 0x80, zeros to 56 mod 64, the length in bits big-endian.
  const uint64_t bits = st.total * 8;
  unsigned char pad[128] = {0x80};
  const size_t padLen = (st.buffered < 56 ? 56 : 120) - st.buffered;
  for (int i = 0; i < 8; ++i) pad[padLen + i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
  const uint64_t total = st.total;
  update(std::string_view(reinterpret_cast<const char*>(pad), padLen + 8));
  st.total = total;
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 4; ++j) md[4 * i + j] = static_cast<unsigned char>(st.h[i] >> (24 - 8 * j));
  }
  return hexDigest(md, sizeof md);
}

}  // namespace ep::digest
