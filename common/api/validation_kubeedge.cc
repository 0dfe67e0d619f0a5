// Validation (common/api/validation.h) of the KubeEdge kinds (devices.kubeedge.io,
// rules.kubeedge.io, operations.kubeedge.io), Sedna's Model (sedna.io) and the EdgecoreRelease
// (upgrade.edgeplane.io).
// The Checker and its primitives are in validation_checker.h.

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/api/label_selector.h"
#include "common/api/models.h"
#include "common/api/object_util.h"
#include "common/api/upgrades.h"
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

namespace ep::api::validation_detail {

void Checker::nodeUpgradeJobKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  static const json kEmpty = json::object();
  if (spec == nullptr) {
    if (member(obj, "spec") != nullptr) return;
    spec = &kEmpty;
  }
  // The version names the EdgecoreRelease the binaries come from.
  if (const std::string* v = requiredString(*spec, "version", "spec.version")) {
    dnsSubdomain(*v, "spec.version");
  }
  bool haveNames = false;
  if (const json* names = array(*spec, "nodeNames", "spec.nodeNames")) {
    std::set<std::string> seen;
    for (size_t i = 0; i < names->size(); ++i) {
      const json& n = (*names)[i];
      const std::string path = at("spec.nodeNames", i);
      if (!n.is_string()) {
        add(fieldTypeInvalid(path, n, "must be a string"));
        continue;
      }
      dnsSubdomain(n.get<std::string>(), path);
      if (!seen.insert(n.get<std::string>()).second) add(fieldDuplicate(path, n));
    }
    haveNames = !names->empty();
  }
  bool haveSelector = false;
  if (const json* sel = member(*spec, "labelSelector"); sel != nullptr && !sel->is_null()) {
    for (auto& e : validateLabelSelectorJson(*sel, "spec.labelSelector")) add(std::move(e));
    haveSelector = true;
  }
  if (haveNames == haveSelector) {
    add(fieldInvalid("spec", json::object(),
                     haveNames ? "set nodeNames or labelSelector, not both"
                               : "one of nodeNames and labelSelector is required"));
  }
  intInRange(*spec, "concurrency", "spec.concurrency", 0, kInt32Max);
  intInRange(*spec, "timeoutSeconds", "spec.timeoutSeconds", 0, kMaxUpgradeTimeoutSeconds);
  string(*spec, "image", "spec.image");
  if (const json* items = array(*spec, "checkItems", "spec.checkItems")) {
    for (size_t i = 0; i < items->size(); ++i) {
      const json& item = (*items)[i];
      const std::string path = at("spec.checkItems", i);
      if (!item.is_string()) {
        add(fieldTypeInvalid(path, item, "must be a string"));
      } else if (std::find(kUpgradeCheckItems.begin(), kUpgradeCheckItems.end(),
                           item.get<std::string>()) == kUpgradeCheckItems.end()) {
        add(fieldNotSupported(path, item, kUpgradeCheckItems));
      }
    }
  }
  if (const std::string* t = string(*spec, "failureTolerate", "spec.failureTolerate")) {
    if (!parseFailureTolerate(*t)) {
      add(fieldInvalid("spec.failureTolerate", *t, "must be a decimal number from 0 to 1"));
    }
  }
  // The Secret the image is pulled with: NAMESPACE/NAME or NAME (in kube-system).
  const auto annotations = annotationsOf(obj);
  if (auto it = annotations.find(kImagePullSecretAnnotation); it != annotations.end()) {
    const std::string path =
        std::string("metadata.annotations[") + kImagePullSecretAnnotation + "]";
    const std::string& v = it->second;
    const auto [ns, name] = imagePullSecretRef(v);
    if (!checkDns1123Label(ns).empty() || !checkDns1123Subdomain(name).empty()) {
      add(fieldInvalid(path, v, "must be NAMESPACE/NAME or NAME of a Secret"));
    }
  }
}

void Checker::edgecoreReleaseKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  static const json kEmpty = json::object();
  if (spec == nullptr) {
    if (member(obj, "spec") != nullptr) return;
    spec = &kEmpty;
  }
  if (const std::string* v = requiredString(*spec, "version", "spec.version")) {
    const std::string name = stringAt(obj, "metadata.name");
    if (!name.empty() && *v != name) {
      add(fieldInvalid("spec.version", *v,
                       "must equal metadata.name (a release is named by its "
                       "version)"));
    }
  }
  const json* bins = array(*spec, "binaries", "spec.binaries");
  if (bins == nullptr) return;
  std::set<std::string> archs;
  eachObject(*bins, "spec.binaries", [&](const json& b, const std::string& path) {
    if (const std::string* a = requiredString(b, "architecture", child(path, "architecture"))) {
      if (!archs.insert(*a).second) add(fieldDuplicate(child(path, "architecture"), *a));
    }
    if (const std::string* d = requiredString(b, "digest", child(path, "digest"))) {
      if (!isSha256Digest(*d)) {
        add(fieldInvalid(child(path, "digest"), *d,
                         "must be sha256: followed by 64 lower-case hex digits"));
      }
    }
    intInRange(b, "size", child(path, "size"), 0, INT64_MAX);
    string(b, "pushedAt", child(path, "pushedAt"));
  });
}

}  // namespace ep::api::validation_detail
