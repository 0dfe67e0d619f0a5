#include "edgecore/dmi/dmi_convert.h"

#include <gtest/gtest.h>

namespace ep::edgecore::dmi {
namespace {

using Json = nlohmann::json;

TEST(DmiConvertTest, ConfigDataScalarsTravelAsWrapperTypes) {
  Json config = {{"s", "text"}, {"i", 42},   {"neg", -7}, {"d", 2.5},
                 {"b", true},   {"zero", 0}, {"e", ""},   {"obj", {{"a", 1}}}};
  v1beta1::CustomizedValue cv;
  toCustomizedValue(config, &cv);
  const auto& data = cv.data();
  EXPECT_EQ(data.at("s").type_url(), "type.googleapis.com/google.protobuf.StringValue");
  EXPECT_EQ(data.at("i").type_url(), "type.googleapis.com/google.protobuf.Int64Value");
  EXPECT_EQ(data.at("d").type_url(), "type.googleapis.com/google.protobuf.DoubleValue");
  EXPECT_EQ(data.at("b").type_url(), "type.googleapis.com/google.protobuf.BoolValue");
  EXPECT_EQ(fromAnyValue(data.at("s")), "text");
  EXPECT_EQ(fromAnyValue(data.at("i")), 42);
  EXPECT_EQ(fromAnyValue(data.at("neg")), -7);
  EXPECT_EQ(fromAnyValue(data.at("d")), 2.5);
  EXPECT_EQ(fromAnyValue(data.at("b")), true);
  EXPECT_EQ(fromAnyValue(data.at("zero")), 0);
  EXPECT_EQ(fromAnyValue(data.at("e")), "");
  EXPECT_EQ(Json::parse(fromAnyValue(data.at("obj")).get<std::string>()), config["obj"]);
  // Wire bytes as protobuf encodes the wrappers (field 1).
  EXPECT_EQ(data.at("i").value(), std::string("\x08\x2a", 2));
  EXPECT_EQ(data.at("s").value(), std::string("\x0a\x04text", 6));
  v1beta1::AnyValue junk;
  junk.set_type_url("type.googleapis.com/google.protobuf.StringValue");
  junk.set_value("\x0a\x09short");
  EXPECT_TRUE(fromAnyValue(junk).is_null());
}

TEST(DmiConvertTest, DeviceAndModelCarryKubeEdgeFields) {
  Json device = Json::parse(R"({"metadata":{"name":"thermo-1","namespace":"lab"},
    "spec":{"deviceModelRef":{"name":"thermometer"},"nodeName":"edge-1",
      "protocol":{"protocolName":"modbus","configData":{"slaveID":1,"port":"/dev/ttyS0"}},
      "properties":[{"name":"temperature","reportCycle":1000,"collectCycle":500,"reportToCloud":true,
        "desired":{"value":"20","metadata":{"type":"int"}},
        "visitors":{"protocolName":"modbus","configData":{"register":"HoldingRegister","offset":2}},
        "pushMethod":{"mqtt":{"address":"tcp://127.0.0.1:1883","topic":"t","qos":1,"retained":true},
          "dbMethod":{"influxdb2":{"influxdb2ClientConfig":{"url":"http://i","org":"o","bucket":"b"},
            "influxdb2DataConfig":{"measurement":"m","fieldKey":"f","tag":{"k":"v"}}}}}}],
      "methods":[{"name":"set","description":"d","propertyNames":["temperature"]}]},
    "status":{"twins":[{"propertyName":"temperature","reported":{"value":"21","metadata":{"timestamp":"5"}}}]}})");
  auto d = toDmiDevice(device);
  EXPECT_EQ(d.name(), "thermo-1");
  EXPECT_EQ(d.namespace_(), "lab");
  EXPECT_EQ(d.spec().devicemodelreference(), "thermometer");
  EXPECT_EQ(d.spec().protocol().protocolname(), "modbus");
  EXPECT_EQ(fromAnyValue(d.spec().protocol().configdata().data().at("slaveID")), 1);
  ASSERT_EQ(d.spec().properties_size(), 1);
  const auto& p = d.spec().properties(0);
  EXPECT_EQ(p.reportcycle(), 1000);
  EXPECT_EQ(p.collectcycle(), 500);
  EXPECT_TRUE(p.reporttocloud());
  EXPECT_EQ(p.desired().value(), "20");
  EXPECT_EQ(p.desired().metadata().at("type"), "int");
  EXPECT_EQ(fromAnyValue(p.visitors().configdata().data().at("offset")), 2);
  EXPECT_EQ(p.pushmethod().mqtt().topic(), "t");
  EXPECT_TRUE(p.pushmethod().mqtt().retained());
  EXPECT_EQ(p.pushmethod().dbmethod().influxdb2().influxdb2dataconfig().tag().at("k"), "v");
  EXPECT_EQ(d.spec().methods(0).propertynames(0), "temperature");
  EXPECT_EQ(d.status().twins(0).reported().value(), "21");
  EXPECT_EQ(deviceProtocol(device), "modbus");

  Json model = Json::parse(R"({"metadata":{"name":"thermometer","namespace":"lab"},
    "spec":{"protocol":"modbus","properties":[{"name":"temperature","type":"INT","accessMode":"ReadOnly",
      "minimum":"-40","maximum":"125","unit":"C","description":"t"}]}})");
  auto m = toDmiModel(model);
  EXPECT_EQ(m.namespace_(), "lab");
  EXPECT_EQ(m.spec().properties(0).maximum(), "125");
  EXPECT_EQ(m.spec().properties(0).unit(), "C");
  EXPECT_EQ(modelProtocol(model), "modbus");
  // Garbage shapes convert to empty fields, never a crash.
  EXPECT_EQ(toDmiDevice(Json::parse(R"({"spec":{"properties":[1,{"name":5}]}})"))
                .spec()
                .properties_size(),
            1);
}

TEST(DmiConvertTest, ReportedValuesTakeTheMappersTimestampOrNow) {
  v1beta1::DeviceStatus status;
  auto* a = status.add_twins();
  a->set_propertyname("temperature");
  a->mutable_reported()->set_value("21.5");
  (*a->mutable_reported()->mutable_metadata())["timestamp"] = "1700000000123";
  auto* b = status.add_twins();
  b->set_propertyname("setpoint");
  b->mutable_reported()->set_value("20");
  (*b->mutable_reported()->mutable_metadata())["timestamp"] = "soon";
  auto* c = status.add_twins();
  c->set_propertyname("observed-only");
  c->mutable_observeddesired()->set_value("1");
  auto values = reportedValues(status, 99);
  ASSERT_TRUE(values.isOk());
  ASSERT_EQ(values->size(), 2u);
  EXPECT_EQ((*values)[0].value.timestamp, 1700000000123);
  EXPECT_EQ((*values)[1].value.timestamp, 99);
  status.add_twins();  // no property name
  auto bad = reportedValues(status, 99);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("reportedDevice.twins[3].propertyName"), std::string::npos);
}

}  // namespace
}  // namespace ep::edgecore::dmi
