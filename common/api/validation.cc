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

namespace ep::api {
namespace {

using nlohmann::json;
using Errs = std::vector<FieldError>;

constexpr size_t kMaxAnnotationsBytes = 256 * 1024;
constexpr size_t kMaxConfigBytes = 1024 * 1024;
constexpr size_t kMaxObjectDepth = 512;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

constexpr const char* kPodUpdateForbidden =
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.nodeName` (only from empty, when binding)";
constexpr const char* kImmutableWhenSet = "field is immutable when `immutable` is set";

std::string child(std::string_view base, std::string_view name) {
  return childField(base, name);
}

std::string at(std::string_view base, size_t i) {
  return indexField(base, i);
}

std::string keyed(std::string_view base, std::string_view key) {
  return std::string(base) + "[" + std::string(key) + "]";
}

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

  void objectMeta(const KindInfo& kind, const json& obj) {
    const json* meta = object(obj, "metadata", "metadata");
    static const json kEmpty = json::object();
    if (meta == nullptr) meta = &kEmpty;
    const json* name = member(*meta, "name");
    if (name == nullptr || (name->is_string() && name->get_ref<const std::string&>().empty())) {
      add(fieldRequired("metadata.name", "name or generateName is required"));
    } else if (const std::string* n = string(*meta, "name", "metadata.name")) {
      if (kind.kind == "Namespace" && kind.group.empty()) {
        dnsLabel(*n, "metadata.name");
      } else if (kind.group == "rbac.authorization.k8s.io") {
        // RBAC names are path segments, as in Kubernetes ("system:discovery").
        pathSegment(*n, "metadata.name");
      } else {
        dnsSubdomain(*n, "metadata.name");
      }
    }
    if (const std::string* ns = string(*meta, "namespace", "metadata.namespace")) {
      if (!ns->empty()) dnsLabel(*ns, "metadata.namespace");
    }
    string(*meta, "generateName", "metadata.generateName");
    string(*meta, "uid", "metadata.uid");
    string(*meta, "resourceVersion", "metadata.resourceVersion");
    string(*meta, "creationTimestamp", "metadata.creationTimestamp");
    string(*meta, "deletionTimestamp", "metadata.deletionTimestamp");
    intInRange(*meta, "generation", "metadata.generation", 0, INT64_MAX);
    integer(*meta, "deletionGracePeriodSeconds", "metadata.deletionGracePeriodSeconds");
    labelMap(*meta, "labels", "metadata.labels");

    if (const json* ann = stringMap(*meta, "annotations", "metadata.annotations")) {
      size_t total = 0;
      for (auto it = ann->begin(); it != ann->end(); ++it) {
        std::string lower = it.key();
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        for (const auto& d : checkQualifiedName(lower)) {
          add(fieldInvalid("metadata.annotations", it.key(), d));
        }
        total += it.key().size();
        if (it.value().is_string()) total += it.value().get_ref<const std::string&>().size();
      }
      if (total > kMaxAnnotationsBytes)
        add(fieldTooLong("metadata.annotations", kMaxAnnotationsBytes));
    }

    if (const json* fins = array(*meta, "finalizers", "metadata.finalizers")) {
      for (size_t i = 0; i < fins->size(); ++i) {
        const json& f = (*fins)[i];
        std::string p = at("metadata.finalizers", i);
        if (!f.is_string()) {
          add(fieldTypeInvalid(p, f, "must be a string"));
          continue;
        }
        for (const auto& d : checkQualifiedName(f.get_ref<const std::string&>())) {
          add(fieldInvalid(p, f, d));
        }
      }
    }

    if (const json* refs = array(*meta, "ownerReferences", "metadata.ownerReferences")) {
      for (size_t i = 0; i < refs->size(); ++i) {
        const json& r = (*refs)[i];
        std::string p = at("metadata.ownerReferences", i);
        if (!r.is_object()) {
          add(fieldTypeInvalid(p, r, "must be an object"));
          continue;
        }
        for (const char* f : {"apiVersion", "kind", "name", "uid"})
          requiredString(r, f, child(p, f));
        boolean(r, "controller", child(p, "controller"));
        boolean(r, "blockOwnerDeletion", child(p, "blockOwnerDeletion"));
      }
    }
  }

  // ---- quantities ----

  // Validates a quantity member; returns its value in millis (cpu) or units.
  std::optional<int64_t> quantity(const json& v, const std::string& path, bool milli) {
    if (!v.is_string() && !v.is_number()) {
      add(fieldTypeInvalid(path, v, "must be a quantity string or number"));
      return std::nullopt;
    }
    auto r = quantityOf(v, milli);
    if (!r.isOk()) {
      std::string msg = r.status().message();
      auto colon = msg.find("\": ");
      add(fieldInvalid(path, v, colon == std::string::npos ? msg : msg.substr(colon + 3)));
      return std::nullopt;
    }
    if (*r < 0) {
      add(fieldInvalid(path, v, "must be greater than or equal to 0"));
      return std::nullopt;
    }
    return *r;
  }

  void resources(const json& container, const std::string& path) {
    const json* res = object(container, "resources", path);
    if (res == nullptr) return;
    std::map<std::string, std::pair<int64_t, std::string>> limits;
    for (const char* section : {"limits", "requests"}) {
      std::string sp = child(path, section);
      const json* m = object(*res, section, sp);
      if (m == nullptr) continue;
      bool isRequests = std::string_view(section) == "requests";
      for (auto it = m->begin(); it != m->end(); ++it) {
        std::string rp = keyed(sp, it.key());
        for (const auto& d : checkQualifiedName(it.key())) add(fieldInvalid(rp, it.key(), d));
        auto q = quantity(it.value(), rp, it.key() == "cpu");
        if (!q) continue;
        std::string shown =
            it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
        if (!isRequests) {
          limits[it.key()] = {*q, shown};
        } else if (auto l = limits.find(it.key()); l != limits.end() && *q > l->second.first) {
          add(fieldInvalid(
              sp, shown,
              "must be less than or equal to " + it.key() + " limit of " + l->second.second));
        }
      }
    }
  }

  // ---- pod spec ----

  void port(const json& parent, std::string_view key, const std::string& path, bool required) {
    const json* v = member(parent, key);
    if (v == nullptr) {
      if (required) add(fieldRequired(path));
      return;
    }
    if (v->is_string()) {
      for (const auto& d : checkPortName(v->get_ref<const std::string&>())) {
        add(fieldInvalid(path, *v, d));
      }
      return;
    }
    auto n = integerValue(*v, path);
    if (n && (*n < 1 || *n > 65535)) {
      add(fieldInvalid(path, *n, "must be between 1 and 65535, inclusive"));
    }
  }

  void probe(const json& container, std::string_view key, const std::string& path,
             bool isLiveOrStartup) {
    const json* p = object(container, key, path);
    if (p == nullptr) return;
    int handlers = 0;
    for (const char* h : {"exec", "httpGet", "tcpSocket", "grpc"}) {
      std::string hp = child(path, h);
      const json* hv = object(*p, h, hp);
      if (hv == nullptr) continue;
      if (++handlers > 1) {
        add(fieldForbidden(hp, "may not specify more than 1 handler type"));
        continue;
      }
      std::string_view hn(h);
      if (hn == "exec") {
        stringArray(*hv, "command", child(hp, "command"));
      } else if (hn == "httpGet") {
        port(*hv, "port", child(hp, "port"), true);
        string(*hv, "path", child(hp, "path"));
        string(*hv, "host", child(hp, "host"));
        enumString(*hv, "scheme", child(hp, "scheme"), {"HTTP", "HTTPS"}, false);
      } else if (hn == "tcpSocket") {
        port(*hv, "port", child(hp, "port"), true);
      } else {
        auto n = integer(*hv, "port", child(hp, "port"));
        if (member(*hv, "port") == nullptr) {
          add(fieldRequired(child(hp, "port")));
        } else if (n && (*n < 1 || *n > 65535)) {
          add(fieldInvalid(child(hp, "port"), *n, "must be between 1 and 65535, inclusive"));
        }
      }
    }
    if (handlers == 0) add(fieldRequired(path, "must specify a handler type"));
    for (const char* f :
         {"initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
          "failureThreshold", "terminationGracePeriodSeconds"}) {
      intInRange(*p, f, child(path, f), 0, kInt32Max);
    }
    if (isLiveOrStartup) {
      const json* st = member(*p, "successThreshold");
      if (st != nullptr && st->is_number_integer() && *st != 1) {
        add(fieldInvalid(child(path, "successThreshold"), *st, "must be 1"));
      }
    }
  }

  void envVars(const json& container, const std::string& path) {
    const json* env = array(container, "env", child(path, "env"));
    if (env == nullptr) return;
    for (size_t i = 0; i < env->size(); ++i) {
      const json& e = (*env)[i];
      std::string ep = at(child(path, "env"), i);
      if (!e.is_object()) {
        add(fieldTypeInvalid(ep, e, "must be an object"));
        continue;
      }
      if (const std::string* n = requiredString(e, "name", child(ep, "name"))) {
        for (const auto& d : checkEnvVarName(*n)) add(fieldInvalid(child(ep, "name"), *n, d));
      }
      const std::string* value = string(e, "value", child(ep, "value"));
      std::string vfp = child(ep, "valueFrom");
      const json* vf = object(e, "valueFrom", vfp);
      if (vf == nullptr) continue;
      int sources = 0;
      if (const json* r = object(*vf, "configMapKeyRef", child(vfp, "configMapKeyRef"))) {
        ++sources;
        std::string rp = child(vfp, "configMapKeyRef");
        if (const std::string* k = requiredString(*r, "key", child(rp, "key"))) {
          for (const auto& d : checkConfigKey(*k)) add(fieldInvalid(child(rp, "key"), *k, d));
        }
        string(*r, "name", child(rp, "name"));
        boolean(*r, "optional", child(rp, "optional"));
      }
      if (const json* r = object(*vf, "secretKeyRef", child(vfp, "secretKeyRef"))) {
        ++sources;
        std::string rp = child(vfp, "secretKeyRef");
        if (const std::string* k = requiredString(*r, "key", child(rp, "key"))) {
          for (const auto& d : checkConfigKey(*k)) add(fieldInvalid(child(rp, "key"), *k, d));
        }
        string(*r, "name", child(rp, "name"));
        boolean(*r, "optional", child(rp, "optional"));
      }
      if (const json* r = object(*vf, "fieldRef", child(vfp, "fieldRef"))) {
        ++sources;
        requiredString(*r, "fieldPath", child(vfp, "fieldRef.fieldPath"));
        string(*r, "apiVersion", child(vfp, "fieldRef.apiVersion"));
      }
      if (const json* r = object(*vf, "resourceFieldRef", child(vfp, "resourceFieldRef"))) {
        ++sources;
        requiredString(*r, "resource", child(vfp, "resourceFieldRef.resource"));
        string(*r, "containerName", child(vfp, "resourceFieldRef.containerName"));
      }
      if (sources == 0) {
        add(fieldInvalid(vfp, "",
                         "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                         "or `secretKeyRef`"));
      } else if (sources > 1) {
        add(fieldInvalid(vfp, "", "may not have more than one field specified at a time"));
      }
      if (value != nullptr && !value->empty()) {
        add(fieldInvalid(vfp, "", "may not be specified when `value` is not empty"));
      }
    }
  }

  void envFrom(const json& container, const std::string& path) {
    std::string base = child(path, "envFrom");
    const json* list = array(container, "envFrom", base);
    if (list == nullptr) return;
    for (size_t i = 0; i < list->size(); ++i) {
      const json& e = (*list)[i];
      std::string ep = at(base, i);
      if (!e.is_object()) {
        add(fieldTypeInvalid(ep, e, "must be an object"));
        continue;
      }
      string(e, "prefix", child(ep, "prefix"));
      int sources = 0;
      for (const char* s : {"configMapRef", "secretRef"}) {
        if (const json* r = object(e, s, child(ep, s))) {
          ++sources;
          requiredString(*r, "name", child(child(ep, s), "name"));
        }
      }
      if (sources == 0) {
        add(fieldInvalid(ep, "", "must specify one of: `configMapRef` or `secretRef`"));
      } else if (sources > 1) {
        add(fieldInvalid(ep, "", "may not have more than one field specified at a time"));
      }
    }
  }

  void containerPorts(const json& container, const std::string& path) {
    std::string base = child(path, "ports");
    const json* ports = array(container, "ports", base);
    if (ports == nullptr) return;
    std::set<std::string> names;
    for (size_t i = 0; i < ports->size(); ++i) {
      const json& p = (*ports)[i];
      std::string pp = at(base, i);
      if (!p.is_object()) {
        add(fieldTypeInvalid(pp, p, "must be an object"));
        continue;
      }
      if (member(p, "containerPort") == nullptr) {
        add(fieldRequired(child(pp, "containerPort")));
      } else {
        intInRange(p, "containerPort", child(pp, "containerPort"), 1, 65535);
      }
      if (auto hp = integer(p, "hostPort", child(pp, "hostPort")); hp && (*hp < 0 || *hp > 65535)) {
        add(fieldInvalid(child(pp, "hostPort"), *hp, "must be between 0 and 65535, inclusive"));
      }
      enumString(p, "protocol", child(pp, "protocol"), {"TCP", "UDP", "SCTP"}, false);
      string(p, "hostIP", child(pp, "hostIP"));
      if (const std::string* n = string(p, "name", child(pp, "name"));
          n != nullptr && !n->empty()) {
        for (const auto& d : checkPortName(*n)) add(fieldInvalid(child(pp, "name"), *n, d));
        if (!names.insert(*n).second) add(fieldDuplicate(child(pp, "name"), *n));
      }
    }
  }

  void volumeMounts(const json& container, const std::string& path,
                    const std::set<std::string>& volumes) {
    std::string base = child(path, "volumeMounts");
    const json* mounts = array(container, "volumeMounts", base);
    if (mounts == nullptr) return;
    std::set<std::string> paths;
    for (size_t i = 0; i < mounts->size(); ++i) {
      const json& m = (*mounts)[i];
      std::string mp = at(base, i);
      if (!m.is_object()) {
        add(fieldTypeInvalid(mp, m, "must be an object"));
        continue;
      }
      if (const std::string* n = requiredString(m, "name", child(mp, "name"))) {
        if (volumes.count(*n) == 0) add(fieldNotFound(child(mp, "name"), *n));
      }
      if (const std::string* p = requiredString(m, "mountPath", child(mp, "mountPath"))) {
        if (!paths.insert(*p).second)
          add(fieldInvalid(child(mp, "mountPath"), *p, "must be unique"));
      }
      boolean(m, "readOnly", child(mp, "readOnly"));
      if (const std::string* sp = string(m, "subPath", child(mp, "subPath"))) {
        if (!sp->empty() && sp->front() == '/') {
          add(fieldInvalid(child(mp, "subPath"), *sp, "must be a relative path"));
        } else if (*sp == ".." || sp->find("../") == 0 || sp->find("/../") != std::string::npos ||
                   (sp->size() >= 3 && sp->compare(sp->size() - 3, 3, "/..") == 0)) {
          add(fieldInvalid(child(mp, "subPath"), *sp, "must not contain '..'"));
        }
      }
    }
  }

  void container(const json& c, const std::string& path, const std::set<std::string>& volumes,
                 bool isInit) {
    const std::string* name = requiredString(c, "name", child(path, "name"));
    if (name != nullptr) dnsLabel(*name, child(path, "name"));
    if (const std::string* image = requiredString(c, "image", child(path, "image"))) {
      if (image->front() == ' ' || image->back() == ' ') {
        add(fieldInvalid(child(path, "image"), *image,
                         "must not have leading or trailing whitespace"));
      }
    }
    stringArray(c, "command", child(path, "command"));
    stringArray(c, "args", child(path, "args"));
    string(c, "workingDir", child(path, "workingDir"));
    envVars(c, path);
    envFrom(c, path);
    containerPorts(c, path);
    volumeMounts(c, path, volumes);
    resources(c, child(path, "resources"));
    enumString(c, "imagePullPolicy", child(path, "imagePullPolicy"),
               {"Always", "IfNotPresent", "Never"}, false);
    enumString(c, "terminationMessagePolicy", child(path, "terminationMessagePolicy"),
               {"File", "FallbackToLogsOnError"}, false);
    string(c, "terminationMessagePath", child(path, "terminationMessagePath"));
    for (const char* f : {"stdin", "stdinOnce", "tty"}) boolean(c, f, child(path, f));
    object(c, "securityContext", child(path, "securityContext"));
    object(c, "lifecycle", child(path, "lifecycle"));

    bool sidecar = false;
    if (const std::string* rp = string(c, "restartPolicy", child(path, "restartPolicy"))) {
      if (!isInit) {
        add(fieldForbidden(child(path, "restartPolicy"), "may not be set for non-init containers"));
      } else if (*rp != "Always") {
        add(fieldNotSupported(child(path, "restartPolicy"), *rp, {"Always"}));
      } else {
        sidecar = true;
      }
    }
    for (const char* p : {"livenessProbe", "readinessProbe", "startupProbe"}) {
      if (isInit && !sidecar && member(c, p) != nullptr) {
        add(fieldForbidden(child(path, p),
                           "may not be set for init containers without restartPolicy=Always"));
        continue;
      }
      probe(c, p, child(path, p), std::string_view(p) != "readinessProbe");
    }
  }

  std::set<std::string> volumes(const json& spec, const std::string& path) {
    std::set<std::string> names;
    std::string base = child(path, "volumes");
    const json* vols = array(spec, "volumes", base);
    if (vols == nullptr) return names;
    for (size_t i = 0; i < vols->size(); ++i) {
      const json& v = (*vols)[i];
      std::string vp = at(base, i);
      if (!v.is_object()) {
        add(fieldTypeInvalid(vp, v, "must be an object"));
        continue;
      }
      if (const std::string* n = requiredString(v, "name", child(vp, "name"))) {
        dnsLabel(*n, child(vp, "name"));
        if (!names.insert(*n).second) add(fieldDuplicate(child(vp, "name"), *n));
      }
      int sources = 0;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it.key() == "name" || it.value().is_null()) continue;
        std::string sp = child(vp, it.key());
        if (++sources > 1) {
          add(fieldForbidden(sp, "may not specify more than 1 volume type"));
          continue;
        }
        if (!it.value().is_object()) {
          add(fieldTypeInvalid(sp, it.value(), "must be an object"));
          continue;
        }
        const json& src = it.value();
        const std::string& type = it.key();
        if (type == "configMap") {
          requiredString(src, "name", child(sp, "name"));
        } else if (type == "secret") {
          requiredString(src, "secretName", child(sp, "secretName"));
        } else if (type == "hostPath") {
          requiredString(src, "path", child(sp, "path"));
          string(src, "type", child(sp, "type"));
        } else if (type == "persistentVolumeClaim") {
          requiredString(src, "claimName", child(sp, "claimName"));
          boolean(src, "readOnly", child(sp, "readOnly"));
        } else if (type == "emptyDir") {
          enumString(src, "medium", child(sp, "medium"), {"", "Memory", "HugePages"}, false);
          if (const json* sl = member(src, "sizeLimit"))
            quantity(*sl, child(sp, "sizeLimit"), false);
        }
      }
      if (sources == 0) add(fieldRequired(vp, "must specify a volume type"));
    }
    return names;
  }

  void tolerations(const json& spec, const std::string& path) {
    std::string base = child(path, "tolerations");
    const json* list = array(spec, "tolerations", base);
    if (list == nullptr) return;
    for (size_t i = 0; i < list->size(); ++i) {
      const json& t = (*list)[i];
      std::string tp = at(base, i);
      if (!t.is_object()) {
        add(fieldTypeInvalid(tp, t, "must be an object"));
        continue;
      }
      const std::string* key = string(t, "key", child(tp, "key"));
      if (key != nullptr && !key->empty()) {
        for (const auto& d : checkQualifiedName(*key)) add(fieldInvalid(child(tp, "key"), *key, d));
      }
      auto op = enumString(t, "operator", child(tp, "operator"), {"", "Equal", "Exists"}, false);
      const std::string* value = string(t, "value", child(tp, "value"));
      bool opValid = op.has_value() || member(t, "operator") == nullptr;
      std::string opName = op.value_or("");
      if (opName.empty()) opName = "Equal";
      if (opValid && (key == nullptr || key->empty()) && opName != "Exists") {
        add(fieldInvalid(child(tp, "operator"), opName,
                         "operator must be Exists when `key` is empty, which means \"match all "
                         "values and all keys\""));
      }
      if (opValid && opName == "Exists" && value != nullptr && !value->empty()) {
        add(fieldInvalid(child(tp, "operator"), *value,
                         "value must be empty when `operator` is 'Exists'"));
      }
      if (opValid && opName == "Equal" && value != nullptr) {
        for (const auto& d : checkLabelValue(*value))
          add(fieldInvalid(child(tp, "value"), *value, d));
      }
      auto effect = enumString(t, "effect", child(tp, "effect"),
                               {"", "NoSchedule", "PreferNoSchedule", "NoExecute"}, false);
      if (integer(t, "tolerationSeconds", child(tp, "tolerationSeconds")).has_value() &&
          effect.has_value() && *effect != "NoExecute") {
        add(fieldInvalid(child(tp, "effect"), *effect,
                         "effect must be 'NoExecute' when `tolerationSeconds` is set"));
      }
    }
  }

  // `isTemplate`: a pod template of a Deployment/ReplicaSet (restartPolicy must be Always,
  // activeDeadlineSeconds is refused).
  void podSpec(const json& spec, const std::string& path, bool isTemplate) {
    std::set<std::string> volumeNames = volumes(spec, path);

    std::set<std::string> containerNames;
    auto containerList = [&](std::string_view key, bool isInit) {
      std::string base = child(path, key);
      const json* list = array(spec, key, base);
      if (list == nullptr) {
        if (!isInit && member(spec, key) == nullptr) add(fieldRequired(base));
        return;
      }
      if (!isInit && list->empty()) add(fieldRequired(base));
      for (size_t i = 0; i < list->size(); ++i) {
        const json& c = (*list)[i];
        std::string cp = at(base, i);
        if (!c.is_object()) {
          add(fieldTypeInvalid(cp, c, "must be an object"));
          continue;
        }
        container(c, cp, volumeNames, isInit);
        const json* n = member(c, "name");
        if (n != nullptr && n->is_string() && !n->get_ref<const std::string&>().empty() &&
            !containerNames.insert(n->get<std::string>()).second) {
          add(fieldDuplicate(child(cp, "name"), *n));
        }
      }
    };
    containerList("containers", false);
    containerList("initContainers", true);
    array(spec, "ephemeralContainers", child(path, "ephemeralContainers"));

    if (isTemplate) {
      if (const std::string* rp = string(spec, "restartPolicy", child(path, "restartPolicy"))) {
        if (*rp != "Always") add(fieldNotSupported(child(path, "restartPolicy"), *rp, {"Always"}));
      }
      if (const json* ads = member(spec, "activeDeadlineSeconds")) {
        add(fieldInvalid(child(path, "activeDeadlineSeconds"), *ads,
                         "activeDeadlineSeconds in ReplicaSet is not Supported"));
      }
    } else {
      enumString(spec, "restartPolicy", child(path, "restartPolicy"),
                 {"Always", "OnFailure", "Never"}, false);
      intInRange(spec, "activeDeadlineSeconds", child(path, "activeDeadlineSeconds"), 1, kInt32Max);
    }
    labelMap(spec, "nodeSelector", child(path, "nodeSelector"));
    for (const char* f : {"nodeName", "serviceAccountName", "schedulerName"}) {
      if (const std::string* s = string(spec, f, child(path, f)); s != nullptr && !s->empty()) {
        dnsSubdomain(*s, child(path, f));
      }
    }
    for (const char* f : {"hostname", "subdomain"}) {
      if (const std::string* s = string(spec, f, child(path, f)); s != nullptr && !s->empty()) {
        dnsLabel(*s, child(path, f));
      }
    }
    string(spec, "serviceAccount", child(path, "serviceAccount"));
    string(spec, "priorityClassName", child(path, "priorityClassName"));
    string(spec, "runtimeClassName", child(path, "runtimeClassName"));
    integer(spec, "priority", child(path, "priority"));
    intInRange(spec, "terminationGracePeriodSeconds", child(path, "terminationGracePeriodSeconds"),
               0, INT64_MAX);
    for (const char* f : {"hostNetwork", "hostPID", "hostIPC", "automountServiceAccountToken",
                          "shareProcessNamespace", "enableServiceLinks"}) {
      boolean(spec, f, child(path, f));
    }
    enumString(spec, "dnsPolicy", child(path, "dnsPolicy"),
               {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"}, false);
    tolerations(spec, path);
    object(spec, "affinity", child(path, "affinity"));
    object(spec, "securityContext", child(path, "securityContext"));
    if (const json* ips = array(spec, "imagePullSecrets", child(path, "imagePullSecrets"))) {
      for (size_t i = 0; i < ips->size(); ++i) {
        std::string ip = at(child(path, "imagePullSecrets"), i);
        if (!(*ips)[i].is_object()) {
          add(fieldTypeInvalid(ip, (*ips)[i], "must be an object"));
          continue;
        }
        string((*ips)[i], "name", child(ip, "name"));
      }
    }
    if (const json* gates = array(spec, "readinessGates", child(path, "readinessGates"))) {
      for (size_t i = 0; i < gates->size(); ++i) {
        std::string gp = at(child(path, "readinessGates"), i);
        if (!(*gates)[i].is_object()) {
          add(fieldTypeInvalid(gp, (*gates)[i], "must be an object"));
          continue;
        }
        requiredString((*gates)[i], "conditionType", child(gp, "conditionType"));
      }
    }
  }

  // ---- workloads ----

  void intOrPercent(const json& v, const std::string& path, bool capAt100) {
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      bool ok = s.size() >= 2 && s.back() == '%' &&
                std::all_of(s.begin(), s.end() - 1, [](char c) { return c >= '0' && c <= '9'; });
      if (!ok) {
        add(fieldInvalid(path, v,
                         "a valid percent string must be a numeric string followed by an ending "
                         "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
        return;
      }
      std::string digits = s.substr(0, s.size() - 1);
      digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
      if (capAt100 && (digits.size() > 3 || (!digits.empty() && std::stoi(digits) > 100))) {
        add(fieldInvalid(path, v, "must not be greater than 100%"));
      }
      return;
    }
    if (v.is_number_integer()) {
      if (!v.is_number_unsigned() && v.get<int64_t>() < 0) {
        add(fieldInvalid(path, v, "must be greater than or equal to 0"));
      }
      return;
    }
    add(fieldTypeInvalid(path, v, "must be an integer or a percentage string"));
  }

  static bool isZeroIntOrPercent(const json* v) {
    if (v == nullptr) return false;
    if (v->is_number_integer()) return *v == 0;
    if (v->is_string()) {
      const auto& s = v->get_ref<const std::string&>();
      return !s.empty() && s.back() == '%' && s.find_first_not_of('0') == s.size() - 1;
    }
    return false;
  }

  void workload(const KindInfo& kind, const json& obj) {
    bool isDeployment = kind.kind == "Deployment";
    const json* spec = object(obj, "spec", "spec");
    if (spec == nullptr) {
      if (Checker::member(obj, "spec") == nullptr) add(fieldRequired("spec"));
      return;
    }
    intInRange(*spec, "replicas", "spec.replicas", 0, kInt32Max);
    auto minReady = intInRange(*spec, "minReadySeconds", "spec.minReadySeconds", 0, kInt32Max);

    std::optional<LabelSelector> selector;
    const json* sel = member(*spec, "selector");
    if (sel == nullptr) {
      add(fieldRequired("spec.selector"));
    } else {
      Errs selErrs = validateLabelSelectorJson(*sel, "spec.selector");
      if (selErrs.empty()) {
        auto parsed = labelSelectorFromJson(*sel, "spec.selector");
        if (parsed.isOk() && parsed->empty()) {
          add(fieldInvalid("spec.selector", *sel,
                           std::string("empty selector is invalid for ") +
                               (isDeployment ? "deployment" : "replicaset")));
        } else if (parsed.isOk()) {
          selector = *parsed;
        }
      }
      errs.insert(errs.end(), selErrs.begin(), selErrs.end());
    }

    const json* tmpl = object(*spec, "template", "spec.template");
    if (tmpl == nullptr) {
      if (member(*spec, "template") == nullptr) add(fieldRequired("spec.template"));
    } else {
      static const json kEmpty = json::object();
      const json* tmeta = object(*tmpl, "metadata", "spec.template.metadata");
      if (tmeta != nullptr) {
        labelMap(*tmeta, "labels", "spec.template.metadata.labels");
        stringMap(*tmeta, "annotations", "spec.template.metadata.annotations");
      }
      if (selector) {
        std::map<std::string, std::string> labels = labelsOf(*tmpl);
        if (!selector->matches(labels)) {
          const json* tl = tmeta != nullptr ? member(*tmeta, "labels") : nullptr;
          json shown = tl != nullptr ? *tl : json::object();
          add(fieldInvalid("spec.template.metadata.labels", shown,
                           "`selector` does not match template `labels`"));
        }
      }
      const json* tspec = object(*tmpl, "spec", "spec.template.spec");
      if (tspec == nullptr && member(*tmpl, "spec") != nullptr) {
        // type error already reported
      } else {
        podSpec(tspec != nullptr ? *tspec : kEmpty, "spec.template.spec", true);
      }
    }

    if (!isDeployment) return;
    intInRange(*spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", 0, kInt32Max);
    if (auto pd = intInRange(*spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds", 0,
                             kInt32Max)) {
      if (minReady && *pd <= *minReady) {
        add(fieldInvalid("spec.progressDeadlineSeconds", *pd,
                         "must be greater than minReadySeconds"));
      }
    }
    boolean(*spec, "paused", "spec.paused");
    const json* strategy = object(*spec, "strategy", "spec.strategy");
    if (strategy == nullptr) return;
    auto type =
        enumString(*strategy, "type", "spec.strategy.type", {"Recreate", "RollingUpdate"}, false);
    const json* ru = object(*strategy, "rollingUpdate", "spec.strategy.rollingUpdate");
    if (ru == nullptr) return;
    if (type && *type == "Recreate") {
      add(fieldForbidden("spec.strategy.rollingUpdate",
                         "may not be specified when strategy `type` is 'Recreate'"));
      return;
    }
    const json* mu = member(*ru, "maxUnavailable");
    const json* ms = member(*ru, "maxSurge");
    if (mu != nullptr) intOrPercent(*mu, "spec.strategy.rollingUpdate.maxUnavailable", true);
    if (ms != nullptr) intOrPercent(*ms, "spec.strategy.rollingUpdate.maxSurge", false);
    if (isZeroIntOrPercent(mu) && isZeroIntOrPercent(ms)) {
      add(fieldInvalid("spec.strategy.rollingUpdate.maxUnavailable", *mu,
                       "may not be 0 when `maxSurge` is 0"));
    }
  }

  // ---- config ----

  // Validates data-style maps; returns the total payload size in bytes.
  size_t configMap(const json& obj, std::string_view key, bool base64Values) {
    std::string base(key);
    const json* m = object(obj, key, base);
    if (m == nullptr) return 0;
    size_t total = 0;
    for (auto it = m->begin(); it != m->end(); ++it) {
      std::string kp = keyed(base, it.key());
      for (const auto& d : checkConfigKey(it.key())) add(fieldInvalid(kp, it.key(), d));
      if (!it.value().is_string()) {
        add(fieldTypeInvalid(
            kp, it.value(), base64Values ? "must be a base64-encoded string" : "must be a string"));
        continue;
      }
      const auto& s = it.value().get_ref<const std::string&>();
      if (base64Values) {
        auto size = base64DecodedSize(s);
        if (!size) {
          add(fieldInvalid(kp, s.size() > 64 ? json(s.substr(0, 64) + "...") : it.value(),
                           "must be a base64-encoded string"));
          continue;
        }
        total += *size;
      } else {
        total += s.size();
      }
    }
    return total;
  }

  void configMapKind(const json& obj) {
    size_t total = configMap(obj, "data", false) + configMap(obj, "binaryData", true);
    const json* data = member(obj, "data");
    const json* bin = member(obj, "binaryData");
    if (data != nullptr && bin != nullptr && data->is_object() && bin->is_object()) {
      for (auto it = bin->begin(); it != bin->end(); ++it) {
        if (data->contains(it.key())) {
          add(fieldInvalid("binaryData", it.key(), "duplicate of key present in data"));
        }
      }
    }
    if (total > kMaxConfigBytes) add(fieldTooLong("data", kMaxConfigBytes));
    boolean(obj, "immutable", "immutable");
  }

  void secretKind(const json& obj) {
    size_t total = configMap(obj, "data", true) + configMap(obj, "stringData", false);
    if (total > kMaxConfigBytes) add(fieldTooLong("data", kMaxConfigBytes));
    boolean(obj, "immutable", "immutable");
    const std::string* type = string(obj, "type", "type");
    if (type == nullptr) return;
    auto has = [&](const char* key) {
      for (const char* section : {"data", "stringData"}) {
        const json* m = member(obj, section);
        if (m != nullptr && m->is_object() && m->contains(key)) return true;
      }
      return false;
    };
    auto require = [&](const char* key) {
      if (!has(key)) add(fieldRequired(keyed("data", key)));
    };
    if (*type == "kubernetes.io/tls") {
      require("tls.crt");
      require("tls.key");
    } else if (*type == "kubernetes.io/dockerconfigjson") {
      require(".dockerconfigjson");
    } else if (*type == "kubernetes.io/dockercfg") {
      require(".dockercfg");
    } else if (*type == "kubernetes.io/ssh-auth") {
      require("ssh-privatekey");
    } else if (*type == "kubernetes.io/basic-auth") {
      if (!has("username") && !has("password")) {
        add(fieldRequired("data[username]"));
        add(fieldRequired("data[password]"));
      }
    }
  }

  // ---- other kinds ----

  void eventKind(const json& obj) {
    const json* io = object(obj, "involvedObject", "involvedObject");
    if (io == nullptr) {
      if (member(obj, "involvedObject") == nullptr) add(fieldRequired("involvedObject"));
    } else {
      requiredString(*io, "kind", "involvedObject.kind");
      requiredString(*io, "name", "involvedObject.name");
      for (const char* f : {"namespace", "uid", "apiVersion", "resourceVersion", "fieldPath"}) {
        string(*io, f, child("involvedObject", f));
      }
      const std::string* ions = string(*io, "namespace", "involvedObject.namespace");
      std::string ns = stringAt(obj, "metadata.namespace");
      if (ions != nullptr && !ions->empty() && !ns.empty() && *ions != ns) {
        add(fieldInvalid("involvedObject.namespace", *ions, "does not match event.namespace"));
      }
    }
    for (const char* f : {"reason", "message", "type", "firstTimestamp", "lastTimestamp",
                          "eventTime", "reportingComponent", "reportingInstance", "action"}) {
      string(obj, f, f);
    }
    intInRange(obj, "count", "count", 0, kInt32Max);
    if (const json* src = object(obj, "source", "source")) {
      string(*src, "component", "source.component");
      string(*src, "host", "source.host");
    }
  }

  void nodeKind(const json& obj) {
    const json* spec = object(obj, "spec", "spec");
    if (spec == nullptr) return;
    boolean(*spec, "unschedulable", "spec.unschedulable");
    string(*spec, "podCIDR", "spec.podCIDR");
    stringArray(*spec, "podCIDRs", "spec.podCIDRs");
    string(*spec, "providerID", "spec.providerID");
    const json* taints = array(*spec, "taints", "spec.taints");
    if (taints == nullptr) return;
    std::set<std::pair<std::string, std::string>> seen;
    for (size_t i = 0; i < taints->size(); ++i) {
      const json& t = (*taints)[i];
      std::string tp = at("spec.taints", i);
      if (!t.is_object()) {
        add(fieldTypeInvalid(tp, t, "must be an object"));
        continue;
      }
      const std::string* key = requiredString(t, "key", child(tp, "key"));
      if (key != nullptr) {
        for (const auto& d : checkQualifiedName(*key)) add(fieldInvalid(child(tp, "key"), *key, d));
      }
      if (const std::string* v = string(t, "value", child(tp, "value"))) {
        for (const auto& d : checkLabelValue(*v)) add(fieldInvalid(child(tp, "value"), *v, d));
      }
      auto effect = enumString(t, "effect", child(tp, "effect"),
                               {"NoSchedule", "PreferNoSchedule", "NoExecute"}, true);
      string(t, "timeAdded", child(tp, "timeAdded"));
      if (key != nullptr && effect && !seen.insert({*key, *effect}).second) {
        add(fieldDuplicate(tp, json{{"key", *key}, {"effect", *effect}}));
      }
    }
  }

  void namespaceKind(const json& obj) {
    if (const json* spec = object(obj, "spec", "spec")) {
      stringArray(*spec, "finalizers", "spec.finalizers");
    }
  }

  void deviceModelKind(const json& obj) {
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

  void deviceKind(const json& obj) {
    const json* spec = object(obj, "spec", "spec");
    static const json kEmpty = json::object();
    if (spec == nullptr) {
      if (member(obj, "spec") != nullptr) return;
      spec = &kEmpty;
    }
    const json* ref = object(*spec, "deviceModelRef", "spec.deviceModelRef");
    if (ref == nullptr) {
      if (member(*spec, "deviceModelRef") == nullptr)
        add(fieldRequired("spec.deviceModelRef.name"));
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

  void ruleEndpointKind(const json& obj) {
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

  void ruleKind(const json& obj) {
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

  void modelKind(const json& obj) {
    const json* spec = object(obj, "spec", "spec");
    static const json kEmpty = json::object();
    if (spec == nullptr) {
      if (member(obj, "spec") != nullptr) return;
      spec = &kEmpty;
    }
    requiredString(*spec, "url", "spec.url");
    string(*spec, "format", "spec.format");
  }

  void validate(const KindInfo& kind, const json& obj) {
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
    }
  }
};

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
    }
  } catch (const std::exception& e) {
    errs.push_back(
        fieldInvalid("", nullptr, std::string("internal validation error: ") + e.what()));
  }
  return errs;
}

}  // namespace ep::api
