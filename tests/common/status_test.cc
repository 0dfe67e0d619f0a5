#include "common/status.h"

#include <gtest/gtest.h>

#include <string>

namespace ep {
namespace {

TEST(ResultTest, ValueOrStatus) {
  Result<std::string> ok = std::string("seven");
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(*ok, "seven");
  EXPECT_TRUE(ok.status().isOk());
  Result<std::string> bad = notFoundError("pods \"x\" not found");
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
}

// Reading the value of a failed Result is a broken invariant: the process stops naming the
// error instead of throwing std::bad_variant_access across whatever boundary it is on.
TEST(ResultDeathTest, ReadingTheValueOfAnErrorAbortsNamingIt) {
  Result<std::string> bad = notFoundError("pods \"x\" not found");
  EXPECT_DEATH((void)bad.value(),
               "value of a failed Result was read: NotFound: pods \"x\" not found");
  EXPECT_DEATH((void)*bad, "failed Result");
}

}  // namespace
}  // namespace ep
