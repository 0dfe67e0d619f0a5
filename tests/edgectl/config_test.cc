#include "edgectl/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace ep::edgectl {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  ConfigTest() {
    home_ = fs::temp_directory_path() /
            ("edgectl-config-" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(home_);
    fs::create_directories(home_ / ".edgeplane");
  }
  ~ConfigTest() override { fs::remove_all(home_); }
  void writeConfig(const std::string& text) {
    std::ofstream(home_ / ".edgeplane" / "config") << text;
  }
  fs::path home_;
};

TEST_F(ConfigTest, DefaultWhenNothingIsSet) {
  ConfigInputs in;
  in.home = home_.string();
  auto c = resolveClientConfig(in);
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->token, "");
}

TEST_F(ConfigTest, Precedence) {
  writeConfig("server: http://file:1\ntoken: filetoken\nnamespace: edge\n");
  ConfigInputs in;
  in.home = home_.string();
  auto c = resolveClientConfig(in);
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->server, "http://file:1");
  EXPECT_EQ(c->token, "filetoken");
  EXPECT_EQ(c->defaultNamespace, "edge");
  in.envServer = "http://env:2";
  EXPECT_EQ(resolveClientConfig(in)->server, "http://env:2");
  in.serverFlag = "http://flag:3";
  in.tokenFlag = "flagtoken";
  EXPECT_EQ(resolveClientConfig(in)->server, "http://flag:3");
  EXPECT_EQ(resolveClientConfig(in)->token, "flagtoken");
}

TEST_F(ConfigTest, ExplicitConfigFile) {
  auto path = (home_ / "other.yaml").string();
  std::ofstream(path) << "server: http://other:9\n";
  ConfigInputs in;
  in.home = home_.string();
  in.configFlag = path;
  EXPECT_EQ(resolveClientConfig(in)->server, "http://other:9");
  in.configFlag = (home_ / "missing.yaml").string();
  EXPECT_FALSE(resolveClientConfig(in).isOk());
}

TEST_F(ConfigTest, BadConfigIsAnError) {
  writeConfig("server: [1, 2]\n");
  ConfigInputs in;
  in.home = home_.string();
  auto c = resolveClientConfig(in);
  ASSERT_FALSE(c.isOk());
  EXPECT_NE(c.status().message().find("\"server\" must be a string"), std::string::npos);
}

TEST(ParseTimeoutTest, Forms) {
  EXPECT_EQ(parseTimeout("0")->count(), 0);
  EXPECT_EQ(parseTimeout("5")->count(), 5000);
  EXPECT_EQ(parseTimeout("5s")->count(), 5000);
  EXPECT_EQ(parseTimeout("1m30s")->count(), 90000);
  EXPECT_EQ(parseTimeout("250ms")->count(), 250);
  EXPECT_EQ(parseTimeout("2h")->count(), 7200000);
  EXPECT_FALSE(parseTimeout("5x").isOk());
  EXPECT_FALSE(parseTimeout("").isOk());
}

}  // namespace
}  // namespace ep::edgectl
