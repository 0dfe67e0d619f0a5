#include "cloudcore/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/temp_dir.h"

namespace ep::cloudcore {
namespace {

// The sample configuration deploy/ ships loads and validates as is.
TEST(CloudcoreConfigTest, TheShippedSampleLoads) {
  Config config;
  ASSERT_TRUE(loadConfigFile(std::string(EP_SOURCE_DIR) + "/deploy/cloudcore.yaml", config).isOk());
  EXPECT_TRUE(validateConfig(config).isOk());
  EXPECT_EQ(config.routerListen, "0.0.0.0:9443");
  EXPECT_EQ(config.tunnelListen, "0.0.0.0:6444");
}

TEST(CloudcoreConfigTest, RouterListenDefaultsToKubeEdgesPortAndIsChecked) {
  Config config;
  EXPECT_EQ(config.routerListen, "0.0.0.0:9443");
  testing::TempDir dir;
  const std::string path = dir.path() + "/c.yaml";
  std::ofstream(path) << "routerListen: \"\"\n";
  ASSERT_TRUE(loadConfigFile(path, config).isOk());
  EXPECT_EQ(config.routerListen, "");  // off
  EXPECT_TRUE(validateConfig(config).isOk());
  std::ofstream(path) << "routerListen: nowhere\n";
  ASSERT_TRUE(loadConfigFile(path, config).isOk());
  Status s = validateConfig(config);
  EXPECT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("routerListen"), std::string::npos) << s.message();
}

TEST(CloudcoreConfigTest, ModelBlobCollectionSettings) {
  Config config;
  EXPECT_EQ(config.modelBlobRetention, std::chrono::hours(24));
  EXPECT_EQ(config.modelBlobGcInterval, std::chrono::minutes(1));
  testing::TempDir dir;
  const std::string path = dir.path() + "/c.yaml";
  std::ofstream(path) << "modelBlobRetention: 2h\nmodelBlobGcInterval: 10m\n";
  ASSERT_TRUE(loadConfigFile(path, config).isOk());
  EXPECT_EQ(config.modelBlobRetention, std::chrono::hours(2));
  EXPECT_EQ(config.modelBlobGcInterval, std::chrono::minutes(10));
  EXPECT_TRUE(validateConfig(config).isOk());
  std::ofstream(path) << "modelBlobGcInterval: 0s\n";
  ASSERT_TRUE(loadConfigFile(path, config).isOk());
  Status s = validateConfig(config);
  EXPECT_NE(s.message().find("modelBlobGcInterval"), std::string::npos) << s.message();
  std::ofstream(path) << "modelBlobGcInterval: soon\n";
  s = loadConfigFile(path, config);
  EXPECT_NE(s.message().find("modelBlobGcInterval"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ep::cloudcore
