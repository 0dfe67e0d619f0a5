// Validation (common/api/validation.h) of object metadata, resources and the pod spec
// (core/v1 Pod, and the pod templates of workloads).
// The Checker and its primitives are in validation_checker.h.

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "common/api/validation_checker.h"

namespace ep::api::validation_detail {

void Checker::objectMeta(const KindInfo& kind, const json& obj) {
  const json* meta = object(obj, "metadata", "metadata");
  static const json kEmpty = json::object();
  if (meta == nullptr) meta = &kEmpty;
  const json* name = member(*meta, "name");
  if (name == nullptr || (name->is_string() && name->get_ref<const std::string&>().empty())) {
    add(fieldRequired("metadata.name", "name or generateName is required"));
  } else if (const std::string* n = string(*meta, "name", "metadata.name")) {
    if (kind.kind == "Namespace" && kind.group.empty()) {
      dnsLabel(*n, "metadata.name");
    } else if (kind.kind == "Service" && kind.group.empty()) {
      for (const auto& d : checkDns1035Label(*n)) add(fieldInvalid("metadata.name", *n, d));
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
      for (const char* f : {"apiVersion", "kind", "name", "uid"}) requiredString(r, f, child(p, f));
      boolean(r, "controller", child(p, "controller"));
      boolean(r, "blockOwnerDeletion", child(p, "blockOwnerDeletion"));
    }
  }
}

// Validates a quantity member; returns its value in millis (cpu) or units.
std::optional<int64_t> Checker::quantity(const json& v, const std::string& path, bool milli) {
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

void Checker::resources(const json& container, const std::string& path) {
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

void Checker::port(const json& parent, std::string_view key, const std::string& path,
                   bool required) {
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

void Checker::probe(const json& container, std::string_view key, const std::string& path,
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
  for (const char* f : {"initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                        "successThreshold", "failureThreshold", "terminationGracePeriodSeconds"}) {
    intInRange(*p, f, child(path, f), 0, kInt32Max);
  }
  if (isLiveOrStartup) {
    const json* st = member(*p, "successThreshold");
    if (st != nullptr && st->is_number_integer() && *st != 1) {
      add(fieldInvalid(child(path, "successThreshold"), *st, "must be 1"));
    }
  }
}

void Checker::envVars(const json& container, const std::string& path) {
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

void Checker::envFrom(const json& container, const std::string& path) {
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

void Checker::containerPorts(const json& container, const std::string& path) {
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
    if (const std::string* n = string(p, "name", child(pp, "name")); n != nullptr && !n->empty()) {
      for (const auto& d : checkPortName(*n)) add(fieldInvalid(child(pp, "name"), *n, d));
      if (!names.insert(*n).second) add(fieldDuplicate(child(pp, "name"), *n));
    }
  }
}

void Checker::volumeMounts(const json& container, const std::string& path,
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
      if (!paths.insert(*p).second) add(fieldInvalid(child(mp, "mountPath"), *p, "must be unique"));
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

void Checker::container(const json& c, const std::string& path,
                        const std::set<std::string>& volumes, bool isInit) {
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

std::set<std::string> Checker::volumes(const json& spec, const std::string& path) {
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
        if (const json* sl = member(src, "sizeLimit")) quantity(*sl, child(sp, "sizeLimit"), false);
      }
    }
    if (sources == 0) add(fieldRequired(vp, "must specify a volume type"));
  }
  return names;
}

void Checker::tolerations(const json& spec, const std::string& path) {
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
void Checker::podSpec(const json& spec, const std::string& path, bool isTemplate) {
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
  intInRange(spec, "terminationGracePeriodSeconds", child(path, "terminationGracePeriodSeconds"), 0,
             INT64_MAX);
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

}  // namespace ep::api::validation_detail
