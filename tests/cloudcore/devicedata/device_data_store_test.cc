#include "cloudcore/devicedata/device_data_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/clock.h"
#include "tests/testing/temp_dir.h"

namespace ep::devicedata {
namespace {

class DeviceDataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open(uint64_t maxSamples = 10000) {
    store_ = std::make_unique<SqliteDeviceDataStore>(
        SqliteDeviceDataOptions{.path = dir_.path() + "/devicedata.db",
                                .maxAge = std::chrono::hours(1),
                                .maxSamplesPerProperty = maxSamples,
                                .sweepInterval = std::chrono::hours(1)},
        clock_);
    ASSERT_TRUE(store_->start().isOk());
  }
  int64_t now() const { return clock_.nowMillis(); }
  DeviceSamples samples(const std::string& device,
                        std::vector<std::tuple<std::string, int64_t, std::string>> s) {
    DeviceSamples d{"default", device, {}};
    uint32_t index = 0;
    for (auto& [p, t, v] : s) d.samples.push_back({p, t, v, index++});
    return d;
  }
  std::vector<Sample> all(const std::string& device, const std::string& property = "") {
    auto r = store_->query({.ns = "default", .device = device, .property = property});
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? *r : std::vector<Sample>{};
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteDeviceDataStore> store_;
};

TEST_F(DeviceDataStoreTest, AppendsAndQueriesOldestFirstAcrossRestarts) {
  const int64_t t = now();
  ASSERT_TRUE(store_
                  ->append(1, {samples("thermo-1", {{"temperature", t, "20.5"},
                                                    {"humidity", t, "40"},
                                                    {"temperature", t + 1000, "21"}}),
                               samples("thermo-2", {{"temperature", t, "9"}})})
                  .isOk());
  store_->stop();
  open();  // durable: read back after reopening
  auto got = all("thermo-1");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].timestamp, t);
  EXPECT_EQ(got[2].value, "21");
  auto temps = all("thermo-1", "temperature");
  ASSERT_EQ(temps.size(), 2u);
  EXPECT_EQ(temps[0].value, "20.5");
  EXPECT_EQ(temps[1].value, "21");
  EXPECT_EQ(all("thermo-2").size(), 1u);
  EXPECT_TRUE(all("thermo-3").empty());
  // since and limit: the newest samples within the window.
  auto recent = store_->query({.ns = "default", .device = "thermo-1", .sinceMillis = t + 1});
  ASSERT_TRUE(recent.isOk());
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ((*recent)[0].value, "21");
  auto newest = store_->query({.ns = "default", .device = "thermo-1", .limit = 1});
  ASSERT_TRUE(newest.isOk());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].timestamp, t + 1000);
}

// A report applied twice (the cloud crashed before persisting its acknowledgement) adds
// nothing the second time; another report with equal values is new data.
TEST_F(DeviceDataStoreTest, ReapplyingAReportAddsNothing) {
  const int64_t t = now();
  auto batch = std::vector<DeviceSamples>{
      samples("thermo-1", {{"temperature", t, "20"}, {"temperature", t, "20"}})};
  ASSERT_TRUE(store_->append(7, batch).isOk());
  ASSERT_TRUE(store_->append(7, batch).isOk());
  EXPECT_EQ(all("thermo-1").size(), 2u);
  ASSERT_TRUE(store_->append(8, batch).isOk());
  EXPECT_EQ(all("thermo-1").size(), 4u);
}

TEST_F(DeviceDataStoreTest, BadSamplesAreRefusedNamingTheFieldAndNothingIsStored) {
  const int64_t t = now();
  std::vector<std::pair<DeviceSamples, std::string>> cases = {
      {samples("thermo-1", {{"temperature", t, "1"}, {"", t, "2"}}), "samples[1].property"},
      {samples("thermo-1", {{"temperature", 0, "1"}}), "samples[0].timestamp"},
      {samples("thermo-1", {{"temperature", t, std::string(kMaxValueBytes + 1, 'x')}}),
       "samples[0].value"},
      {samples("Not_A_Name", {{"temperature", t, "1"}}), "name"},
      {samples("thermo-1", {}), "samples"},
      {samples("rules/Bad_Rule", {{"default/up", t, "1"}}), "name"},
      {samples("nodes/", {{"$hw/events/upload/x", t, "1"}}), "name"},
  };
  for (auto& [d, field] : cases) {
    auto s = store_->append(1, {samples("thermo-1", {{"temperature", t, "ok"}}), d});
    EXPECT_EQ(s.code(), Code::kInvalid) << field;
    EXPECT_NE(s.message().find("devices[1]." + field), std::string::npos) << s.message();
  }
  EXPECT_TRUE(all("thermo-1").empty());
  EXPECT_EQ(store_->query({.ns = "default", .device = "thermo-1", .limit = 0}).status().code(),
            Code::kInvalid);
  EXPECT_EQ(store_->query({.ns = "default", .device = "thermo-1", .limit = kMaxQueryLimit + 1})
                .status()
                .code(),
            Code::kInvalid);
}

// The series of Rules (rules/NAME) and of node uploads (nodes/NAME, namespace "") live beside
// the devices' (docs/rules.md).
TEST_F(DeviceDataStoreTest, RuleAndNodeSeriesAreKeptBesideDevices) {
  const int64_t t = now();
  ASSERT_TRUE(store_->append(1, {samples("rules/up", {{"default/up", t, "m1"}})}).isOk());
  DeviceSamples upload{"", "nodes/edge-1", {{"$hw/events/upload/d", t, "u1"}}};
  ASSERT_TRUE(store_->append(2, {upload}).isOk());
  auto rule = store_->query({.ns = "default", .device = "rules/up"});
  ASSERT_TRUE(rule.isOk());
  ASSERT_EQ(rule->size(), 1u);
  EXPECT_EQ((*rule)[0].value, "m1");
  auto node = store_->query({.ns = "", .device = "nodes/edge-1"});
  ASSERT_TRUE(node.isOk());
  ASSERT_EQ(node->size(), 1u);
  EXPECT_EQ((*node)[0].property, "$hw/events/upload/d");
  // Only node series may have no namespace.
  DeviceSamples noNs{"", "rules/up", {{"p", t, "x"}}};
  EXPECT_EQ(store_->append(3, {noNs}).code(), Code::kInvalid);
}

TEST_F(DeviceDataStoreTest, RetentionRemovesOldSamplesAndKeepsTheNewestPerProperty) {
  store_->stop();
  open(/*maxSamples=*/3);
  const int64_t t = now();
  std::vector<std::tuple<std::string, int64_t, std::string>> s;
  for (int i = 0; i < 5; ++i) s.emplace_back("temperature", t + i, std::to_string(i));
  s.emplace_back("humidity", t - std::chrono::milliseconds(std::chrono::hours(2)).count(), "old");
  s.emplace_back("pressure", t, "p1");  // under the count: untouched by the others' trim
  s.emplace_back("pressure", t + 1, "p2");
  ASSERT_TRUE(store_->append(1, {samples("thermo-1", s)}).isOk());
  auto removed = store_->sweepNow();
  ASSERT_TRUE(removed.isOk());
  EXPECT_EQ(*removed, 3u);  // two beyond the count, one beyond the age
  auto left = all("thermo-1", "temperature");
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left[0].value, "2");
  EXPECT_EQ(left[2].value, "4");
  EXPECT_EQ(all("thermo-1", "pressure").size(), 2u);
  EXPECT_TRUE(all("thermo-1", "humidity").empty());
  // Later, everything ages out.
  clock_.advance(std::chrono::hours(3));
  ASSERT_TRUE(store_->sweepNow().isOk());
  EXPECT_TRUE(all("thermo-1").empty());
}

// Data at rest is verified: a sample changed on disk is skipped, never served.
TEST_F(DeviceDataStoreTest, ASampleChangedOnDiskIsNotServed) {
  const int64_t t = now();
  ASSERT_TRUE(store_
                  ->append(1, {samples("thermo-1",
                                       {{"temperature", t, "20"}, {"temperature", t + 1, "21"}})})
                  .isOk());
  store_->stop();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/devicedata.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE samples SET value = '99' WHERE value = '20'", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  open();
  auto got = all("thermo-1");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "21");
  EXPECT_EQ(store_->corruptSamples(), 1u);
}

TEST_F(DeviceDataStoreTest, CallsAfterStopAreUnavailable) {
  store_->stop();
  EXPECT_EQ(store_->append(1, {samples("thermo-1", {{"t", now(), "1"}})}).code(),
            Code::kUnavailable);
  EXPECT_EQ(store_->query({.ns = "default", .device = "thermo-1"}).status().code(),
            Code::kUnavailable);
}

}  // namespace
}  // namespace ep::devicedata
