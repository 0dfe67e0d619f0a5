#include "edgecore/devicetwin/device_twin.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "tests/testing/sync_changes.h"
#include "tests/testing/temp_dir.h"

namespace ep::edgecore::devicetwin {
namespace {

using Json = nlohmann::json;
namespace tv1 = edgeplane::tunnel::v1;

// Records what the twin publishes and acknowledges; wait() blocks until a condition holds.
class RecordingBus final : public MessageBus {
 public:
  Status publish(std::string topic, std::string payload) override {
    std::lock_guard lock(mu_);
    published_.push_back({std::move(topic), std::move(payload)});
    cv_.notify_all();
    return Status::ok();
  }
  void acknowledge(uint64_t generation, uint16_t packetId) override {
    std::lock_guard lock(mu_);
    acks_.emplace_back(generation, packetId);
    cv_.notify_all();
  }
  // The payload of the first message on `topic` published at or after index `from`.
  std::optional<std::string> waitFor(const std::string& topic, size_t from = 0) {
    std::unique_lock lock(mu_);
    std::optional<std::string> found;
    cv_.wait_for(lock, std::chrono::seconds(10), [&] {
      for (size_t i = from; i < published_.size(); ++i) {
        if (published_[i].topic == topic) {
          found = published_[i].payload;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  bool waitAcks(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return acks_.size() >= n; });
  }
  std::vector<std::pair<uint64_t, uint16_t>> acks() {
    std::lock_guard lock(mu_);
    return acks_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return published_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Publish> published_;
  std::vector<std::pair<uint64_t, uint16_t>> acks_;
};

void put(metamanager::MetaManager& cache, const std::string& resource, const Json& obj,
         int64_t revision) {
  tv1::Sync sync;
  sync.set_revision(revision);
  testing::addPutChange(sync, resource, obj, revision);
  ASSERT_TRUE(cache.applySync(sync).isOk());
}

Json model() {
  return Json::parse(R"({"metadata":{"name":"thermometer","namespace":"default"},
    "spec":{"protocol":"simthermo","properties":[
      {"name":"temperature","type":"FLOAT","accessMode":"ReadOnly"},
      {"name":"setpoint","type":"INT","accessMode":"ReadWrite"}]}})");
}

Json device(const std::string& setpoint) {
  Json d = Json::parse(R"({"metadata":{"name":"thermo-1","namespace":"default"},
    "spec":{"nodeName":"edge-a","deviceModelRef":{"name":"thermometer"},
      "properties":[{"name":"temperature"},{"name":"setpoint"}]}})");
  d["spec"]["properties"][1]["desired"] = {{"value", setpoint}};
  return d;
}

class DeviceTwinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = std::make_unique<metamanager::MetaManager>(
        metamanager::MetaManagerOptions{.dataDir = dir_.path()});
    ASSERT_TRUE(cache_->start().isOk());
  }
  std::unique_ptr<DeviceTwin> startTwin() {
    auto t = std::make_unique<DeviceTwin>(DeviceTwinOptions{.nodeName = "edge-a"}, *cache_, bus_,
                                          clock_);
    EXPECT_TRUE(t->start().isOk());
    return t;
  }
  // The pending DEVICE_TWIN report's status for default/thermo-1, if any.
  std::optional<Json> pendingStatus() {
    auto pending = cache_->pending(1000);
    if (!pending.isOk()) return std::nullopt;
    for (const auto& e : *pending) {
      if (e.kind == tv1::REPORT_KIND_DEVICE_TWIN && e.name == "thermo-1") {
        return Json::parse(e.payload);
      }
    }
    return std::nullopt;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  RecordingBus bus_;
  std::unique_ptr<metamanager::MetaManager> cache_;
};

TEST_F(DeviceTwinTest, DesiredValuesInTheCacheGoOutAsDeltas) {
  put(*cache_, "devicemodels.devices.kubeedge.io", model(), 1);
  put(*cache_, "devices.devices.kubeedge.io", device("20"), 2);
  auto twin = startTwin();
  auto delta = bus_.waitFor("$hw/events/device/thermo-1/twin/update/delta");
  ASSERT_TRUE(delta);
  EXPECT_EQ(Json::parse(*delta)["delta"]["setpoint"], "20");
  // A change arriving while running.
  const size_t mark = bus_.count();
  put(*cache_, "devices.devices.kubeedge.io", device("30"), 3);
  delta = bus_.waitFor("$hw/events/device/thermo-1/twin/update/delta", mark);
  ASSERT_TRUE(delta);
  EXPECT_EQ(Json::parse(*delta)["delta"]["setpoint"], "30");
}

TEST_F(DeviceTwinTest, QoS1MessagesAreAcknowledgedOnlyAfterTheirReportIsDurable) {
  put(*cache_, "devicemodels.devices.kubeedge.io", model(), 1);
  put(*cache_, "devices.devices.kubeedge.io", device("20"), 2);
  auto twin = startTwin();
  twin->onMessage({.topic = "$hw/events/device/thermo-1/twin/update",
                   .payload = R"({"twin":{"temperature":{"actual":{"value":"21.5"}}}})",
                   .qos = 1,
                   .packetId = 42,
                   .generation = 7});
  ASSERT_TRUE(bus_.waitAcks(1));
  EXPECT_EQ(bus_.acks()[0], (std::pair<uint64_t, uint16_t>{7, 42}));
  // By the time of the ack the report is in the outbox.
  auto status = pendingStatus();
  ASSERT_TRUE(status);
  bool found = false;
  for (const auto& t : (*status)["twins"]) {
    if (t["propertyName"] == "temperature") found = t["reported"]["value"] == "21.5";
  }
  EXPECT_TRUE(found) << status->dump();
  EXPECT_TRUE(bus_.waitFor("$hw/events/device/thermo-1/twin/update/result"));

  // A restart keeps the twin: twin/get answers from the database.
  twin->stop();
  twin.reset();
  auto again = startTwin();
  const size_t mark = bus_.count();
  again->onMessage({.topic = "$hw/events/device/thermo-1/twin/get", .payload = "{}"});
  auto got = bus_.waitFor("$hw/events/device/thermo-1/twin/get/result", mark);
  ASSERT_TRUE(got);
  EXPECT_EQ(Json::parse(*got)["twin"]["temperature"]["actual"]["value"], "21.5");
}

TEST_F(DeviceTwinTest, DevicesOfOtherNodesAreIgnoredAndRemovedOnesForgotten) {
  put(*cache_, "devicemodels.devices.kubeedge.io", model(), 1);
  Json other = device("1");
  other["spec"]["nodeName"] = "edge-b";
  put(*cache_, "devices.devices.kubeedge.io", other, 2);
  auto twin = startTwin();
  twin->onMessage({.topic = "$hw/events/device/thermo-1/twin/update",
                   .payload = R"({"twin":{"temperature":{"actual":{"value":"1"}}}})"});
  auto r = bus_.waitFor("$hw/events/device/thermo-1/twin/update/result");
  ASSERT_TRUE(r);
  EXPECT_EQ(Json::parse(*r)["code"], 404);
  EXPECT_FALSE(pendingStatus());
  // Rebound here, then moved away: membership says so and the twin record goes.
  put(*cache_, "devices.devices.kubeedge.io", device("1"), 3);
  ASSERT_TRUE(bus_.waitFor("$hw/events/node/edge-a/membership/updated"));
  const size_t mark = bus_.count();
  put(*cache_, "devices.devices.kubeedge.io", other, 4);
  auto removed = bus_.waitFor("$hw/events/node/edge-a/membership/updated", mark);
  ASSERT_TRUE(removed);
  EXPECT_EQ(Json::parse(*removed)["removed_devices"][0]["name"], "thermo-1");
  twin->stop();
  auto records = cache_->listLocal(kScope);
  ASSERT_TRUE(records.isOk());
  EXPECT_TRUE(records->empty());
}

}  // namespace
}  // namespace ep::edgecore::devicetwin
