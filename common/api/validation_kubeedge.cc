// Validation (common/api/validation.h) of the KubeEdge kinds (devices.kubeedge.io,
// rules.kubeedge.io) and Sedna's Model (sedna.io).
// The Checker and its primitives are in validation_checker.h.

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/api/validation_checker.h"

namespace ep::api::validation_detail {

void Checker::deviceModelKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  if (spec == nullptr) return;
  string(*spec, "protocol", "spec.protocol");
  const json* props = array(*spec, "properties", "spec.properties");
  if (props == nullptr) return;
  std::set<std::string> names;
  eachObject(*props, "spec.properties", [&](const json& p, const std::string& pp) {
    uniqueName(p, pp, names);
    // devices.kubeedge.io/v1beta1 PropertyType and PropertyAccessMode enums.
    enumString(p, "type", child(pp, "type"),
               {"INT", "FLOAT", "DOUBLE", "STRING", "BOOLEAN", "BYTES", "STREAM"}, false);
    enumString(p, "accessMode", child(pp, "accessMode"), {"ReadWrite", "ReadOnly"}, false);
    for (const char* f : {"description", "minimum", "maximum", "unit"}) {
      string(p, f, child(pp, f));
    }
  });
}

void Checker::deviceKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  static const json kEmpty = json::object();
  if (spec == nullptr) {
    if (member(obj, "spec") != nullptr) return;
    spec = &kEmpty;
  }
  const json* ref = object(*spec, "deviceModelRef", "spec.deviceModelRef");
  if (ref == nullptr) {
    if (member(*spec, "deviceModelRef") == nullptr) add(fieldRequired("spec.deviceModelRef.name"));
  } else {
    requiredString(*ref, "name", "spec.deviceModelRef.name");
  }
  if (const std::string* node = string(*spec, "nodeName", "spec.nodeName");
      node != nullptr && !node->empty()) {
    dnsSubdomain(*node, "spec.nodeName");
  }
  if (const json* proto = object(*spec, "protocol", "spec.protocol")) {
    string(*proto, "protocolName", "spec.protocol.protocolName");
    object(*proto, "configData", "spec.protocol.configData");
  }
  const json* props = array(*spec, "properties", "spec.properties");
  if (props == nullptr) return;
  std::set<std::string> names;
  eachObject(*props, "spec.properties", [&](const json& p, const std::string& pp) {
    uniqueName(p, pp, names);
    if (const json* desired = object(p, "desired", child(pp, "desired"))) {
      string(*desired, "value", child(pp, "desired.value"));
      stringMap(*desired, "metadata", child(pp, "desired.metadata"));
    }
    if (const json* visitors = object(p, "visitors", child(pp, "visitors"))) {
      string(*visitors, "protocolName", child(pp, "visitors.protocolName"));
      object(*visitors, "configData", child(pp, "visitors.configData"));
    }
    intInRange(p, "reportCycle", child(pp, "reportCycle"), 0, INT64_MAX);
    intInRange(p, "collectCycle", child(pp, "collectCycle"), 0, INT64_MAX);
    boolean(p, "reportToCloud", child(pp, "reportToCloud"));
    object(p, "pushMethod", child(pp, "pushMethod"));
  });
}

void Checker::ruleEndpointKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  static const json kEmpty = json::object();
  if (spec == nullptr) {
    if (member(obj, "spec") != nullptr) return;
    spec = &kEmpty;
  }
  auto type = enumString(*spec, "ruleEndpointType", "spec.ruleEndpointType",
                         {"rest", "eventbus", "servicebus"}, true);
  const json* props = stringMap(*spec, "properties", "spec.properties");
  if (type && *type == "servicebus") {
    std::string pp = keyed("spec.properties", "service_port");
    const json* port = props != nullptr ? member(*props, "service_port") : nullptr;
    if (port == nullptr) {
      add(fieldRequired(pp, "required when ruleEndpointType is \"servicebus\""));
    } else if (port->is_string()) {
      const auto& s = port->get_ref<const std::string&>();
      bool digits = !s.empty() && s.size() <= 5 &&
                    std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || std::stoi(s) < 1 || std::stoi(s) > 65535) {
        add(fieldInvalid(pp, *port, "must be an integer between 1 and 65535"));
      }
    }
  }
}

void Checker::ruleKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  static const json kEmpty = json::object();
  if (spec == nullptr) {
    if (member(obj, "spec") != nullptr) return;
    spec = &kEmpty;
  }
  requiredString(*spec, "source", "spec.source");
  requiredString(*spec, "target", "spec.target");
  stringMap(*spec, "sourceResource", "spec.sourceResource");
  stringMap(*spec, "targetResource", "spec.targetResource");
}

void Checker::modelKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  static const json kEmpty = json::object();
  if (spec == nullptr) {
    if (member(obj, "spec") != nullptr) return;
    spec = &kEmpty;
  }
  requiredString(*spec, "url", "spec.url");
  string(*spec, "format", "spec.format");
}

}  // namespace ep::api::validation_detail
