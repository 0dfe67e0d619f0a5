#include "common/api/json_limits.h"

#include <gtest/gtest.h>
#include <malloc.h>

namespace ep::api {
namespace {

TEST(JsonLimitsTest, NestingIsMeasuredOutsideStrings) {
  EXPECT_FALSE(jsonNestsDeeperThan(R"({"a":[1,{"b":[]}]})", 4));
  EXPECT_TRUE(jsonNestsDeeperThan(R"({"a":[1,{"b":[]}]})", 3));
  // Brackets in strings, also after escaped quotes and backslashes, are text.
  EXPECT_FALSE(jsonNestsDeeperThan(R"({"a":"[[[[{{{{"})", 1));
  EXPECT_FALSE(jsonNestsDeeperThan(R"({"a":"\"[[[[","b":"\\"})", 1));
  EXPECT_TRUE(jsonNestsDeeperThan(R"({"a":"\\",  "b":[[1]]})", 2));
  // Depth is the maximum, not the total.
  EXPECT_FALSE(jsonNestsDeeperThan("[[1],[2],[3],[4]]", 2));
  EXPECT_FALSE(jsonNestsDeeperThan("", 0));
}

TEST(JsonLimitsTest, BoundedParseRefusesDeepTextAndParsesTheRest) {
  bool tooDeep = true;
  auto v = parseJsonBounded(R"({"a":[1,2]})", 2, &tooDeep);
  EXPECT_FALSE(tooDeep);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v["a"][1], 2);
  v = parseJsonBounded("[[[1]]]", 2, &tooDeep);
  EXPECT_TRUE(tooDeep);
  EXPECT_TRUE(v.is_discarded());
  v = parseJsonBounded("{not json", 8, &tooDeep);
  EXPECT_FALSE(tooDeep);
  EXPECT_TRUE(v.is_discarded());
}

// Issue 14: three megabytes of "[" made cloudcore's RSS grow by 130 MB before its 400. Refused
// before parsing, it costs (almost) nothing.
TEST(JsonLimitsTest, HostileNestingCostsNoMemory) {
  const std::string hostile(3 << 20, '[');
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the sanitizers' allocator is not glibc's: mallinfo2 says nothing";
#endif
  const size_t before = mallinfo2().uordblks;
  size_t peak = before;
  bool tooDeep = false;
  auto v = parseJsonBounded(hostile, 512, &tooDeep);
  peak = std::max(peak, mallinfo2().uordblks);
  EXPECT_TRUE(tooDeep);
  EXPECT_TRUE(v.is_discarded());
  EXPECT_LT(peak - before, size_t{1} << 20) << "bytes allocated while refusing the text";
}

}  // namespace
}  // namespace ep::api
