// Validation (common/api/validation.h) of the other core/v1 kinds: ConfigMap, Secret, Event,
// Node, Namespace.
// The Checker and its primitives are in validation_checker.h.

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/api/validation_checker.h"
#include "common/clock.h"

namespace ep::api::validation_detail {

// Validates data-style maps; returns the total payload size in bytes.
size_t Checker::configMap(const json& obj, std::string_view key, bool base64Values) {
  std::string base(key);
  const json* m = object(obj, key, base);
  if (m == nullptr) return 0;
  size_t total = 0;
  for (auto it = m->begin(); it != m->end(); ++it) {
    std::string kp = keyed(base, it.key());
    for (const auto& d : checkConfigKey(it.key())) add(fieldInvalid(kp, it.key(), d));
    if (!it.value().is_string()) {
      add(fieldTypeInvalid(kp, it.value(),
                           base64Values ? "must be a base64-encoded string" : "must be a string"));
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

void Checker::configMapKind(const json& obj) {
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

void Checker::secretKind(const json& obj) {
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

void Checker::eventKind(const json& obj) {
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
  for (const char* f : {"reason", "message", "type", "firstTimestamp", "lastTimestamp", "eventTime",
                        "reportingComponent", "reportingInstance", "action"}) {
    string(obj, f, f);
  }
  intInRange(obj, "count", "count", 0, kInt32Max);
  if (const json* src = object(obj, "source", "source")) {
    string(*src, "component", "source.component");
    string(*src, "host", "source.host");
  }
}

void Checker::nodeKind(const json& obj) {
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

void Checker::namespaceKind(const json& obj) {
  if (const json* spec = object(obj, "spec", "spec")) {
    stringArray(*spec, "finalizers", "spec.finalizers");
  }
}

// coordination.k8s.io/v1 Lease, after Kubernetes 1.32's ValidateLeaseSpec (strategy and
// preferredHolder are its coordinated leader election fields; a strategy is the built-in
// OldestEmulationVersion or a custom one, a qualified name with a domain prefix).
void Checker::leaseKind(const json& obj) {
  const json* spec = object(obj, "spec", "spec");
  if (spec == nullptr) return;
  string(*spec, "holderIdentity", "spec.holderIdentity");
  if (auto d = integer(*spec, "leaseDurationSeconds", "spec.leaseDurationSeconds"); d && *d <= 0) {
    add(fieldInvalid("spec.leaseDurationSeconds", *d, "must be greater than 0"));
  } else if (d && *d > kInt32Max) {
    add(fieldInvalid("spec.leaseDurationSeconds", *d, "must be a 32-bit integer"));
  }
  intInRange(*spec, "leaseTransitions", "spec.leaseTransitions", 0, kInt32Max);
  for (const char* f : {"acquireTime", "renewTime"}) {
    const std::string path = std::string("spec.") + f;
    const std::string* t = string(*spec, f, path);
    if (t != nullptr && !t->empty() && parseRfc3339(*t) < 0) {
      add(fieldInvalid(path, *t, "must be an RFC 3339 time"));
    }
  }
  const std::string* strategy = string(*spec, "strategy", "spec.strategy");
  if (strategy != nullptr && !strategy->empty() && *strategy != "OldestEmulationVersion" &&
      (strategy->find('/') == std::string::npos || !checkQualifiedName(*strategy).empty())) {
    add(fieldNotSupported("spec.strategy", *strategy, {"OldestEmulationVersion"}));
  }
  const std::string* preferred = string(*spec, "preferredHolder", "spec.preferredHolder");
  if (preferred != nullptr && !preferred->empty() && (strategy == nullptr || strategy->empty())) {
    add(fieldForbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"));
  }
}

}  // namespace ep::api::validation_detail
