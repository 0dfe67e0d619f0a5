#pragma once

// Internal to common/api (the validation_*.cc files): the Checker that walks an object and
// collects FieldErrors, its primitives, and one method per kind, defined in the file of its
// API group. Not for use outside common/api: validation.h is the interface.

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
#include "common/api/validation.h"

namespace ep::api::validation_detail {

using nlohmann::json;
using Errs = std::vector<FieldError>;

inline constexpr size_t kMaxAnnotationsBytes = 256 * 1024;
inline constexpr size_t kMaxConfigBytes = 1024 * 1024;
inline constexpr size_t kMaxObjectDepth = 512;
inline constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

inline std::string child(std::string_view base, std::string_view name) {
  return childField(base, name);
}

inline std::string at(std::string_view base, size_t i) {
  return indexField(base, i);
}

inline std::string keyed(std::string_view base, std::string_view key) {
  return std::string(base) + "[" + std::string(key) + "]";
}

// Collects errors while walking an object. Accessors report type mismatches and return nullptr
// / nullopt for absent, null or mistyped members.
class Checker {
 public:
  Errs errs;

  void add(FieldError e) { errs.push_back(std::move(e)); }

  static const json* member(const json& obj, std::string_view key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }

  // Calls fn(item, itemPath) for each element of `list` (at `path`) that is an object and
  // reports the others as FieldValueTypeInvalid.
  template <typename Fn>
  void eachObject(const json& list, const std::string& path, Fn fn) {
    for (size_t i = 0; i < list.size(); ++i) {
      const json& item = list[i];
      std::string itemPath = at(path, i);
      if (!item.is_object()) {
        add(fieldTypeInvalid(itemPath, item, "must be an object"));
        continue;
      }
      fn(item, itemPath);
    }
  }

  // Requires item.name and reports a name already in `seen` as FieldValueDuplicate.
  void uniqueName(const json& item, const std::string& itemPath, std::set<std::string>& seen) {
    if (const std::string* n = requiredString(item, "name", child(itemPath, "name"))) {
      if (!seen.insert(*n).second) add(fieldDuplicate(child(itemPath, "name"), *n));
    }
  }

  const json* object(const json& obj, std::string_view key, const std::string& path) {
    const json* v = member(obj, key);
    if (v != nullptr && !v->is_object()) {
      add(fieldTypeInvalid(path, *v, "must be an object"));
      return nullptr;
    }
    return v;
  }

  const json* array(const json& obj, std::string_view key, const std::string& path) {
    const json* v = member(obj, key);
    if (v != nullptr && !v->is_array()) {
      add(fieldTypeInvalid(path, *v, "must be an array"));
      return nullptr;
    }
    return v;
  }

  const std::string* string(const json& obj, std::string_view key, const std::string& path) {
    const json* v = member(obj, key);
    if (v == nullptr) return nullptr;
    if (!v->is_string()) {
      add(fieldTypeInvalid(path, *v, "must be a string"));
      return nullptr;
    }
    return &v->get_ref<const std::string&>();
  }

  std::optional<int64_t> integer(const json& obj, std::string_view key, const std::string& path) {
    const json* v = member(obj, key);
    if (v == nullptr) return std::nullopt;
    return integerValue(*v, path);
  }

  std::optional<int64_t> integerValue(const json& v, const std::string& path) {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        add(fieldInvalid(path, v, "must be a 64-bit integer"));
        return std::nullopt;
      }
      return static_cast<int64_t>(v.get<uint64_t>());
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    add(fieldTypeInvalid(path, v, "must be an integer"));
    return std::nullopt;
  }

  std::optional<bool> boolean(const json& obj, std::string_view key, const std::string& path) {
    const json* v = member(obj, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      add(fieldTypeInvalid(path, *v, "must be a boolean"));
      return std::nullopt;
    }
    return v->get<bool>();
  }

  // A string that must be present and non-empty.
  const std::string* requiredString(const json& obj, std::string_view key,
                                    const std::string& path) {
    const json* v = member(obj, key);
    if (v == nullptr) {
      add(fieldRequired(path));
      return nullptr;
    }
    const std::string* s = string(obj, key, path);
    if (s != nullptr && s->empty()) {
      add(fieldRequired(path));
      return nullptr;
    }
    return s;
  }

  // An integer in [lo, hi] (when present).
  std::optional<int64_t> intInRange(const json& obj, std::string_view key, const std::string& path,
                                    int64_t lo, int64_t hi) {
    auto v = integer(obj, key, path);
    if (v && (*v < lo || *v > hi)) {
      if ((hi == kInt32Max || hi == INT64_MAX) && *v < lo) {
        add(fieldInvalid(path, *v, "must be greater than or equal to " + std::to_string(lo)));
      } else if (hi == kInt32Max || hi == INT64_MAX) {
        add(fieldInvalid(path, *v, "must be less than or equal to " + std::to_string(hi)));
      } else {
        add(fieldInvalid(path, *v,
                         "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                             ", inclusive"));
      }
      return std::nullopt;
    }
    return v;
  }

  // A string member restricted to `allowed` ("" counts as absent unless listed).
  std::optional<std::string> enumString(const json& obj, std::string_view key,
                                        const std::string& path,
                                        const std::vector<std::string>& allowed, bool required) {
    const std::string* s = string(obj, key, path);
    if (s == nullptr ||
        (s->empty() && std::find(allowed.begin(), allowed.end(), "") == allowed.end())) {
      if (required && (s != nullptr || member(obj, key) == nullptr)) add(fieldRequired(path));
      return std::nullopt;
    }
    if (std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
      std::vector<std::string> shown;
      for (const auto& a : allowed) {
        if (!a.empty()) shown.push_back(a);
      }
      std::sort(shown.begin(), shown.end());
      add(fieldNotSupported(path, *s, shown));
      return std::nullopt;
    }
    return *s;
  }

  // Each element must be a string.
  void stringArray(const json& obj, std::string_view key, const std::string& path) {
    const json* a = array(obj, key, path);
    if (a == nullptr) return;
    for (size_t i = 0; i < a->size(); ++i) {
      if (!(*a)[i].is_string()) add(fieldTypeInvalid(at(path, i), (*a)[i], "must be a string"));
    }
  }

  // A map whose values must be strings. Returns the map when it is an object.
  const json* stringMap(const json& obj, std::string_view key, const std::string& path) {
    const json* m = object(obj, key, path);
    if (m == nullptr) return nullptr;
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (!it.value().is_string()) {
        add(fieldTypeInvalid(keyed(path, it.key()), it.value(), "must be a string"));
      }
    }
    return m;
  }

  // Label-style map: keys are qualified names, values label values.
  void labelMap(const json& obj, std::string_view key, const std::string& path) {
    const json* m = stringMap(obj, key, path);
    if (m == nullptr) return;
    for (auto it = m->begin(); it != m->end(); ++it) {
      for (const auto& d : checkQualifiedName(it.key())) add(fieldInvalid(path, it.key(), d));
      if (it.value().is_string()) {
        for (const auto& d : checkLabelValue(it.value().get_ref<const std::string&>())) {
          add(fieldInvalid(path, it.value(), d));
        }
      }
    }
  }

  void dnsLabel(const std::string& value, const std::string& path) {
    for (const auto& d : checkDns1123Label(value)) add(fieldInvalid(path, value, d));
  }

  void dnsSubdomain(const std::string& value, const std::string& path) {
    for (const auto& d : checkDns1123Subdomain(value)) add(fieldInvalid(path, value, d));
  }

  void pathSegment(const std::string& value, const std::string& path) {
    if (value == "." || value == "..") {
      add(fieldInvalid(path, value, "may not be '" + value + "'"));
    } else if (value.find('/') != std::string::npos) {
      add(fieldInvalid(path, value, "may not contain '/'"));
    } else if (value.find('%') != std::string::npos) {
      add(fieldInvalid(path, value, "may not contain '%'"));
    } else if (value.size() > 253) {
      add(fieldInvalid(path, value, "must be no more than 253 characters"));
    }
  }

  // ---- metadata ----
  void objectMeta(const KindInfo& kind, const json& obj);

  // ---- quantities ----
  // Validates a quantity member; returns its value in millis (cpu) or units.
  std::optional<int64_t> quantity(const json& v, const std::string& path, bool milli);

  void resources(const json& container, const std::string& path);

  // ---- pod spec ----
  void port(const json& parent, std::string_view key, const std::string& path, bool required);

  void probe(const json& container, std::string_view key, const std::string& path,
             bool isLiveOrStartup);

  void envVars(const json& container, const std::string& path);

  void envFrom(const json& container, const std::string& path);

  void containerPorts(const json& container, const std::string& path);

  void volumeMounts(const json& container, const std::string& path,
                    const std::set<std::string>& volumes);

  void container(const json& c, const std::string& path, const std::set<std::string>& volumes,
                 bool isInit);

  std::set<std::string> volumes(const json& spec, const std::string& path);

  void tolerations(const json& spec, const std::string& path);

  // `isTemplate`: a pod template of a Deployment/ReplicaSet (restartPolicy must be Always,
  // activeDeadlineSeconds is refused).
  void podSpec(const json& spec, const std::string& path, bool isTemplate);

  // ---- workloads ----
  void intOrPercent(const json& v, const std::string& path, bool capAt100);

  static bool isZeroIntOrPercent(const json* v);

  void workload(const KindInfo& kind, const json& obj);

  // ---- config ----
  // Validates data-style maps; returns the total payload size in bytes.
  size_t configMap(const json& obj, std::string_view key, bool base64Values);

  void configMapKind(const json& obj);

  void secretKind(const json& obj);

  // ---- other kinds ----
  void eventKind(const json& obj);

  void nodeKind(const json& obj);

  void namespaceKind(const json& obj);

  void leaseKind(const json& obj);

  void deviceModelKind(const json& obj);

  void deviceKind(const json& obj);

  void ruleEndpointKind(const json& obj);

  void ruleKind(const json& obj);

  void modelKind(const json& obj);
  // operations.kubeedge.io NodeUpgradeJob, upgrade.edgeplane.io EdgecoreRelease
  // (validation_kubeedge.cc).
  void nodeUpgradeJobKind(const json& obj);
  void edgecoreReleaseKind(const json& obj);

  // ---- services (validation_network.cc) ----
  void serviceKind(const json& obj);

  void endpointsKind(const json& obj);

  void endpointSliceKind(const json& obj);

  // ---- dispatch ----
  // Checks `obj` as a `kind`: metadata, then the kind's own fields (validation.cc).
  void validate(const KindInfo& kind, const json& obj);
};

// The update rules of a Service (validation_network.cc): the cluster IP never changes.
void serviceUpdate(const json& oldObj, const json& newObj, Errs& errs);

}  // namespace ep::api::validation_detail
