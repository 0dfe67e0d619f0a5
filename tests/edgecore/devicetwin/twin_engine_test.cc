#include "edgecore/devicetwin/twin_engine.h"

#include <gtest/gtest.h>

namespace ep::edgecore::devicetwin {
namespace {

using Json = nlohmann::json;

Json model() {
  return Json::parse(R"({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"DeviceModel",
    "metadata":{"name":"thermometer","namespace":"default"},
    "spec":{"protocol":"simthermo","properties":[
      {"name":"temperature","type":"FLOAT","accessMode":"ReadOnly","minimum":"-40","maximum":"125"},
      {"name":"setpoint","type":"INT","accessMode":"ReadWrite","minimum":"0","maximum":"100"},
      {"name":"enabled","type":"BOOLEAN","accessMode":"ReadWrite"},
      {"name":"label","type":"STRING","accessMode":"ReadWrite"}]}})");
}

Json device(const std::string& name, const std::string& setpoint = "",
            const std::string& node = "edge-a", const std::string& ns = "default") {
  Json d = Json::parse(R"({"apiVersion":"devices.kubeedge.io/v1beta1","kind":"Device",
    "spec":{"deviceModelRef":{"name":"thermometer"},"protocol":{"protocolName":"simthermo"},
      "properties":[{"name":"temperature"},{"name":"setpoint"}]}})");
  d["metadata"] = {{"name", name}, {"namespace", ns}};
  d["spec"]["nodeName"] = node;
  if (!setpoint.empty()) d["spec"]["properties"][1]["desired"] = {{"value", setpoint}};
  return d;
}

const Publish* find(const Effects& e, const std::string& topic) {
  for (const auto& p : e.publishes) {
    if (p.topic == topic) return &p;
  }
  return nullptr;
}

class TwinEngineTest : public ::testing::Test {
 protected:
  TwinEngineTest() : engine_("edge-a", clock_) {
    Effects e;
    engine_.upsertModel(model(), e);
  }
  Effects send(const std::string& topic, const std::string& payload) {
    Effects e;
    engine_.onMessage(topic, payload, e);
    return e;
  }
  FakeClock clock_{1'800'000'000'000};
  TwinEngine engine_;
};

TEST_F(TwinEngineTest, ReportedValueIsStoredReportedAndAnswered) {
  Effects added;
  engine_.upsertDevice(device("thermo-1"), added);
  ASSERT_NE(find(added, "$hw/events/node/edge-a/membership/updated"), nullptr);
  auto e = send("$hw/events/device/thermo-1/twin/update",
                R"({"event_id":"e1","timestamp":5,"twin":{"temperature":{"actual":{"value":"21.5",
                    "metadata":{"timestamp":1700000000000}}}}})");
  ASSERT_EQ(e.reports.size(), 1u);
  EXPECT_EQ(e.reports[0].kind, edgeplane::tunnel::v1::REPORT_KIND_DEVICE_TWIN);
  EXPECT_EQ(e.reports[0].ns, "default");
  EXPECT_EQ(e.reports[0].name, "thermo-1");
  Json status = Json::parse(e.reports[0].payload);
  EXPECT_EQ(status["twins"][0]["propertyName"], "temperature");
  EXPECT_EQ(status["twins"][0]["reported"]["value"], "21.5");
  EXPECT_EQ(status["twins"][0]["reported"]["metadata"]["timestamp"], "1700000000000");
  EXPECT_EQ(status["twins"][0]["reported"]["metadata"]["type"], "float");
  ASSERT_EQ(e.puts.size(), 1u);
  EXPECT_EQ(e.puts[0].key, "default/thermo-1");
  const auto* result = find(e, "$hw/events/device/thermo-1/twin/update/result");
  ASSERT_NE(result, nullptr);
  Json r = Json::parse(result->payload);
  EXPECT_EQ(r["event_id"], "e1");
  EXPECT_EQ(r["twin"]["temperature"]["actual"]["value"], "21.5");
  EXPECT_FALSE(r.contains("code"));
  const auto* doc = find(e, "$hw/events/device/thermo-1/twin/update/document");
  ASSERT_NE(doc, nullptr);
  Json d = Json::parse(doc->payload);
  EXPECT_FALSE(d["twin"]["temperature"]["last"].contains("actual"));
  EXPECT_EQ(d["twin"]["temperature"]["current"]["actual"]["value"], "21.5");
  EXPECT_EQ(engine_.twin("default", "thermo-1")->twins.at("temperature").reported->value, "21.5");
}

TEST_F(TwinEngineTest, BadInputIsAnsweredWithAnErrorAndStoresNothing) {
  Effects added;
  engine_.upsertDevice(device("thermo-1"), added);
  struct Case {
    std::string topicDevice, payload, reason;
    int code;
  };
  const std::vector<Case> cases = {
      {"thermo-1", "{not json", "not valid JSON", 400},
      {"thermo-1", "[1]", "not a JSON object", 400},
      // Refused before parsing: hostile nesting costs the edge no memory.
      {"thermo-1", std::string(200000, '['), "nests deeper than 16 levels", 400},
      {"ghost", R"({"twin":{"temperature":{"actual":{"value":"1"}}}})", "not bound to node edge-a",
       404},
      {"thermo-1", R"({"twin":{"humidity":{"actual":{"value":"1"}}}})",
       "has no property \"humidity\"", 400},
      {"thermo-1", R"({"twin":{"temperature":{"actual":{"value":"warm"}}}})", "is not a FLOAT",
       400},
      {"thermo-1", R"({"twin":{"temperature":{"actual":{"value":"126"}}}})",
       "above the model's maximum 125", 400},
      {"thermo-1", R"({"twin":{"setpoint":{"actual":{"value":"1.5"}}}})", "is not an INT", 400},
      {"thermo-1", R"({"twin":{"setpoint":{"actual":{"value":"-1"}}}})",
       "below the model's minimum 0", 400},
      {"thermo-1", R"({"twin":{"enabled":{"actual":{"value":"yes"}}}})", "BOOLEAN", 400},
      {"thermo-1", R"({"twin":{"temperature":{"actual":{"value":21}}}})",
       "actual.value: must be a string", 400},
      {"thermo-1", R"({"twin":{"setpoint":{"expected":{"value":"5"}}}})", "set in the cloud", 400},
      {"thermo-1", R"({"twin":{}})", "non-empty object", 400},
      // One bad property refuses the whole message: the good one is not stored either.
      {"thermo-1",
       R"({"twin":{"label":{"actual":{"value":"ok"}},"temperature":{"actual":{"value":"x"}}}})",
       "temperature", 400},
  };
  for (const auto& c : cases) {
    auto e = send("$hw/events/device/" + c.topicDevice + "/twin/update", c.payload);
    EXPECT_TRUE(e.puts.empty()) << c.payload;
    EXPECT_TRUE(e.reports.empty()) << c.payload;
    const auto* result = find(e, "$hw/events/device/" + c.topicDevice + "/twin/update/result");
    ASSERT_NE(result, nullptr) << c.payload;
    Json r = Json::parse(result->payload);
    EXPECT_EQ(r["code"], c.code) << c.payload;
    EXPECT_NE(r["reason"].get<std::string>().find(c.reason), std::string::npos)
        << c.payload << " -> " << r["reason"];
  }
  EXPECT_TRUE(engine_.twin("default", "thermo-1")->twins.empty());
}

TEST_F(TwinEngineTest, DesiredValueGoesOutAsDeltaOnceAndIsObserved) {
  Effects first;
  engine_.upsertDevice(device("thermo-1", "20"), first);
  const auto* delta = find(first, "$hw/events/device/thermo-1/twin/update/delta");
  ASSERT_NE(delta, nullptr);
  Json d = Json::parse(delta->payload);
  EXPECT_EQ(d["delta"]["setpoint"], "20");
  EXPECT_EQ(d["twin"]["setpoint"]["expected"]["value"], "20");
  ASSERT_EQ(first.reports.size(), 1u);
  Json status = Json::parse(first.reports[0].payload);
  EXPECT_EQ(status["twins"][0]["observedDesired"]["value"], "20");

  // The cloud echoing a status change (same spec) sends nothing again.
  Json echoed = device("thermo-1", "20");
  echoed["status"] = status;
  Effects again;
  engine_.upsertDevice(echoed, again);
  EXPECT_TRUE(again.empty());

  // Once the device reports the desired value, a twin/get shows no difference.
  send("$hw/events/device/thermo-1/twin/update",
       R"({"twin":{"setpoint":{"actual":{"value":"20"}}}})");
  auto get = send("$hw/events/device/thermo-1/twin/get", R"({"event_id":"g"})");
  const auto* got = find(get, "$hw/events/device/thermo-1/twin/get/result");
  ASSERT_NE(got, nullptr);
  Json g = Json::parse(got->payload);
  EXPECT_EQ(g["event_id"], "g");
  EXPECT_EQ(g["twin"]["setpoint"]["expected"]["value"], "20");
  EXPECT_EQ(g["twin"]["setpoint"]["actual"]["value"], "20");
  EXPECT_EQ(g["twin"]["temperature"]["metadata"]["type"], "float");

  // A new desired value: delta again, and `updated` for the spec change.
  Effects changed;
  engine_.upsertDevice(device("thermo-1", "25"), changed);
  ASSERT_NE(find(changed, "$hw/events/device/thermo-1/twin/update/delta"), nullptr);
  EXPECT_NE(find(changed, "$hw/events/device/thermo-1/updated"), nullptr);
  EXPECT_EQ(Json::parse(find(changed, "$hw/events/device/thermo-1/twin/update/delta")
                            ->payload)["delta"]["setpoint"],
            "25");
}

TEST_F(TwinEngineTest, TwinSurvivesARestartThroughItsRecords) {
  Effects e;
  engine_.upsertDevice(device("thermo-1", "20"), e);
  auto r = send("$hw/events/device/thermo-1/twin/update",
                R"({"twin":{"temperature":{"actual":{"value":"30"}}}})");
  ASSERT_FALSE(r.puts.empty());
  TwinEngine restarted("edge-a", clock_);
  auto bad = restarted.load({{r.puts.back().key, *r.puts.back().value}, {"default/x", "garbage"}});
  EXPECT_EQ(bad, std::vector<std::string>{"default/x"});
  Effects m, again;
  restarted.upsertModel(model(), m);
  restarted.upsertDevice(device("thermo-1", "20"), again);
  // Desired "20" was delivered before the restart: not sent again; no new membership either.
  EXPECT_EQ(find(again, "$hw/events/device/thermo-1/twin/update/delta"), nullptr);
  EXPECT_EQ(find(again, "$hw/events/node/edge-a/membership/updated"), nullptr);
  EXPECT_EQ(restarted.twin("default", "thermo-1")->twins.at("temperature").reported->value, "30");
}

TEST_F(TwinEngineTest, StateUpdateAndMembership) {
  Effects e;
  engine_.upsertDevice(device("thermo-1"), e);
  engine_.upsertDevice(device("elsewhere", "", "edge-b"), e);  // the caller filters; engine trusts
  auto s = send("$hw/events/device/thermo-1/state/update", R"({"event_id":"s","state":"online"})");
  ASSERT_EQ(s.reports.size(), 1u);
  Json status = Json::parse(s.reports[0].payload);
  EXPECT_EQ(status["state"], "online");
  EXPECT_EQ(status["lastOnlineTime"], formatRfc3339(clock_.nowMillis()));
  Json result = Json::parse(find(s, "$hw/events/device/thermo-1/state/update/result")->payload);
  EXPECT_EQ(result["device"]["state"], "online");
  auto bad = send("$hw/events/device/thermo-1/state/update", R"({"state":""})");
  EXPECT_TRUE(bad.reports.empty());
  EXPECT_EQ(Json::parse(bad.publishes[0].payload)["code"], 400);

  auto m = send("$hw/events/node/edge-a/membership/get", R"({"event_id":"m"})");
  Json members = Json::parse(find(m, "$hw/events/node/edge-a/membership/get/result")->payload);
  EXPECT_EQ(members["event_id"], "m");
  ASSERT_EQ(members["devices"].size(), 2u);
  // Another node's membership topic is not ours to answer.
  EXPECT_TRUE(send("$hw/events/node/edge-b/membership/get", "{}").empty());

  Effects removed;
  engine_.removeDevice("default", "thermo-1", removed);
  Json update = Json::parse(find(removed, "$hw/events/node/edge-a/membership/updated")->payload);
  EXPECT_EQ(update["removed_devices"][0]["name"], "thermo-1");
  ASSERT_EQ(removed.puts.size(), 1u);
  EXPECT_FALSE(removed.puts[0].value.has_value());
  EXPECT_EQ(engine_.twin("default", "thermo-1"), nullptr);
}

TEST_F(TwinEngineTest, SameNameInTwoNamespacesIsAmbiguous) {
  Effects e;
  Json otherModel = model();
  otherModel["metadata"]["namespace"] = "lab";
  engine_.upsertModel(otherModel, e);
  engine_.upsertDevice(device("thermo-1"), e);
  engine_.upsertDevice(device("thermo-1", "", "edge-a", "lab"), e);
  auto r = send("$hw/events/device/thermo-1/twin/update",
                R"({"twin":{"temperature":{"actual":{"value":"1"}}}})");
  EXPECT_TRUE(r.reports.empty());
  EXPECT_EQ(Json::parse(r.publishes[0].payload)["code"], 409);
}

TEST_F(TwinEngineTest, OwnResultTopicsAreNotRequests) {
  Effects e;
  engine_.upsertDevice(device("thermo-1"), e);
  EXPECT_TRUE(send("$hw/events/device/thermo-1/twin/update/result", "{}").empty());
  EXPECT_TRUE(send("$hw/events/device/thermo-1/twin/update/delta", "{}").empty());
  EXPECT_TRUE(send("unrelated/topic", "{}").empty());
}

TEST_F(TwinEngineTest, MapperReportsAreCheckedAllOrNothing) {
  Effects e;
  engine_.upsertDevice(device("thermo-1"), e);
  Effects out;
  auto s = engine_.report("default", "thermo-1",
                          {{"temperature", {"21", 5}}, {"humidity", {"1", 5}}}, std::nullopt, out);
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_NE(s.message().find("twins[1].propertyName"), std::string::npos) << s.message();
  EXPECT_TRUE(out.empty());
  s = engine_.report("default", "ghost", {{"temperature", {"21", 5}}}, std::nullopt, out);
  EXPECT_EQ(s.code(), Code::kNotFound);
  s = engine_.report("default", "thermo-1", {{"setpoint", {"1000", 5}}}, std::nullopt, out);
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_TRUE(out.empty());
  s = engine_.report("default", "thermo-1", {{"temperature", {"21", 5}}}, std::string("online"),
                     out);
  ASSERT_TRUE(s.isOk()) << s.toString();
  ASSERT_EQ(out.reports.size(), 1u);
  Json status = Json::parse(out.reports[0].payload);
  EXPECT_EQ(status["twins"][0]["reported"]["value"], "21");
  EXPECT_EQ(status["state"], "online");
  // The same value again (same timestamp) changes nothing.
  Effects again;
  ASSERT_TRUE(
      engine_.report("default", "thermo-1", {{"temperature", {"21", 5}}}, std::nullopt, again)
          .isOk());
  EXPECT_TRUE(again.empty());
}

// Values of properties with reportToCloud become device data (over MQTT and DMI alike);
// others do not; one data report groups a batch's samples by device.
TEST_F(TwinEngineTest, ReportToCloudPropertiesProduceDeviceData) {
  Effects e;
  Json d = device("thermo-1");
  d["spec"]["properties"][0]["reportToCloud"] = true;
  engine_.upsertDevice(d, e);
  engine_.upsertDevice(device("thermo-2"), e);
  Effects out = send("$hw/events/device/thermo-1/twin/update",
                     R"({"twin":{"temperature":{"actual":{"value":"21.5",
                         "metadata":{"timestamp":1700000000000}}},
                         "setpoint":{"actual":{"value":"3"}}}})");
  ASSERT_EQ(out.data.size(), 1u);
  EXPECT_EQ(out.data[0].property, "temperature");
  EXPECT_EQ(out.data[0].value, "21.5");
  EXPECT_EQ(out.data[0].timestamp, 1700000000000);
  ASSERT_TRUE(engine_.report("default", "thermo-1", {{"temperature", {"22", 6}}}, std::nullopt, out)
                  .isOk());
  ASSERT_TRUE(engine_.report("default", "thermo-2", {{"temperature", {"22", 6}}}, std::nullopt, out)
                  .isOk());
  ASSERT_EQ(out.data.size(), 2u);  // thermo-2 does not report to the cloud
  auto reports = dataReports(out.data);
  ASSERT_EQ(reports.size(), 1u);
  const auto& report = reports[0];
  EXPECT_EQ(report.kind, edgeplane::tunnel::v1::REPORT_KIND_DATA);
  Json body = Json::parse(report.payload);
  ASSERT_EQ(body["devices"].size(), 1u);
  EXPECT_EQ(body["devices"][0]["namespace"], "default");
  EXPECT_EQ(body["devices"][0]["name"], "thermo-1");
  ASSERT_EQ(body["devices"][0]["samples"].size(), 2u);
  EXPECT_EQ(body["devices"][0]["samples"][1]["value"], "22");
  EXPECT_EQ(body["devices"][0]["samples"][1]["timestamp"], 6);
  // Large batches are split into bounded reports, in order.
  auto split = dataReports(out.data, /*maxSamples=*/1);
  ASSERT_EQ(split.size(), 2u);
  EXPECT_EQ(Json::parse(split[1].payload)["devices"][0]["samples"][0]["value"], "22");
  EXPECT_TRUE(dataReports({}).empty());
  // A device's missing (0) or far-future timestamp becomes the edge's time of receipt.
  EXPECT_EQ(sampleTime(0, 1000), 1000);
  EXPECT_EQ(sampleTime(999, 1000), 999);
  EXPECT_EQ(sampleTime(1000 + 2 * 86'400'000LL, 1000), 1000);
  // Refused reports produce no data.
  Effects refused;
  ASSERT_FALSE(
      engine_.report("default", "thermo-1", {{"temperature", {"999", 7}}}, std::nullopt, refused)
          .isOk());
  EXPECT_TRUE(refused.data.empty());
}

TEST(CheckValueTest, TypesAndBounds) {
  PropertyModel i{
      .type = "INT", .minimum = 0.0, .maximum = 10.0, .minimumText = "0", .maximumText = "10"};
  EXPECT_EQ(checkValue(i, "5"), "");
  EXPECT_NE(checkValue(i, ""), "");
  EXPECT_NE(checkValue(i, "5x"), "");
  EXPECT_NE(checkValue(i, "99999999999999999999"), "");
  EXPECT_NE(checkValue(i, "11"), "");
  PropertyModel d{.type = "double"};
  EXPECT_EQ(checkValue(d, "-1e3"), "");
  EXPECT_NE(checkValue(d, "nan"), "");
  EXPECT_NE(checkValue(d, "inf"), "");
  PropertyModel s{.type = "STRING"};
  EXPECT_EQ(checkValue(s, "anything"), "");
  EXPECT_NE(checkValue(s, std::string(kMaxValueBytes + 1, 'x')), "");
}

}  // namespace
}  // namespace ep::edgecore::devicetwin
