#include "edgecore/edged/pod_spec.h"

#include <cctype>
#include <cstdio>
#include <cstring>

#include "common/api/base64.h"
#include "common/api/object_util.h"
#include "common/api/quantity.h"
#include "common/api/registry_auth.h"

namespace ep::edged {
namespace {

constexpr int64_t kCpuPeriod = 100000;  // microseconds, as the kubelet uses
constexpr int64_t kMinShares = 2;

const Json* objectAt(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

const Json* arrayAt(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? &*it : nullptr;
}

// Value of a ConfigMap key (data, then binaryData decoded) or a Secret key (data, base64).
std::optional<std::string> keyValue(const Json& object, bool secret, const std::string& key) {
  if (const Json* data = objectAt(object, "data")) {
    auto it = data->find(key);
    if (it != data->end() && it->is_string()) {
      if (!secret) return it->get<std::string>();
      return api::base64Decode(it->get<std::string>());
    }
  }
  if (secret) {
    if (const Json* data = objectAt(object, "stringData")) {
      auto it = data->find(key);
      if (it != data->end() && it->is_string()) return it->get<std::string>();
    }
  } else if (const Json* data = objectAt(object, "binaryData")) {
    auto it = data->find(key);
    if (it != data->end() && it->is_string()) return api::base64Decode(it->get<std::string>());
  }
  return std::nullopt;
}

Result<std::string> fieldRefValue(const Json& ref, const EnvContext& ctx,
                                  const std::string& field) {
  std::string path = api::stringAt(ref, "fieldPath");
  const Json& pod = *ctx.pod;
  if (path == "metadata.name") return api::stringAt(pod, "metadata.name");
  if (path == "metadata.namespace") return api::stringAt(pod, "metadata.namespace");
  if (path == "metadata.uid") return api::stringAt(pod, "metadata.uid");
  if (path == "spec.nodeName") return ctx.nodeName;
  if (path == "spec.serviceAccountName") return api::stringAt(pod, "spec.serviceAccountName");
  if (path == "status.podIP") return ctx.podIp;
  if (path == "status.hostIP") return ctx.hostIp;
  const std::string labelsPrefix = "metadata.labels['";
  const std::string annPrefix = "metadata.annotations['";
  auto keyIn = [&](const std::string& prefix) {
    return path.substr(prefix.size(), path.size() - prefix.size() - 2);
  };
  if (path.rfind(labelsPrefix, 0) == 0 && path.size() > labelsPrefix.size() + 2) {
    auto labels = api::labelsOf(pod);
    auto it = labels.find(keyIn(labelsPrefix));
    return it == labels.end() ? std::string() : it->second;
  }
  if (path.rfind(annPrefix, 0) == 0 && path.size() > annPrefix.size() + 2) {
    auto anns = api::annotationsOf(pod);
    auto it = anns.find(keyIn(annPrefix));
    return it == anns.end() ? std::string() : it->second;
  }
  return invalidError(field + ".valueFrom.fieldRef.fieldPath: unsupported field \"" + path + "\"");
}

// configMapKeyRef / secretKeyRef.
Result<std::optional<std::string>> keyRefValue(const Json& ref, bool secret,
                                               const EnvContext& ctx) {
  std::string name = api::stringAt(ref, "name");
  std::string key = api::stringAt(ref, "key");
  bool optional = ref.value("optional", false);
  const char* kind = secret ? "secret" : "configmap";
  const std::string ns = api::stringAt(*ctx.pod, "metadata.namespace");
  auto object = ctx.lookup(secret ? "secrets" : "configmaps", ns, name);
  if (!object) {
    if (optional) return std::optional<std::string>();
    return Status(Code::kNotFound, std::string(kind) + " \"" + name + "\" not found");
  }
  auto value = keyValue(*object, secret, key);
  if (!value) {
    if (optional) return std::optional<std::string>();
    return Status(Code::kNotFound, std::string("couldn't find key ") + key + " in " +
                                       (secret ? "Secret " : "ConfigMap ") + ns + "/" + name);
  }
  return value;
}

}  // namespace

std::string podKey(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

std::string podKeyOf(const Json& pod) {
  return podKey(api::stringAt(pod, "metadata.namespace"), api::stringAt(pod, "metadata.name"));
}

std::string restartPolicyOf(const Json& pod) {
  std::string p = api::stringAt(pod, "spec.restartPolicy");
  return p.empty() ? "Always" : p;
}

bool shouldRestart(const std::string& policy, int32_t exitCode) {
  if (policy == "Never") return false;
  if (policy == "OnFailure") return exitCode != 0;
  return true;
}

int64_t terminationGraceSeconds(const Json& pod) {
  int64_t g = api::intAt(pod, "spec.terminationGracePeriodSeconds", 30);
  return g < 0 ? 0 : g;
}

std::string registryHostOf(const std::string& image) {
  auto slash = image.find('/');
  if (slash == std::string::npos) return "docker.io";
  std::string first = image.substr(0, slash);
  if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
      first == "localhost") {
    return first;
  }
  return "docker.io";
}

std::string registryHostOfAuthKey(const std::string& key) {
  return api::registryHostOfAuthKey(key);
}

bool isPullAuthorizationFailure(const std::string& message) {
  std::string m = message;
  for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* sign :
       {"401 unauthorized", "403 forbidden", "unauthorized", "access denied", "denied:"}) {
    if (m.find(sign) != std::string::npos) return true;
  }
  return false;
}

std::string imagePullPolicyOf(const Json& container) {
  std::string p = api::stringAt(container, "imagePullPolicy");
  if (!p.empty()) return p;
  std::string image = api::stringAt(container, "image");
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!tagged || image.substr(colon + 1) == "latest") return "Always";
  return "IfNotPresent";
}

std::string containerSpecHash(const Json& container) {
  // FNV-1a over the canonical dump (nlohmann orders object keys), stable across restarts.
  std::string text = container.dump();
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Result<LinuxResources> linuxResourcesOf(const Json& container, const std::string& field) {
  LinuxResources r;
  const Json* resources = objectAt(container, "resources");
  if (!resources) {
    r.cpuShares = kMinShares;
    return r;
  }
  const Json* requests = objectAt(*resources, "requests");
  const Json* limits = objectAt(*resources, "limits");
  auto quantity = [&](const Json* m, const char* section, const char* key,
                      bool bytes) -> Result<std::optional<int64_t>> {
    if (!m) return std::optional<int64_t>();
    auto it = m->find(key);
    if (it == m->end()) return std::optional<int64_t>();
    auto v = api::quantityOf(*it, !bytes);
    if (!v.isOk()) {
      return invalidError(field + ".resources." + section + "." + key + ": " +
                          v.status().message());
    }
    return std::optional<int64_t>(*v);
  };
  auto cpuLimit = quantity(limits, "limits", "cpu", false);
  if (!cpuLimit.isOk()) return cpuLimit.status();
  auto cpuRequest = quantity(requests, "requests", "cpu", false);
  if (!cpuRequest.isOk()) return cpuRequest.status();
  auto memLimit = quantity(limits, "limits", "memory", true);
  if (!memLimit.isOk()) return memLimit.status();
  std::optional<int64_t> request = *cpuRequest ? *cpuRequest : *cpuLimit;
  r.cpuShares = request ? std::max<int64_t>(kMinShares, *request * 1024 / 1000) : kMinShares;
  if (*cpuLimit) {
    r.cpuPeriod = kCpuPeriod;
    r.cpuQuota = std::max<int64_t>(1000, **cpuLimit * kCpuPeriod / 1000);
  }
  if (*memLimit) r.memoryLimitBytes = **memLimit;
  return r;
}

std::string expandVars(const std::string& in, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 >= in.size()) {
      out += in[i];
      continue;
    }
    if (in[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (in[i + 1] == '(') {
      auto close = in.find(')', i + 2);
      if (close != std::string::npos) {
        std::string name = in.substr(i + 2, close - i - 2);
        auto it = vars.find(name);
        if (it != vars.end()) {
          out += it->second;
          i = close;
          continue;
        }
      }
    }
    out += in[i];
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> resolveEnv(const Json& container,
                                                                    const EnvContext& ctx,
                                                                    const std::string& field) {
  std::vector<std::pair<std::string, std::string>> out;
  std::map<std::string, std::string> vars;
  auto set = [&](const std::string& k, const std::string& v) {
    for (auto& [ek, ev] : out) {
      if (ek == k) {
        ev = v;
        vars[k] = v;
        return;
      }
    }
    out.emplace_back(k, v);
    vars[k] = v;
  };
  const std::string ns = api::stringAt(*ctx.pod, "metadata.namespace");
  if (const Json* envFrom = arrayAt(container, "envFrom")) {
    for (size_t i = 0; i < envFrom->size(); ++i) {
      const Json& src = (*envFrom)[i];
      if (!src.is_object()) continue;
      std::string prefix = api::stringAt(src, "prefix");
      for (bool secret : {false, true}) {
        const Json* ref = objectAt(src, secret ? "secretRef" : "configMapRef");
        if (!ref) continue;
        std::string name = api::stringAt(*ref, "name");
        auto object = ctx.lookup(secret ? "secrets" : "configmaps", ns, name);
        if (!object) {
          if (ref->value("optional", false)) continue;
          return Status(Code::kNotFound, std::string(secret ? "secret" : "configmap") + " \"" +
                                             name + "\" not found");
        }
        if (const Json* data = objectAt(*object, "data")) {
          for (auto it = data->begin(); it != data->end(); ++it) {
            if (!it->is_string()) continue;
            if (secret) {
              auto v = api::base64Decode(it->get<std::string>());
              if (v) set(prefix + it.key(), *v);
            } else {
              set(prefix + it.key(), it->get<std::string>());
            }
          }
        }
      }
    }
  }
  if (const Json* env = arrayAt(container, "env")) {
    for (size_t i = 0; i < env->size(); ++i) {
      const Json& e = (*env)[i];
      if (!e.is_object()) continue;
      std::string name = api::stringAt(e, "name");
      std::string efield = field + ".env[" + std::to_string(i) + "]";
      const Json* from = objectAt(e, "valueFrom");
      if (!from) {
        set(name, expandVars(api::stringAt(e, "value"), vars));
        continue;
      }
      if (const Json* ref = objectAt(*from, "fieldRef")) {
        auto v = fieldRefValue(*ref, ctx, efield);
        if (!v.isOk()) return v.status();
        set(name, *v);
      } else if (const Json* ref = objectAt(*from, "configMapKeyRef")) {
        auto v = keyRefValue(*ref, false, ctx);
        if (!v.isOk()) return v.status();
        if (*v) set(name, **v);
      } else if (const Json* ref = objectAt(*from, "secretKeyRef")) {
        auto v = keyRefValue(*ref, true, ctx);
        if (!v.isOk()) return v.status();
        if (*v) set(name, **v);
      } else if (objectAt(*from, "resourceFieldRef")) {
        // Resource values are not exposed yet; the variable is left unset (documented).
        continue;
      }
    }
  }
  return out;
}

PodSandboxConfig sandboxConfigOf(const Json& pod, uint32_t attempt,
                                 const std::string& logDirectory) {
  PodSandboxConfig c;
  c.name = api::stringAt(pod, "metadata.name");
  c.ns = api::stringAt(pod, "metadata.namespace");
  c.uid = api::stringAt(pod, "metadata.uid");
  c.attempt = attempt;
  c.logDirectory = logDirectory;
  const Json* spec = objectAt(pod, "spec");
  c.hostNetwork = spec && spec->value("hostNetwork", false);
  if (!c.hostNetwork) {
    std::string hostname = spec ? api::stringAt(*spec, "hostname") : std::string();
    c.hostname = hostname.empty() ? c.name : hostname;
  }
  if (spec) {
    if (const Json* dns = objectAt(*spec, "dnsConfig")) {
      if (const Json* ns = arrayAt(*dns, "nameservers")) {
        for (const auto& s : *ns)
          if (s.is_string()) c.dnsServers.push_back(s.get<std::string>());
      }
      if (const Json* se = arrayAt(*dns, "searches")) {
        for (const auto& s : *se)
          if (s.is_string()) c.dnsSearches.push_back(s.get<std::string>());
      }
    }
    for (const char* list : {"initContainers", "containers"}) {
      const Json* containers = arrayAt(*spec, list);
      if (!containers) continue;
      for (const auto& ctr : *containers) {
        const Json* ports = ctr.is_object() ? arrayAt(ctr, "ports") : nullptr;
        if (!ports) continue;
        for (const auto& p : *ports) {
          if (!p.is_object()) continue;
          int32_t hostPort = p.value("hostPort", 0);
          if (hostPort <= 0 && !c.hostNetwork) continue;
          PortMapping m;
          m.containerPort = p.value("containerPort", 0);
          m.hostPort = hostPort > 0 ? hostPort : m.containerPort;
          m.protocol = p.value("protocol", std::string("TCP"));
          m.hostIp = p.value("hostIP", std::string());
          c.portMappings.push_back(m);
        }
      }
    }
  }
  c.labels = api::labelsOf(pod);
  c.labels[kLabelPodName] = c.name;
  c.labels[kLabelPodNamespace] = c.ns;
  c.labels[kLabelPodUid] = c.uid;
  c.labels[kLabelManagedBy] = kManagedByValue;
  c.annotations = api::annotationsOf(pod);
  c.annotations["io.kubernetes.pod.terminationGracePeriod"] =
      std::to_string(terminationGraceSeconds(pod));
  return c;
}

std::string nodeRuntimeVersion(const std::string& text) {
  auto space = text.find(' ');
  if (text.empty() || space == std::string::npos) return text;
  std::string rest = text.substr(space + 1);
  return text.substr(0, space) + "://" + rest.substr(0, rest.find(' '));
}

std::string runtimeContainerId(const std::string& id) {
  return "containerd://" + id;
}

}  // namespace ep::edged
