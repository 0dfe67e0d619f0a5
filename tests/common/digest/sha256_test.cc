// Built twice: against ep_sha256 (OpenSSL) and ep_sha256_edge (wolfSSL).
#include "common/digest/sha256.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

namespace ep::digest {
namespace {

TEST(Sha256Test, KnownVectorsAndIncrementalUpdates) {
  EXPECT_EQ(sha256Of(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Of("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("");
  h.update("bc");
  EXPECT_EQ(h.finish(), sha256Of("abc"));
  std::string million(1000000, 'a');
  EXPECT_EQ(sha256Of(million),
            "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Against OpenSSL's one-shot SHA256() as the oracle: lengths around the padding's edges (55, 56,
// 63, 64 bytes...) and every split of a message across updates. On the edge build this checks
// the SHA extensions path when the CPU has it (the wolfSSL path with
// EP_SHA256_NO_SHA_EXTENSIONS set).
TEST(Sha256Test, AgreesWithOpenSslAtPaddingEdgesAndAnySplit) {
  EXPECT_EQ(sha256Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  auto oracle = [](const std::string& m) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    ::SHA256(reinterpret_cast<const unsigned char*>(m.data()), m.size(), md);
    static const char* kHex = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned char c : md) {
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
    return out;
  };
  std::string msg;
  for (int i = 0; i < 5000; ++i) msg += static_cast<char>(i * 31 + (i >> 7));
  for (size_t len : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 300, 4097, 5000}) {
    const std::string m = msg.substr(0, len);
    const std::string want = oracle(m);
    EXPECT_EQ(sha256Of(m), want) << len;
    for (size_t split = 0; split <= len; split += 1 + len / 7) {
      Sha256 h;
      h.update(m.substr(0, split));
      for (size_t i = split; i < len; i += 5) h.update(m.substr(i, 5));
      EXPECT_EQ(h.finish(), want) << len << " split at " << split;
    }
  }
}

}  // namespace
}  // namespace ep::digest
