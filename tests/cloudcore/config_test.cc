#include "cloudcore/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/temp_dir.h"

namespace ep::cloudcore {
namespace {

// --store / `store`: SQLite in the data dir by default or in a directory given, etcd members
// listed; anything else is refused naming the key and the bad part.
TEST(CloudcoreConfigTest, StoreUrls) {
  auto byDefault = parseStoreUrl("", "/var/lib/x");
  ASSERT_TRUE(byDefault.isOk());
  EXPECT_FALSE(byDefault->etcd);
  EXPECT_EQ(byDefault->sqliteDir, "/var/lib/x");
  EXPECT_EQ(parseStoreUrl("sqlite:///srv/db", "/d")->sqliteDir, "/srv/db");
  EXPECT_EQ(parseStoreUrl("sqlite://", "/d")->sqliteDir, "/d");

  auto etcd = parseStoreUrl("etcd://10.0.0.1:2379,10.0.0.2:2379,[::1]:2379/", "/d");
  ASSERT_TRUE(etcd.isOk()) << etcd.status().toString();
  EXPECT_TRUE(etcd->etcd);
  EXPECT_EQ(etcd->endpoints,
            (std::vector<std::string>{"10.0.0.1:2379", "10.0.0.2:2379", "[::1]:2379"}));
  EXPECT_EQ(parseStoreUrl("etcd://etcd.example:2379", "/d")->endpoints.size(), 1u);

  for (const char* bad :
       {"etcd://", "etcd://host", "etcd://host:", "etcd://:2379", "etcd://a:2379,",
        "etcd://a:99999", "etcd://a:123456789012345678901", "etcd://a:0", "etcd://a:b",
        "etcd://::1:2379", "etcd://[::1:2379", "postgres://x", "/var/lib/db"}) {
    auto r = parseStoreUrl(bad, "/d");
    ASSERT_FALSE(r.isOk()) << bad;
    EXPECT_EQ(r.status().message().rfind("store: ", 0), 0u) << r.status().message();
  }
  Config config;
  config.store = "etcd://a:1";
  config.etcdCertFile = "/c.pem";
  EXPECT_EQ(validateConfig(config).message(), "etcdCertFile, etcdKeyFile: give both or neither");
  config.etcdKeyFile = "/k.pem";
  EXPECT_TRUE(validateConfig(config).isOk());
  config.etcdPrefix = "edgeplane";
  EXPECT_NE(validateConfig(config).message().find("etcdPrefix"), std::string::npos);
}

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

// The leader election timings: read from the file, and each must leave room for the next
// (retry < renew deadline < lease duration), so a leader stops before another takes over.
TEST(CloudcoreConfigTest, LeaderElectionTimingsAreReadAndOrdered) {
  Config config;
  EXPECT_EQ(config.leaderElectLeaseDuration, std::chrono::seconds(10));
  EXPECT_EQ(config.leaderElectRenewDeadline, std::chrono::seconds(7));
  EXPECT_EQ(config.leaderElectRetryPeriod, std::chrono::seconds(2));
  testing::TempDir dir;
  const std::string path = dir.path() + "/c.yaml";
  std::ofstream(path) << "leaderElectLeaseDuration: 15s\nleaderElectRenewDeadline: 10s\n"
                         "leaderElectRetryPeriod: 3s\n";
  ASSERT_TRUE(loadConfigFile(path, config).isOk());
  EXPECT_EQ(config.leaderElectLeaseDuration, std::chrono::seconds(15));
  EXPECT_EQ(config.leaderElectRenewDeadline, std::chrono::seconds(10));
  EXPECT_EQ(config.leaderElectRetryPeriod, std::chrono::seconds(3));
  EXPECT_TRUE(validateConfig(config).isOk());
  config.leaderElectRenewDeadline = std::chrono::seconds(15);
  EXPECT_EQ(validateConfig(config).message(),
            "leaderElectLeaseDuration: must be longer than leaderElectRenewDeadline");
  config.leaderElectRenewDeadline = std::chrono::seconds(3);
  EXPECT_EQ(validateConfig(config).message(),
            "leaderElectRenewDeadline: must be longer than leaderElectRetryPeriod");
  config.leaderElectRetryPeriod = std::chrono::seconds(0);
  EXPECT_EQ(validateConfig(config).message(), "leaderElectRetryPeriod: must be at least 1s");
}

// Every key of the file reaches its setting; errors name the key (and the file for the
// document itself).
TEST(CloudcoreConfigTest, EveryKindOfValueIsReadAndBadValuesNameTheKey) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/c.yaml";
  std::ofstream(path) << "apiListen: 127.0.0.1:7443\nhistoryWindow: 2h\nmaxBodyBytes: 4096\n"
                         "workerThreads: 3\ntlsSANs: [cloud.example, 10.0.0.1]\n"
                         "auditLogMaxBackup: 0\n";
  Config config;
  ASSERT_TRUE(loadConfigFile(path, config).isOk());
  EXPECT_EQ(config.apiListen, "127.0.0.1:7443");
  EXPECT_EQ(config.historyWindow, std::chrono::hours(2));
  EXPECT_EQ(config.maxBodyBytes, 4096u);
  EXPECT_EQ(config.workerThreads, 3);
  EXPECT_EQ(config.auditLogMaxBackup, 0);
  EXPECT_EQ(config.tlsSans, (std::vector<std::string>{"cloud.example", "10.0.0.1"}));

  const std::pair<const char*, const char*> bad[] = {
      {"bogusKey: 1\n", "bogusKey: unknown configuration key (in "},
      {"maxBodyBytes: lots\n", "maxBodyBytes: must be a non-negative integer"},
      {"workerThreads: -2\n", "workerThreads: must be a non-negative integer"},
      {"apiListen: [a]\n", "apiListen: must be a string"},
      {"tlsSANs: name\n", "tlsSANs: must be a list of strings"},
      {"apiListen: a:1\napiListen: b:2\n", "duplicate key \"apiListen\""},
      {"- a\n", "the top level must be a mapping"},
  };
  for (const auto& [text, want] : bad) {
    std::ofstream(path) << text;
    Config c;
    Status s = loadConfigFile(path, c);
    ASSERT_FALSE(s.isOk()) << text;
    EXPECT_NE(s.message().find(want), std::string::npos) << text << " -> " << s.message();
  }
  Config c;
  Status missing = loadConfigFile(dir.path() + "/none.yaml", c);
  EXPECT_EQ(missing.message(), "config: cannot read " + dir.path() + "/none.yaml");
}

}  // namespace
}  // namespace ep::cloudcore
