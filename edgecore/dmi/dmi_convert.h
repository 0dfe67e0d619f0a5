#pragma once

// Cached Kubernetes objects (devices.kubeedge.io/v1beta1 JSON) to KubeEdge's DMI v1beta1
// messages, and DMI reports to twin values. Pure functions.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "dmi/api.pb.h"
#include "edgecore/devicetwin/twin_engine.h"

namespace ep::edgecore::dmi {

// Free-form configData: string, bool, integral and other numbers travel as
// google.protobuf.StringValue / BoolValue / Int64Value / DoubleValue inside Any, as KubeEdge
// packs them; objects, arrays and null as a StringValue of their JSON text.
void toCustomizedValue(const nlohmann::json& object, v1beta1::CustomizedValue* out);
// The scalar an Any carries, back as JSON (unknown types: null). For mappers and tests.
nlohmann::json fromAnyValue(const v1beta1::AnyValue& any);

v1beta1::Device toDmiDevice(const nlohmann::json& device);
v1beta1::DeviceModel toDmiModel(const nlohmann::json& model);

// The protocol a Device's mapper speaks (spec.protocol.protocolName) and a model's
// (spec.protocol).
std::string deviceProtocol(const nlohmann::json& device);
std::string modelProtocol(const nlohmann::json& model);

// A ReportDeviceStatus request's reported twins as twin values (timestamp from
// metadata.timestamp in ms when it parses, else `nowMillis`). Errors name the field.
Result<std::vector<devicetwin::TwinEngine::ReportedValue>> reportedValues(
    const v1beta1::DeviceStatus& status, int64_t nowMillis);

// Mappers of KubeEdge 1.15 send no namespace: "default".
inline std::string namespaceOrDefault(const std::string& ns) {
  return ns.empty() ? "default" : ns;
}

}  // namespace ep::edgecore::dmi
