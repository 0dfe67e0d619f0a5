#include "edgecore/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

namespace ep::edgecore {
namespace {

TEST(EdgeConfig, StatsIntervalIsOffOrBetweenASecondAndTenMinutes) {
  for (const auto& [text, ok] : std::vector<std::pair<std::string, bool>>{
           {"0s", true}, {"1s", true}, {"10m", true}, {"500ms", false}, {"11m", false}}) {
    Config c;
    c.nodeName = "edge-1";
    ASSERT_TRUE(parseConfigYaml("statsInterval: " + text + "\n", "test.yaml", c).isOk()) << text;
    Status s = finalizeConfig(c);
    EXPECT_EQ(s.isOk(), ok) << text << ": " << s.message();
    if (!ok) {
      EXPECT_EQ(s.message(), "statsInterval: must be 0s (off) or between 1s and 10m");
    }
  }
}

TEST(EdgeConfig, Defaults) {
  Config c;
  c.nodeName = "edge-1";
  ASSERT_TRUE(finalizeConfig(c).isOk());
  EXPECT_EQ(c.cloud, "127.0.0.1:6444");
  EXPECT_EQ(c.dataDir, "/var/lib/edgeplane/edgecore");
  EXPECT_EQ(c.localApiListen, "127.0.0.1:10550");
  EXPECT_EQ(c.heartbeatInterval, std::chrono::seconds(10));
  EXPECT_EQ(c.nodeStatusReportFrequency, std::chrono::minutes(5));
  EXPECT_EQ(c.statsInterval, std::chrono::seconds(15));
  EXPECT_EQ(c.outboxMaxEntries, 10000u);
  EXPECT_EQ(c.outboxMaxBytes, 16777216u);
}

TEST(EdgeConfig, DefaultNodeNameIsLowerCaseHostName) {
  Config c;
  ASSERT_TRUE(finalizeConfig(c).isOk());
  EXPECT_FALSE(c.nodeName.empty());
  for (char ch : c.nodeName) EXPECT_FALSE(std::isupper(static_cast<unsigned char>(ch)));
}

TEST(EdgeConfig, ParsesEverything) {
  Config c;
  auto s = parseConfigYaml(R"(
nodeName: edge-a
cloud: cloud.example:7000
dataDir: /tmp/x
localApiListen: 0.0.0.0:1234
heartbeatInterval: 15s
nodeStatusReportFrequency: 1m
logLevel: debug
labels:
  zone: factory-1
taints:
  - {key: dedicated, value: edge, effect: NoSchedule}
outbox:
  maxEntries: 50
  maxBytes: 4096
)",
                           "test.yaml", c);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(c.nodeName, "edge-a");
  EXPECT_EQ(c.cloud, "cloud.example:7000");
  EXPECT_EQ(c.heartbeatInterval, std::chrono::seconds(15));
  EXPECT_EQ(c.nodeStatusReportFrequency, std::chrono::minutes(1));
  EXPECT_EQ(c.labels.at("zone"), "factory-1");
  ASSERT_EQ(c.taints.size(), 1u);
  EXPECT_EQ(c.taints[0].effect, "NoSchedule");
  EXPECT_EQ(c.outboxMaxEntries, 50u);
  EXPECT_EQ(c.outboxMaxBytes, 4096u);
  EXPECT_TRUE(finalizeConfig(c).isOk());
}

// Values keep the text written: a YAML reader that resolved numbers would turn these into 31,
// 1000.0, 7, 123 and 1.1 without a word.
TEST(EdgeConfig, ValuesKeepTheTextWritten) {
  Config c;
  auto s = parseConfigYaml(
      "nodeName: 0x1f\ndataDir: 1e3\nlabels:\n  version: 1.10\n  build: 007\n"
      "mqtt:\n  password: 0123\n  username: true\n",
      "test.yaml", c);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(c.nodeName, "0x1f");
  EXPECT_EQ(c.dataDir, "1e3");
  EXPECT_EQ(c.labels.at("version"), "1.10");
  EXPECT_EQ(c.labels.at("build"), "007");
  EXPECT_EQ(c.mqttPassword, std::optional<std::string>("0123"));
  EXPECT_EQ(c.mqttUsername, std::optional<std::string>("true"));
}

struct BadCase {
  const char* yaml;
  const char* expectInMessage;
};

TEST(EdgeConfig, ErrorsNameTheKey) {
  const BadCase cases[] = {
      {"nodeNmae: x\n", "nodeNmae: unknown configuration key"},
      {"outbox:\n  maxEntrys: 3\n", "outbox.maxEntrys: unknown configuration key"},
      {"outbox:\n  maxEntries: lots\n", "outbox.maxEntries: must be a positive integer"},
      {"outbox:\n  maxBytes: [1]\n", "outbox.maxBytes"},
      {"outbox: 3\n", "outbox: must be a mapping"},
      {"labels: [a]\n", "labels: must be a mapping"},
      {"labels:\n  'bad key!': x\n", "labels.bad key!"},
      {"taints:\n  - {key: a, effect: Sometimes}\n", "taints[0].effect"},
      {"taints:\n  - {key: a, effect: NoSchedule, colour: red}\n", "taints[0].colour"},
      {"taints: {a: b}\n", "taints: must be a list"},
      {"heartbeatInterval: soon\n", "heartbeatInterval: invalid duration"},
      {"cloud: {a: b}\n", "cloud: must be a string"},
      {"- a\n", "top level must be a mapping"},
      {"a: [\n", "test.yaml"},
      {"mqtt: 1\n", "mqtt: must be a mapping"},
      {"mqtt:\n  sever: tcp://a:1\n", "mqtt.sever: unknown configuration key"},
      {"mqtt:\n  password: [x]\n", "mqtt.password"},
      {"nodeName: a\nnodeName: b\n", "test.yaml: document 0: line 2"},
      {"podWorkers: 0\n", "podWorkers: must be a positive integer"},
      {"mqtt:\n  insecureSkipVerify: maybe\n", "mqtt.insecureSkipVerify: must be true or false"},
  };
  for (const auto& c : cases) {
    Config config;
    auto s = parseConfigYaml(c.yaml, "test.yaml", config);
    ASSERT_FALSE(s.isOk()) << c.yaml;
    EXPECT_NE(s.message().find(c.expectInMessage), std::string::npos)
        << c.yaml << " -> " << s.message();
  }
}

// The full status goes at least every nodeStatusReportFrequency: never more often than the
// heartbeat, never less than hourly.
TEST(EdgeConfig, NodeStatusReportFrequencyIsBetweenTheHeartbeatAndAnHour) {
  for (const auto& [yaml, ok] :
       std::vector<std::pair<std::string, bool>>{{"nodeStatusReportFrequency: 10s\n", true},
                                                 {"nodeStatusReportFrequency: 5s\n", false},
                                                 {"nodeStatusReportFrequency: 1h\n", true},
                                                 {"nodeStatusReportFrequency: 2h\n", false}}) {
    Config c;
    c.nodeName = "edge-1";
    Status s = parseConfigYaml(yaml, "test.yaml", c);
    if (s.isOk()) s = finalizeConfig(c);
    EXPECT_EQ(s.isOk(), ok) << yaml << " -> " << s.message();
    if (!ok) {
      EXPECT_NE(s.message().find("nodeStatusReportFrequency"), std::string::npos);
    }
  }
}

TEST(EdgeConfig, MqttSettingsAndChecks) {
  Config config;
  ASSERT_TRUE(
      parseConfigYaml("nodeName: n1\nmqtt:\n  server: tcp://10.0.0.5:1884\n  username: dev\n"
                      "  password: s3cret\n",
                      "test.yaml", config)
          .isOk());
  ASSERT_TRUE(finalizeConfig(config).isOk());
  EXPECT_EQ(config.mqttServer, "tcp://10.0.0.5:1884");
  EXPECT_EQ(config.mqttClientId, "edgecore-n1");
  EXPECT_EQ(config.mqttUsername, "dev");
  EXPECT_EQ(config.mqttPassword, "s3cret");
  for (const char* bad : {"ftp://a:1", "tcp://nohost", "ssl://a:99999", "mqtt.example"}) {
    Config c;
    c.nodeName = "n1";
    ASSERT_TRUE(applyOverrides({.mqttServer = bad}, c).isOk());
    auto s = finalizeConfig(c);
    ASSERT_FALSE(s.isOk()) << bad;
    EXPECT_NE(s.message().find("mqtt.server"), std::string::npos) << s.message();
  }
  // TLS: ssl:// needs the broker's CA (or insecureSkipVerify); cert and key go together; TLS
  // files need an ssl:// server.
  Config tls;
  ASSERT_TRUE(parseConfigYaml("nodeName: n1\nmqtt:\n  server: ssl://broker:8883\n"
                              "  caFile: /etc/ca.crt\n  certFile: /etc/c.crt\n"
                              "  keyFile: /etc/c.key\n  serverName: broker.lan\n",
                              "test.yaml", tls)
                  .isOk());
  ASSERT_TRUE(finalizeConfig(tls).isOk());
  EXPECT_EQ(tls.mqttCaFile, "/etc/ca.crt");
  EXPECT_EQ(tls.mqttServerName, "broker.lan");
  for (const auto& [yaml, field] : std::vector<std::pair<std::string, std::string>>{
           {"server: ssl://b:8883\n", "mqtt.caFile"},
           {"server: mqtts://b:8883\n  caFile: /ca\n  certFile: /c\n", "mqtt.keyFile"},
           {"server: tcp://b:1883\n  caFile: /ca\n", "mqtt.caFile"},
           {"server: ssl://b:8883\n  insecureSkipVerify: maybe\n", "mqtt.insecureSkipVerify"}}) {
    Config c;
    Status s = parseConfigYaml("nodeName: n1\nmqtt:\n  " + yaml, "test.yaml", c);
    if (s.isOk()) s = finalizeConfig(c);
    ASSERT_FALSE(s.isOk()) << yaml;
    EXPECT_EQ(s.message().rfind(field, 0), 0u) << s.message();
  }
  Config insecure;
  ASSERT_TRUE(parseConfigYaml("nodeName: n1\nmqtt:\n  server: ssl://b:8883\n"
                              "  insecureSkipVerify: true\n",
                              "test.yaml", insecure)
                  .isOk());
  EXPECT_TRUE(finalizeConfig(insecure).isOk());
  Config off;
  off.nodeName = "n1";
  ASSERT_TRUE(applyOverrides({.mqttServer = ""}, off).isOk());
  EXPECT_TRUE(finalizeConfig(off).isOk());
  EXPECT_EQ(Config().mqttServer, "tcp://127.0.0.1:1883");
  EXPECT_EQ(Config().dmiSocket, "/etc/kubeedge/dmi.sock");
  Config rel;
  rel.nodeName = "n1";
  ASSERT_TRUE(applyOverrides({.dmiSocket = "dmi.sock"}, rel).isOk());
  auto s = finalizeConfig(rel);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("dmiSocket"), std::string::npos) << s.message();
}

TEST(EdgeConfig, FlagsOverrideFile) {
  Config c;
  ASSERT_TRUE(parseConfigYaml("nodeName: a\ncloud: x:1\n", "f", c).isOk());
  FlagOverrides f;
  f.cloud = "y:2";
  f.heartbeatInterval = "2s";
  ASSERT_TRUE(applyOverrides(f, c).isOk());
  EXPECT_EQ(c.nodeName, "a");
  EXPECT_EQ(c.cloud, "y:2");
  EXPECT_EQ(c.heartbeatInterval, std::chrono::seconds(2));
  f.heartbeatInterval = "bad";
  auto s = applyOverrides(f, c);
  EXPECT_NE(s.message().find("--heartbeat-interval"), std::string::npos);
}

TEST(EdgeConfig, ServiceProxyFlagOverridesFileAndNamesItselfInErrors) {
  Config c;
  ASSERT_TRUE(parseConfigYaml("serviceProxy: iptables\n", "f", c).isOk());
  ASSERT_TRUE(applyOverrides({.serviceProxy = "off"}, c).isOk());
  EXPECT_EQ(c.serviceProxy, "off");
  auto s = applyOverrides({.serviceProxy = "ipvs"}, c);
  EXPECT_EQ(s.message(), "--service-proxy: must be \"iptables\" or \"off\", got \"ipvs\"");
  EXPECT_EQ(c.serviceProxy, "off");
}

TEST(EdgeConfig, FinalizeRejects) {
  Config c;
  c.nodeName = "Bad_Name";
  EXPECT_NE(finalizeConfig(c).message().find("nodeName"), std::string::npos);
  c.nodeName = "ok";
  c.cloud = "noport";
  EXPECT_NE(finalizeConfig(c).message().find("cloud"), std::string::npos);
  // Several cloudcore replicas: each address is checked.
  c.cloud = "10.0.0.1:6444,10.0.0.2";
  EXPECT_EQ(finalizeConfig(c).message(), "cloud: \"10.0.0.2\" is not HOST:PORT");
  c.cloud = "10.0.0.1:6444,10.0.0.2:6444";
  EXPECT_TRUE(finalizeConfig(c).isOk());
  c.cloud = "h:1";
  c.logLevel = "loud";
  EXPECT_NE(finalizeConfig(c).message().find("logLevel"), std::string::npos);
}

// Regression: a relative --data-dir gave the runtime relative volume paths, which runc resolved
// inside its bundle directory ("error mounting ... no such file or directory").
TEST(EdgeConfig, DataDirIsMadeAbsolute) {
  Config c;
  c.nodeName = "edge-1";
  c.dataDir = "run/edgecore/";
  ASSERT_TRUE(finalizeConfig(c).isOk());
  EXPECT_EQ(c.dataDir, (std::filesystem::current_path() / "run/edgecore").string());
}

TEST(EdgeConfig, RuntimeSettings) {
  Config c;
  ASSERT_TRUE(parseConfigYaml("runtimeEndpoint: unix:///run/x.sock\npodSyncPeriod: 2s\n"
                              "podWorkers: 8\ncontainerLogMaxSize: 1Mi\n"
                              "containerLogMaxFiles: 3\n",
                              "f.yaml", c)
                  .isOk());
  EXPECT_EQ(c.runtimeEndpoint, "unix:///run/x.sock");
  EXPECT_EQ(c.podSyncPeriod, std::chrono::seconds(2));
  EXPECT_EQ(c.podWorkers, 8u);
  EXPECT_EQ(c.containerLogMaxSize, 1048576u);
  EXPECT_EQ(c.containerLogMaxFiles, 3);
  c.nodeName = "edge-1";
  EXPECT_TRUE(finalizeConfig(c).isOk());
  c.runtimeEndpoint = "tcp://1.2.3.4:1";
  EXPECT_NE(finalizeConfig(c).message().find("runtimeEndpoint"), std::string::npos);
  Config d;
  EXPECT_NE(parseConfigYaml("podWorkers: 0\n", "f.yaml", d).message().find("podWorkers"),
            std::string::npos);
  EXPECT_NE(parseConfigYaml("containerLogMaxSize: huge\n", "f.yaml", d)
                .message()
                .find("containerLogMaxSize"),
            std::string::npos);
  EXPECT_NE(parseConfigYaml("containerLogMaxFiles: 1\n", "f.yaml", d)
                .message()
                .find("containerLogMaxFiles"),
            std::string::npos);
}

}  // namespace
}  // namespace ep::edgecore
