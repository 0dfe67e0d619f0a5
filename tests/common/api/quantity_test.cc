#include "common/api/quantity.h"

#include <gtest/gtest.h>

#include <string>

namespace ep::api {
namespace {

int64_t milli(std::string_view s) {
  auto r = parseQuantityMilli(s);
  EXPECT_TRUE(r.isOk()) << s << ": " << r.status().toString();
  return r.isOk() ? *r : INT64_MIN;
}

int64_t bytes(std::string_view s) {
  auto r = parseQuantityBytes(s);
  EXPECT_TRUE(r.isOk()) << s << ": " << r.status().toString();
  return r.isOk() ? *r : INT64_MIN;
}

TEST(QuantityTest, CpuMillis) {
  EXPECT_EQ(milli("100m"), 100);
  EXPECT_EQ(milli("0.5"), 500);
  EXPECT_EQ(milli("2"), 2000);
  EXPECT_EQ(milli("1.5"), 1500);
  EXPECT_EQ(milli(".1"), 100);
  EXPECT_EQ(milli("1."), 1000);
  EXPECT_EQ(milli("+3"), 3000);
  EXPECT_EQ(milli("0"), 0);
  EXPECT_EQ(milli("0.0001"), 1);  // rounded up, like Quantity.MilliValue()
  EXPECT_EQ(milli("1u"), 1);
  EXPECT_EQ(milli("250000n"), 1);
  EXPECT_EQ(milli("1e-3"), 1);
  EXPECT_EQ(milli("1k"), 1'000'000);
  EXPECT_EQ(milli("-1"), -1000);
  EXPECT_EQ(milli("-0.0001"), 0);
}

TEST(QuantityTest, MemoryBytes) {
  EXPECT_EQ(bytes("64Mi"), 64LL * 1024 * 1024);
  EXPECT_EQ(bytes("1G"), 1'000'000'000);
  EXPECT_EQ(bytes("128974848"), 128974848);
  EXPECT_EQ(bytes("1e3"), 1000);
  EXPECT_EQ(bytes("1E3"), 1000);
  EXPECT_EQ(bytes("2E"), 2'000'000'000'000'000'000);
  EXPECT_EQ(bytes("1Ki"), 1024);
  EXPECT_EQ(bytes("1.5Gi"), 1610612736);
  EXPECT_EQ(bytes("129e6"), 129'000'000);
  EXPECT_EQ(bytes("123Mi"), 128974848);
  EXPECT_EQ(bytes("7Ei"), 7LL << 60);
  EXPECT_EQ(bytes("1m"), 1);  // rounded up
  EXPECT_EQ(bytes("0.1"), 1);
  EXPECT_EQ(bytes("1e+2"), 100);
  EXPECT_EQ(bytes("00012"), 12);
  EXPECT_EQ(bytes("1200e-2"), 12);
  EXPECT_EQ(bytes("0.000000000000000000000000000000000000000001"), 1);
  EXPECT_EQ(bytes("1e-99999"), 1);
}

TEST(QuantityTest, Rejected) {
  for (std::string_view s : {"", "abc", "1KB", "1K", "Mi", ".", "1.2.3", "1e", "1e+", "1 Mi", "--1",
                             "1Mi2", "0x10", "1ee3", "+", "1i"}) {
    auto r = parseQuantityBytes(s);
    EXPECT_FALSE(r.isOk()) << "'" << s << "' parsed as " << (r.isOk() ? *r : 0);
    if (!r.isOk()) {
      EXPECT_EQ(r.status().code(), Code::kInvalid);
      EXPECT_NE(r.status().message().find("quantities must match the regular expression"),
                std::string::npos)
          << s;
    }
  }
}

TEST(QuantityTest, Overflow) {
  EXPECT_FALSE(parseQuantityBytes("8Ei").isOk());
  EXPECT_FALSE(parseQuantityBytes("10E").isOk());
  EXPECT_FALSE(parseQuantityMilli("10P").isOk());
  EXPECT_FALSE(parseQuantityBytes("1e99999").isOk());
  EXPECT_EQ(bytes("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(parseQuantityBytes("9223372036854775808").isOk());
  auto r = parseQuantityBytes("123456789012345678901");
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("significant digits"), std::string::npos);
  // Trailing zeros are not significant.
  EXPECT_EQ(bytes("1000000000000000000.000000000000"), 1'000'000'000'000'000'000);
}

// Intermediates over 64 bits (20 significant digits times 2^60), computed the same on targets
// without __int128 (armhf).
TEST(QuantityTest, WideIntermediates) {
  EXPECT_FALSE(parseQuantityBytes("99999999999999999999Ei").isOk());
  EXPECT_EQ(bytes("12345678901234567890e-10"), 1'234'567'891);  // ceil(1234567890.123...)
  EXPECT_EQ(bytes("-12345678901234567890e-10"), -1'234'567'890);
  EXPECT_EQ(bytes("0.00000000000000000001Ei"), 1);  // 2^60 / 10^20 = 0.0115...
  EXPECT_EQ(bytes("0.0000000001Ei"), 115'292'151);
  EXPECT_EQ(bytes("7.99999999999999999Ei"), 9'223'372'036'854'775'797);
  EXPECT_EQ(bytes("-9223372036854775807.5"), -INT64_MAX);
  EXPECT_FALSE(parseQuantityBytes("9223372036854775807.5").isOk());  // rounds up past the max
  EXPECT_EQ(milli("9223372036854775.807"), INT64_MAX);
  EXPECT_FALSE(parseQuantityMilli("9223372036854775.8071").isOk());
}

}  // namespace
}  // namespace ep::api
