// Devices end to end: cloudcore, a real edgecore, a real mosquitto; mosquitto_pub/mosquitto_sub
// play the devices (KubeEdge's topics and payloads, docs/devices.md).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/edge_fixture.h"
#include "tests/testing/mosquitto.h"

namespace ep::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kManifests = R"(apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermometer
spec:
  protocol: simthermo
  properties:
  - name: temperature
    type: FLOAT
    accessMode: ReadOnly
    minimum: "-40"
    maximum: "125"
  - name: setpoint
    type: INT
    accessMode: ReadWrite
    minimum: "0"
    maximum: "100"
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: thermo-1
spec:
  deviceModelRef:
    name: thermometer
  nodeName: edge-1
  protocol:
    protocolName: simthermo
  properties:
  - name: temperature
    reportToCloud: true
    visitors:
      protocolName: simthermo
  - name: setpoint
    desired:
      value: "20"
    visitors:
      protocolName: simthermo
)";

class DevicesTest : public EdgeFixture {
 protected:
  void SetUp() override {
    if (!Mosquitto::available())
      GTEST_SKIP() << "mosquitto and mosquitto-clients are not installed";
    EdgeFixture::SetUp();
    broker_ = std::make_unique<Mosquitto>(dir_.path());
    ASSERT_TRUE(broker_->start()) << broker_->log();
  }
  void TearDown() override {
    subs_.clear();
    if (broker_ && HasFailure()) std::cerr << "---- mosquitto ----\n" << broker_->log() << "\n";
    EdgeFixture::TearDown();
    broker_.reset();
  }

  void startDeviceEdge() { startEdge("edge-1", {"--mqtt-server", broker_->url()}); }

  // Subscribes to `filter` and waits until the subscription is live (a probe on `probeTopic`,
  // which must match the filter, comes back), so nothing published after this is missed.
  Process* watch(const std::string& filter, const std::string& probeTopic) {
    auto p = broker_->subscribe(filter, "sub" + std::to_string(subs_.size()) + ".log");
    EXPECT_NE(p, nullptr);
    Process* raw = p.get();
    subs_.push_back(std::move(p));
    EXPECT_TRUE(eventually(
        [&] {
          broker_->publish(probeTopic, "{\"probe\":true}");
          return raw->log().find(probeTopic) != std::string::npos;
        },
        std::chrono::seconds(10)));
    return raw;
  }

  // Lines "TOPIC PAYLOAD" of a watcher's log with exactly this topic, payloads parsed.
  static std::vector<Json> messages(Process* sub, const std::string& topic) {
    std::vector<Json> out;
    std::istringstream in(sub->log());
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(topic + " ", 0) != 0) continue;
      out.push_back(Json::parse(line.substr(topic.size() + 1), nullptr, false));
    }
    return out;
  }

  Json device() {
    auto r = edgectl({"get", "device", "thermo-1", "-o", "json"});
    if (r.exitCode != 0) return Json();
    return Json::parse(r.out, nullptr, false);
  }

  // The reported value of `property` in the cloud's Device status ("" when none).
  std::string reported(const std::string& property) {
    Json d = device();
    if (!d.is_object()) return "";
    for (const auto& t : d["status"].value("twins", Json::array())) {
      if (t.value("propertyName", "") == property && t.contains("reported")) {
        return t["reported"].value("value", "");
      }
    }
    return "";
  }

  void applyDevices() {
    auto r = edgectl({"apply", "-f", writeFile("devices.yaml", kManifests)});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  std::unique_ptr<Mosquitto> broker_;
  std::vector<std::unique_ptr<Process>> subs_;
};

TEST_F(DevicesTest, ReportedValuesReachTheCloudAndDesiredValuesReachTheDevice) {
  startDeviceEdge();
  ASSERT_TRUE(eventually([&] { return nodeReady("edge-1") == "True"; }));
  Process* sub = watch("$hw/events/#", "$hw/events/probe");
  applyDevices();

  // The node announces its new device and delivers the desired value set at creation.
  ASSERT_TRUE(eventually([&] {
    return !messages(sub, "$hw/events/node/edge-1/membership/updated").empty() &&
           !messages(sub, "$hw/events/device/thermo-1/twin/update/delta").empty();
  })) << sub->log();
  Json delta = messages(sub, "$hw/events/device/thermo-1/twin/update/delta")[0];
  EXPECT_EQ(delta["delta"]["setpoint"], "20");
  EXPECT_EQ(delta["twin"]["setpoint"]["expected"]["value"], "20");
  EXPECT_EQ(delta["twin"]["setpoint"]["metadata"]["type"], "int");

  // A device reports: the result topic answers, the cloud's status shows the value.
  ASSERT_EQ(
      broker_
          ->publish(
              "$hw/events/device/thermo-1/twin/update",
              R"({"event_id":"r1","timestamp":0,"twin":{"temperature":{"actual":{"value":"21.5"},"metadata":{"type":"float"}}}})")
          .exitCode,
      0);
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "21.5"; })) << device().dump();
  auto results = messages(sub, "$hw/events/device/thermo-1/twin/update/result");
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results.back()["event_id"], "r1");
  EXPECT_EQ(results.back()["twin"]["temperature"]["actual"]["value"], "21.5");
  ASSERT_FALSE(messages(sub, "$hw/events/device/thermo-1/twin/update/document").empty());

  // observedDesired shows what reached the edge.
  Json status = device()["status"];
  bool observed = false;
  for (const auto& t : status["twins"]) {
    if (t["propertyName"] == "setpoint") observed = t["observedDesired"]["value"] == "20";
  }
  EXPECT_TRUE(observed) << status.dump();

  // A new desired value in the cloud reaches the device as a delta.
  {
    auto c = client();
    auto r =
        c.request("PATCH", "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1",
                  R"([{"op":"replace","path":"/spec/properties/1/desired/value","value":"42"}])",
                  "application/json-patch+json");
    ASSERT_TRUE(r.isOk());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  ASSERT_TRUE(eventually([&] {
    for (const auto& d : messages(sub, "$hw/events/device/thermo-1/twin/update/delta")) {
      if (d["delta"].value("setpoint", "") == "42") return true;
    }
    return false;
  })) << sub->log();

  // State: online, and the wide listing shows it with the reading.
  ASSERT_EQ(broker_
                ->publish("$hw/events/device/thermo-1/state/update",
                          R"({"event_id":"s1","state":"online"})")
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] { return device()["status"].value("state", "") == "online"; }));
  EXPECT_FALSE(device()["status"].value("lastOnlineTime", "").empty());
  auto wide = edgectl({"get", "device", "-o", "wide"});
  EXPECT_NE(wide.out.find("temperature=21.5"), std::string::npos) << wide.out;
  EXPECT_NE(wide.out.find("online"), std::string::npos) << wide.out;

  // twin/get and membership/get are answered.
  ASSERT_EQ(
      broker_->publish("$hw/events/device/thermo-1/twin/get", R"({"event_id":"g1"})").exitCode, 0);
  ASSERT_EQ(
      broker_->publish("$hw/events/node/edge-1/membership/get", R"({"event_id":"m1"})").exitCode,
      0);
  ASSERT_TRUE(eventually([&] {
    return !messages(sub, "$hw/events/device/thermo-1/twin/get/result").empty() &&
           !messages(sub, "$hw/events/node/edge-1/membership/get/result").empty();
  }));
  Json got = messages(sub, "$hw/events/device/thermo-1/twin/get/result")[0];
  EXPECT_EQ(got["event_id"], "g1");
  EXPECT_EQ(got["twin"]["temperature"]["actual"]["value"], "21.5");
  EXPECT_EQ(got["twin"]["setpoint"]["expected"]["value"], "42");
  Json members = messages(sub, "$hw/events/node/edge-1/membership/get/result")[0];
  ASSERT_EQ(members["devices"].size(), 1u);
  EXPECT_EQ(members["devices"][0]["id"], "thermo-1");
}

TEST_F(DevicesTest, BadInputIsAnsweredOnTheResultTopicAndNothingIsStored) {
  startDeviceEdge();
  Process* sub =
      watch("$hw/events/device/+/twin/update/result", "$hw/events/device/probe/twin/update/result");
  applyDevices();
  ASSERT_TRUE(eventually([&] { return device()["spec"].is_object(); }));
  // The device must have reached the edge before its reports are judged.
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not json", "not valid JSON"},
      {R"({"event_id":"b1","twin":{"humidity":{"actual":{"value":"1"}}}})",
       "no property \"humidity\""},
      {R"({"event_id":"b2","twin":{"temperature":{"actual":{"value":"hot"}}}})", "is not a FLOAT"},
      {R"({"event_id":"b3","twin":{"temperature":{"actual":{"value":"200"}}}})", "maximum 125"},
  };
  for (const auto& [payload, reason] : bad) {
    ASSERT_EQ(broker_->publish("$hw/events/device/thermo-1/twin/update", payload).exitCode, 0);
  }
  ASSERT_EQ(broker_
                ->publish("$hw/events/device/ghost/twin/update",
                          R"({"twin":{"temperature":{"actual":{"value":"1"}}}})")
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] {
    return messages(sub, "$hw/events/device/thermo-1/twin/update/result").size() >= bad.size() &&
           !messages(sub, "$hw/events/device/ghost/twin/update/result").empty();
  })) << sub->log();
  auto results = messages(sub, "$hw/events/device/thermo-1/twin/update/result");
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(results[i]["code"], 400) << results[i].dump();
    EXPECT_NE(results[i].value("reason", "").find(bad[i].second), std::string::npos)
        << results[i].dump();
  }
  EXPECT_EQ(messages(sub, "$hw/events/device/ghost/twin/update/result")[0]["code"], 404);
  // A good report after the bad ones lands; none of the bad values ever did.
  ASSERT_EQ(broker_
                ->publish("$hw/events/device/thermo-1/twin/update",
                          R"({"twin":{"temperature":{"actual":{"value":"19"}}}})")
                .exitCode,
            0);
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "19"; }));
}

TEST_F(DevicesTest, ReportsWhileTheCloudIsDownArriveAfterItReturnsAcrossAnEdgeRestart) {
  startDeviceEdge();
  applyDevices();
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  Process* sub = watch("$hw/events/device/thermo-1/#", "$hw/events/device/thermo-1/probe");

  cloud_.reset();  // the cloud goes away; broker and edge stay
  for (int v = 1; v <= 5; ++v) {
    ASSERT_EQ(broker_
                  ->publish("$hw/events/device/thermo-1/twin/update",
                            R"({"twin":{"temperature":{"actual":{"value":")" + std::to_string(v) +
                                R"("}}}})")
                  .exitCode,
              0);
  }
  ASSERT_EQ(
      broker_->publish("$hw/events/device/thermo-1/state/update", R"({"state":"online"})").exitCode,
      0);
  // The edge answers devices with the cloud gone.
  ASSERT_TRUE(eventually([&] {
    return messages(sub, "$hw/events/device/thermo-1/twin/update/result").size() >= 5 &&
           !messages(sub, "$hw/events/device/thermo-1/state/update/result").empty();
  })) << sub->log();

  // edgecore restarts while still offline: the twin and its pending report survive.
  ASSERT_EQ(edges_["edge-1"].proc->stop(SIGTERM), 0);
  startDeviceEdge();
  const size_t before = messages(sub, "$hw/events/device/thermo-1/twin/get/result").size();
  ASSERT_EQ(
      broker_->publish("$hw/events/device/thermo-1/twin/get", R"({"event_id":"after"})").exitCode,
      0);
  ASSERT_TRUE(eventually(
      [&] { return messages(sub, "$hw/events/device/thermo-1/twin/get/result").size() > before; }));
  EXPECT_EQ(messages(sub, "$hw/events/device/thermo-1/twin/get/result")
                .back()["twin"]["temperature"]["actual"]["value"],
            "5");

  restartCloud();
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "5"; }, std::chrono::seconds(30)))
      << device().dump();
  EXPECT_EQ(device()["status"].value("state", ""), "online");
}

TEST_F(DevicesTest, EdgecoreReconnectsToARestartedBroker) {
  startDeviceEdge();
  applyDevices();
  ASSERT_TRUE(eventually([&] {
    return edgeGet("edge-1",
                   "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/thermo-1")
        .is_object();
  }));
  broker_->stop();
  ASSERT_TRUE(broker_->start());  // same port
  // Its session is gone with the broker's memory; edgecore subscribes again on reconnect.
  Process* sub = watch("$hw/events/device/thermo-1/twin/update/result",
                       "$hw/events/device/thermo-1/twin/update/result");
  ASSERT_TRUE(eventually(
      [&] {
        broker_->publish("$hw/events/device/thermo-1/twin/update",
                         R"({"event_id":"again","twin":{"temperature":{"actual":{"value":"7"}}}})");
        for (const auto& m : messages(sub, "$hw/events/device/thermo-1/twin/update/result")) {
          if (m.value("event_id", "") == "again") return true;
        }
        return false;
      },
      std::chrono::seconds(40)));
  ASSERT_TRUE(eventually([&] { return reported("temperature") == "7"; }));
}

}  // namespace
}  // namespace ep::testing
