#include "common/api/validation.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/api/base64.h"
#include "common/api/label_selector.h"
#include "common/api/names.h"
#include "common/api/object_util.h"
#include "common/api/quantity.h"
#include "common/api/upgrades.h"
#include "common/api/validation_checker.h"

namespace ep::api {

using nlohmann::json;
using validation_detail::Checker;
using validation_detail::Errs;
using validation_detail::kMaxObjectDepth;
using validation_detail::serviceUpdate;

namespace validation_detail {

void Checker::validate(const KindInfo& kind, const json& obj) {
  if (!obj.is_object()) {
    add(fieldTypeInvalid("", obj, "must be a JSON object"));
    return;
  }
  objectMeta(kind, obj);
  const std::string id = kind.group + "/" + kind.kind;
  if (id == "/Pod") {
    const json* spec = object(obj, "spec", "spec");
    if (spec != nullptr) {
      podSpec(*spec, "spec", false);
    } else if (member(obj, "spec") == nullptr) {
      add(fieldRequired("spec.containers"));
    }
  } else if (id == "apps/Deployment" || id == "apps/ReplicaSet") {
    workload(kind, obj);
  } else if (id == "/ConfigMap") {
    configMapKind(obj);
  } else if (id == "/Secret") {
    secretKind(obj);
  } else if (id == "/Event") {
    eventKind(obj);
  } else if (id == "/Node") {
    nodeKind(obj);
  } else if (id == "/Namespace") {
    namespaceKind(obj);
  } else if (id == "devices.kubeedge.io/DeviceModel") {
    deviceModelKind(obj);
  } else if (id == "devices.kubeedge.io/Device") {
    deviceKind(obj);
  } else if (id == "rules.kubeedge.io/RuleEndpoint") {
    ruleEndpointKind(obj);
  } else if (id == "rules.kubeedge.io/Rule") {
    ruleKind(obj);
  } else if (id == "sedna.io/Model") {
    modelKind(obj);
  } else if (id == "operations.kubeedge.io/NodeUpgradeJob") {
    nodeUpgradeJobKind(obj);
  } else if (id == "upgrade.edgeplane.io/EdgecoreRelease") {
    edgecoreReleaseKind(obj);
  } else if (id == "/Service") {
    serviceKind(obj);
  } else if (id == "/Endpoints") {
    endpointsKind(obj);
  } else if (id == "discovery.k8s.io/EndpointSlice") {
    endpointSliceKind(obj);
  } else if (id == "coordination.k8s.io/Lease") {
    leaseKind(obj);
  }
}

}  // namespace validation_detail

namespace {

constexpr const char* kPodUpdateForbidden =
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.nodeName` (only from empty, when binding)";
constexpr const char* kImmutableWhenSet = "field is immutable when `immutable` is set";

// Copy without null members (recursively), so that "x": null compares equal to absent "x".
json withoutNulls(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_null()) out[it.key()] = withoutNulls(it.value());
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& e : v) out.push_back(withoutNulls(e));
    return out;
  }
  return v;
}

// ---- updates ----

const json& memberOrNull(const json& obj, std::string_view key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

// Copies `key` of `from` into `to` (or removes it from `to` when absent in `from`).
void copyMember(const json& from, json& to, const std::string& key) {
  if (!to.is_object()) return;
  if (from.is_object() && from.contains(key)) {
    to[key] = from[key];
  } else {
    to.erase(key);
  }
}

void podUpdate(const json& oldObj, const json& newObj, Errs& errs) {
  json a = withoutNulls(memberOrNull(oldObj, "spec"));
  json b = withoutNulls(memberOrNull(newObj, "spec"));
  if (!a.is_object() || !b.is_object()) {
    if (a != b) errs.push_back(fieldForbidden("spec", kPodUpdateForbidden));
    return;
  }

  // activeDeadlineSeconds: may be set, or lowered, never raised or removed.
  const json& oldAds = memberOrNull(a, "activeDeadlineSeconds");
  const json& newAds = memberOrNull(b, "activeDeadlineSeconds");
  if (oldAds.is_number_integer()) {
    if (newAds.is_null()) {
      errs.push_back(fieldInvalid("spec.activeDeadlineSeconds", nullptr,
                                  "must not update from a positive integer to nil value"));
    } else if (newAds.is_number_integer() && newAds.get<int64_t>() > oldAds.get<int64_t>()) {
      errs.push_back(fieldInvalid("spec.activeDeadlineSeconds", newAds,
                                  "must be less than or equal to previous value"));
    }
  }
  copyMember(a, b, "activeDeadlineSeconds");

  for (const char* list : {"containers", "initContainers"}) {
    const json& al = memberOrNull(a, list);
    auto bl = b.find(list);
    if (bl == b.end() || !al.is_array() || !bl->is_array() || al.size() != bl->size()) continue;
    for (size_t i = 0; i < al.size(); ++i) copyMember(al[i], (*bl)[i], "image");
  }

  // tolerations: existing ones must stay unchanged; new ones may be added.
  const json& oldTol = memberOrNull(a, "tolerations");
  const json& newTol = memberOrNull(b, "tolerations");
  if (oldTol.is_array()) {
    for (const auto& t : oldTol) {
      if (!newTol.is_array() || std::find(newTol.begin(), newTol.end(), t) == newTol.end()) {
        errs.push_back(fieldForbidden("spec.tolerations",
                                      "existing toleration can not be modified except its "
                                      "tolerationSeconds"));
        break;
      }
    }
  }
  copyMember(a, b, "tolerations");

  // nodeName: binding sets it once.
  if (stringAt(a, "nodeName").empty()) copyMember(a, b, "nodeName");

  if (a != b) {
    std::string changed;
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys) {
      if (memberOrNull(a, k) != memberOrNull(b, k)) {
        if (!changed.empty()) changed += ", ";
        changed += "spec." + k;
      }
    }
    errs.push_back(
        fieldForbidden("spec", std::string(kPodUpdateForbidden) + "; changed: " + changed));
  }
}

json objectOrEmpty(const json& v) {
  return v.is_object() ? withoutNulls(v) : json::object();
}

void configUpdate(bool isSecret, const json& oldObj, const json& newObj, Errs& errs) {
  if (isSecret) {
    auto typeOf = [](const json& o) {
      const json& t = memberOrNull(o, "type");
      return t.is_string() && !t.get_ref<const std::string&>().empty() ? t.get<std::string>()
                                                                       : std::string("Opaque");
    };
    if (typeOf(oldObj) != typeOf(newObj)) {
      errs.push_back(fieldInvalid("type", typeOf(newObj), "field is immutable"));
    }
  }
  if (memberOrNull(oldObj, "immutable") != true) return;
  if (memberOrNull(newObj, "immutable") != true) {
    errs.push_back(fieldForbidden("immutable", kImmutableWhenSet));
  }
  json oldData = objectOrEmpty(memberOrNull(oldObj, "data"));
  json newData = objectOrEmpty(memberOrNull(newObj, "data"));
  if (isSecret) {
    // stringData is folded into data on write; compare it in encoded form.
    json sd = objectOrEmpty(memberOrNull(newObj, "stringData"));
    for (auto it = sd.begin(); it != sd.end(); ++it) {
      if (it.value().is_string()) newData[it.key()] = base64Encode(it.value().get<std::string>());
    }
  }
  if (oldData != newData) errs.push_back(fieldForbidden("data", kImmutableWhenSet));
  if (!isSecret && objectOrEmpty(memberOrNull(oldObj, "binaryData")) !=
                       objectOrEmpty(memberOrNull(newObj, "binaryData"))) {
    errs.push_back(fieldForbidden("binaryData", kImmutableWhenSet));
  }
}

}  // namespace

std::vector<FieldError> validateObject(const KindInfo& kind, const nlohmann::json& obj) {
  Checker c;
  try {
    if (nestedDeeperThan(obj, kMaxObjectDepth)) {
      c.add(fieldInvalid("", "<object>", "object is nested too deeply"));
      return std::move(c.errs);
    }
    c.validate(kind, obj);
  } catch (const std::exception& e) {
    c.add(fieldInvalid("", nullptr, std::string("internal validation error: ") + e.what()));
  }
  return std::move(c.errs);
}

std::vector<FieldError> validateUpdate(const KindInfo& kind, const nlohmann::json& oldObj,
                                       const nlohmann::json& newObj) {
  Errs errs;
  if (nestedDeeperThan(oldObj, kMaxObjectDepth) || nestedDeeperThan(newObj, kMaxObjectDepth)) {
    errs.push_back(fieldInvalid("", "<object>", "object is nested too deeply"));
    return errs;
  }
  try {
    const std::string id = kind.group + "/" + kind.kind;
    if (id == "/Pod") {
      podUpdate(oldObj, newObj, errs);
    } else if (id == "apps/Deployment" || id == "apps/ReplicaSet") {
      json oldSel = withoutNulls(memberOrNull(memberOrNull(oldObj, "spec"), "selector"));
      json newSel = withoutNulls(memberOrNull(memberOrNull(newObj, "spec"), "selector"));
      if (oldSel != newSel)
        errs.push_back(fieldInvalid("spec.selector", newSel, "field is immutable"));
    } else if (id == "/ConfigMap" || id == "/Secret") {
      configUpdate(id == "/Secret", oldObj, newObj, errs);
    } else if (id == "/Service") {
      serviceUpdate(oldObj, newObj, errs);
    } else if (id == "discovery.k8s.io/EndpointSlice") {
      if (memberOrNull(oldObj, "addressType") != memberOrNull(newObj, "addressType")) {
        errs.push_back(
            fieldInvalid("addressType", memberOrNull(newObj, "addressType"), "field is immutable"));
      }
    } else if (id == "operations.kubeedge.io/NodeUpgradeJob") {
      // Its nodes and their progress follow from the spec it started with (docs/upgrades.md).
      if (withoutNulls(memberOrNull(oldObj, "spec")) !=
          withoutNulls(memberOrNull(newObj, "spec"))) {
        errs.push_back(fieldInvalid("spec", "<spec>",
                                    "field is immutable: delete the job and create another"));
      }
    } else if (id == "upgrade.edgeplane.io/EdgecoreRelease") {
      // A version always means the same bytes: binaries may be added, never replaced.
      const json oldSpec = memberOrNull(oldObj, "spec");
      const json newSpec = memberOrNull(newObj, "spec");
      if (memberOrNull(oldSpec, "version") != memberOrNull(newSpec, "version")) {
        errs.push_back(
            fieldInvalid("spec.version", memberOrNull(newSpec, "version"), "field is immutable"));
      }
      const auto newBins = releaseBinaries(newObj);
      for (const auto& b : releaseBinaries(oldObj)) {
        for (size_t i = 0; i < newBins.size(); ++i) {
          if (newBins[i].architecture == b.architecture && newBins[i].digest != b.digest) {
            errs.push_back(fieldInvalid("spec.binaries[" + std::to_string(i) + "].digest",
                                        newBins[i].digest,
                                        "the " + b.architecture +
                                            " binary of a release is immutable: push another "
                                            "version"));
          }
        }
      }
    }
  } catch (const std::exception& e) {
    errs.push_back(
        fieldInvalid("", nullptr, std::string("internal validation error: ") + e.what()));
  }
  return errs;
}

}  // namespace ep::api
