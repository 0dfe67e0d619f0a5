// Built twice: against ep_sha256 (OpenSSL) and ep_sha256_edge (wolfSSL).
#include "common/digest/sha256.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ep::digest
