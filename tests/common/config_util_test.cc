#include "common/config_util.h"

#include <gtest/gtest.h>

namespace ep {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(SplitHostPortTest, AcceptsHostsAndBracketedIpv6) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(splitHostPort("apiListen", "127.0.0.1:6443", host, port).isOk());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 6443);
  ASSERT_TRUE(splitHostPort("apiListen", "[::1]:80", host, port).isOk());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 80);
  ASSERT_TRUE(splitHostPort("apiListen", ":6444", host, port).isOk());
  EXPECT_EQ(host, "0.0.0.0");
}

TEST(SplitHostPortTest, ErrorsNameTheKey) {
  std::string host;
  uint16_t port = 0;
  for (const char* bad : {"nocolon", "h:", "h:99999", "h:12a", "h:123456"}) {
    Status s = splitHostPort("cloud", bad, host, port);
    EXPECT_EQ(s.code(), Code::kInvalid) << bad;
    EXPECT_EQ(s.message().rfind("cloud: ", 0), 0u) << s.message();
  }
}

TEST(SplitHostPortListTest, EntriesInOrderAndEachChecked) {
  auto one = splitHostPortList("cloud", "cloud.example:6444");
  ASSERT_TRUE(one.isOk());
  EXPECT_EQ(*one, std::vector<std::string>{"cloud.example:6444"});
  auto three = splitHostPortList("cloud", "10.0.0.1:6444, 10.0.0.2:6444,[::1]:6444");
  ASSERT_TRUE(three.isOk()) << three.status().message();
  EXPECT_EQ(*three, (std::vector<std::string>{"10.0.0.1:6444", "10.0.0.2:6444", "[::1]:6444"}));
  EXPECT_EQ(splitHostPortList("cloud", "a:1,,b:2").status().message(),
            "cloud: empty address in \"a:1,,b:2\"");
  EXPECT_EQ(splitHostPortList("cloud", "").status().message(), "cloud: empty address in \"\"");
  EXPECT_EQ(splitHostPortList("cloud", "a:1,b").status().message(),
            "cloud: \"b\" is not HOST:PORT");
}

TEST(ParseDurationTest, Units) {
  EXPECT_EQ(*parseDuration("k", "500ms"), milliseconds(500));
  EXPECT_EQ(*parseDuration("k", "10"), seconds(10));
  EXPECT_EQ(*parseDuration("k", "1m30s"), seconds(90));
  EXPECT_EQ(*parseDuration("k", "1h2m3s4ms"), milliseconds(3723004));
  for (const char* bad : {"", "soon", "1d", "5s1m", "1234567890"}) {
    auto d = parseDuration("heartbeatInterval", bad);
    ASSERT_FALSE(d.isOk()) << bad;
    EXPECT_EQ(d.status().message().rfind("heartbeatInterval: invalid duration", 0), 0u);
  }
}

TEST(ParseDurationSecondsTest, WholeSecondsOnly) {
  EXPECT_EQ(*parseDurationSeconds("k", "90s"), seconds(90));
  EXPECT_EQ(*parseDurationSeconds("k", "2h30m"), seconds(9000));
  EXPECT_EQ(*parseDurationSeconds("k", "60"), seconds(60));
  auto d = parseDurationSeconds("historyWindow", "500ms");
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().message(),
            "historyWindow: invalid duration \"500ms\" (e.g. 90s, 5m, 1h30m)");
}

}  // namespace
}  // namespace ep
