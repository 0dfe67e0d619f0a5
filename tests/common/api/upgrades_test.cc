#include "common/api/upgrades.h"

#include <gtest/gtest.h>

#include <string>

namespace ep::api {
namespace {

using nlohmann::json;

std::string elfHeader(unsigned char cls, unsigned char data, unsigned machineLo,
                      unsigned machineHi) {
  std::string h(64, '\0');
  h[0] = 0x7f;
  h[1] = 'E';
  h[2] = 'L';
  h[3] = 'F';
  h[4] = static_cast<char>(cls);
  h[5] = static_cast<char>(data);
  h[18] = static_cast<char>(machineLo);
  h[19] = static_cast<char>(machineHi);
  return h;
}

TEST(UpgradesTest, ElfArchitectureNamesNodesArchitectures) {
  EXPECT_EQ(elfArchitecture(elfHeader(2, 1, 62, 0)), "amd64");
  EXPECT_EQ(elfArchitecture(elfHeader(2, 1, 183, 0)), "arm64");
  EXPECT_EQ(elfArchitecture(elfHeader(1, 1, 40, 0)), "arm");
  EXPECT_EQ(elfArchitecture(elfHeader(1, 1, 3, 0)), "386");
  EXPECT_EQ(elfArchitecture(elfHeader(2, 1, 243, 0)), "riscv64");
  EXPECT_EQ(elfArchitecture(elfHeader(2, 2, 0, 62)), "amd64");  // big-endian field order
  EXPECT_EQ(elfArchitecture(elfHeader(1, 1, 62, 0)), "");       // 32-bit x86-64: no such node
  EXPECT_EQ(elfArchitecture(elfHeader(2, 1, 8, 0)), "");        // MIPS: not one we know
  EXPECT_EQ(elfArchitecture("#!/bin/sh\nexit 1\n"), "");
  EXPECT_EQ(elfArchitecture("\x7f"
                            "ELF"),
            "");  // truncated
  for (const char* name : {"amd64", "arm64", "arm", "386", "riscv64"}) {
    EXPECT_TRUE(isKnownArchitecture(name)) << name;
  }
  EXPECT_FALSE(isKnownArchitecture("mips"));
  EXPECT_FALSE(isKnownArchitecture(""));
}

TEST(UpgradesTest, VersionsRoundTripThroughKubeletVersion) {
  json node = {{"status", {{"nodeInfo", {{"kubeletVersion", kubeletVersionFor("1.2.0")}}}}}};
  EXPECT_EQ(edgecoreVersionOf(node), "1.2.0");
  node["status"]["nodeInfo"]["kubeletVersion"] = "v1.29.1";
  EXPECT_EQ(edgecoreVersionOf(node), "");
  EXPECT_EQ(edgecoreVersionOf(json::array()), "");
}

TEST(UpgradesTest, ReleaseBinariesSkipMalformedEntries) {
  const std::string d = "sha256:" + std::string(64, 'b');
  json rel = {{"spec",
               {{"binaries",
                 {{{"architecture", "amd64"}, {"digest", d}, {"size", 5}},
                  {{"architecture", "arm64"}, {"digest", "sha256:short"}},
                  {{"digest", d}},
                  "junk"}}}}};
  auto bins = releaseBinaries(rel);
  ASSERT_EQ(bins.size(), 1u);
  EXPECT_EQ(bins[0].size, 5u);
  EXPECT_TRUE(releaseBinaryFor(rel, "amd64"));
  EXPECT_FALSE(releaseBinaryFor(rel, "arm64"));
  EXPECT_TRUE(releaseBinaries(json::object()).empty());
}

TEST(UpgradesTest, UpgradingNodesAreTheInProgressEntries) {
  json job = {{"status",
               {{"nodeStatus",
                 {{{"nodeName", "a"}, {"state", kUpgradeInProgress}},
                  {{"nodeName", "b"}, {"state", kUpgradeInit}},
                  {{"nodeName", "c"}, {"state", kUpgradeCompleted}},
                  {{"state", kUpgradeInProgress}},
                  7}}}}};
  EXPECT_EQ(upgradingNodesOf(job), std::vector<std::string>{"a"});
  auto all = nodeUpgradeStatuses(job);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(toJson(all[1]), (json{{"nodeName", "b"}, {"state", kUpgradeInit}}));
  EXPECT_TRUE(upgradingNodesOf(json{{"status", "x"}}).empty());
}

TEST(UpgradesTest, ConditionPrefixNamesTheJobItsUidAndVersion) {
  EXPECT_EQ(upgradeConditionPrefix("j", "u-1", "1.2.0"), "NodeUpgradeJob j (u-1) to 1.2.0: ");
}

TEST(Upgrades, ImagePullSecretRefAndFailureTolerate) {
  EXPECT_EQ(imagePullSecretRef("ns/regcred"),
            std::make_pair(std::string("ns"), std::string("regcred")));
  EXPECT_EQ(imagePullSecretRef("regcred"),
            std::make_pair(std::string("kube-system"), std::string("regcred")));
  EXPECT_EQ(parseFailureTolerate("0.25"), 0.25);
  EXPECT_EQ(parseFailureTolerate("1"), 1.0);
  for (const char* bad : {"", "1.5", "-0.1", "ten", "0.1x"}) {
    EXPECT_FALSE(parseFailureTolerate(bad)) << bad;
  }
}

}  // namespace
}  // namespace ep::api
