#include "edgectl/describe.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <ostream>
#include <sstream>

#include "common/api/base64.h"
#include "edgectl/apply_patch.h"
#include "edgectl/paths.h"
#include "edgectl/printer.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

namespace {

// Collects lines whose cells are separated by tabs, then aligns them like kubectl's describe
// output (Go tabwriter, min width 0, padding 2). Each level indents by two spaces.
class DescribeWriter {
 public:
  void line(int level, std::string_view text) {
    buf_.append(static_cast<size_t>(level) * 2, ' ');
    buf_ += text;
    buf_ += '\n';
  }
  void kv(int level, std::string_view key, std::string_view value) {
    line(level, std::string(key) + ":\t" + std::string(value));
  }
  void raw(std::string_view text) { buf_ += text; }
  std::string finish() const { return formatTabbed(buf_, 0, 2); }

 private:
  std::string buf_;
};

std::string orNone(std::string s) {
  return s.empty() ? "<none>" : s;
}

std::string scalarText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "<nil>";
  return v.dump();
}

std::string firstLine(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl) + "...";
}

std::string timeText(const std::string& rfc3339) {
  int64_t ms = parseRfc3339(rfc3339);
  return ms < 0 ? rfc3339 : formatRfc1123(ms);
}

int64_t intAt(const json& v, std::initializer_list<const char*> keys, int64_t def = 0) {
  const json* p = jsonAt(v, keys);
  return p && p->is_number() ? p->get<int64_t>() : def;
}

bool boolAt(const json& v, std::initializer_list<const char*> keys, bool def = false) {
  const json* p = jsonAt(v, keys);
  return p && p->is_boolean() ? p->get<bool>() : def;
}

const json& arrayAt(const json& v, std::initializer_list<const char*> keys) {
  static const json kEmpty = json::array();
  const json* p = jsonAt(v, keys);
  return p && p->is_array() ? *p : kEmpty;
}

// "Title:\tk=v" followed by "\tk2=v2" lines (sorted keys), or "Title:\t<none>".
void writeMultiline(DescribeWriter& w, int level, const std::string& title, const json* map,
                    const char* sep, bool skipLastApplied = false) {
  std::vector<std::pair<std::string, std::string>> items;
  if (map && map->is_object()) {
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (skipLastApplied && it.key() == kLastAppliedAnnotation) continue;
      items.emplace_back(it.key(), firstLine(scalarText(it.value())));
    }
  }
  if (items.empty()) {
    w.kv(level, title, "<none>");
    return;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    std::string text = items[i].first + sep + items[i].second;
    if (i == 0) {
      w.kv(level, title, text);
    } else {
      w.line(level, "\t" + text);
    }
  }
}

void writeCommonHeader(DescribeWriter& w, const json& obj, bool namespaced) {
  w.kv(0, "Name", stringAt(obj, {"metadata", "name"}));
  if (namespaced) w.kv(0, "Namespace", stringAt(obj, {"metadata", "namespace"}));
}

void writeLabelsAnnotations(DescribeWriter& w, const json& obj) {
  writeMultiline(w, 0, "Labels", jsonAt(obj, {"metadata", "labels"}), "=");
  writeMultiline(w, 0, "Annotations", jsonAt(obj, {"metadata", "annotations"}), ": ", true);
}

// ---------------------------------------------------------------------------------------------
// Containers (shared by Pod and Deployment templates)

std::string portsText(const json& ports, const char* field) {
  std::string out;
  for (const auto& p : ports) {
    if (!out.empty()) out += ", ";
    out += std::to_string(intAt(p, {field})) + "/" +
           (stringAt(p, {"protocol"}).empty() ? "TCP" : stringAt(p, {"protocol"}));
  }
  return out;
}

void writeState(DescribeWriter& w, const char* title, const json& state) {
  if (const json* r = jsonAt(state, {"running"}); r && r->is_object()) {
    w.kv(2, title, "Running");
    w.kv(3, "Started", timeText(stringAt(*r, {"startedAt"})));
  } else if (const json* wt = jsonAt(state, {"waiting"}); wt && wt->is_object()) {
    w.kv(2, title, "Waiting");
    if (!stringAt(*wt, {"reason"}).empty()) w.kv(3, "Reason", stringAt(*wt, {"reason"}));
    if (!stringAt(*wt, {"message"}).empty()) w.kv(3, "Message", stringAt(*wt, {"message"}));
  } else if (const json* t = jsonAt(state, {"terminated"}); t && t->is_object()) {
    w.kv(2, title, "Terminated");
    if (!stringAt(*t, {"reason"}).empty()) w.kv(3, "Reason", stringAt(*t, {"reason"}));
    if (!stringAt(*t, {"message"}).empty()) w.kv(3, "Message", stringAt(*t, {"message"}));
    w.kv(3, "Exit Code", std::to_string(intAt(*t, {"exitCode"})));
    if (intAt(*t, {"signal"}) != 0) w.kv(3, "Signal", std::to_string(intAt(*t, {"signal"})));
    w.kv(3, "Started", timeText(stringAt(*t, {"startedAt"})));
    w.kv(3, "Finished", timeText(stringAt(*t, {"finishedAt"})));
  } else {
    w.kv(2, title, "Waiting");
  }
}

void writeEnv(DescribeWriter& w, const json& c) {
  const json& env = arrayAt(c, {"env"});
  const json& envFrom = arrayAt(c, {"envFrom"});
  if (!envFrom.empty()) {
    w.line(2, "Environment Variables from:");
    for (const auto& e : envFrom) {
      std::string prefix = stringAt(e, {"prefix"});
      if (const json* cm = jsonAt(e, {"configMapRef"})) {
        w.line(3, stringAt(*cm, {"name"}) +
                      "\tConfigMap\tOptional: " + (boolAt(*cm, {"optional"}) ? "true" : "false"));
      } else if (const json* s = jsonAt(e, {"secretRef"})) {
        w.line(3, stringAt(*s, {"name"}) +
                      "\tSecret\tOptional: " + (boolAt(*s, {"optional"}) ? "true" : "false"));
      }
    }
  }
  if (env.empty()) {
    w.kv(2, "Environment", "<none>");
    return;
  }
  w.line(2, "Environment:");
  for (const auto& e : env) {
    std::string name = stringAt(e, {"name"});
    std::string value;
    if (const json* v = jsonAt(e, {"value"}); v && v->is_string()) {
      value = firstLine(v->get<std::string>());
    } else if (const json* from = jsonAt(e, {"valueFrom"})) {
      if (const json* f = jsonAt(*from, {"fieldRef"})) {
        std::string av = stringAt(*f, {"apiVersion"});
        value =
            " (" + (av.empty() ? std::string("v1") : av) + ":" + stringAt(*f, {"fieldPath"}) + ")";
      } else if (const json* r = jsonAt(*from, {"resourceFieldRef"})) {
        value = " (" + stringAt(*r, {"resource"}) + ")";
      } else if (const json* cm = jsonAt(*from, {"configMapKeyRef"})) {
        value = "<set to the key '" + stringAt(*cm, {"key"}) + "' of config map '" +
                stringAt(*cm, {"name"}) +
                "'>\tOptional: " + (boolAt(*cm, {"optional"}) ? "true" : "false");
      } else if (const json* s = jsonAt(*from, {"secretKeyRef"})) {
        value = "<set to the key '" + stringAt(*s, {"key"}) + "' in secret '" +
                stringAt(*s, {"name"}) +
                "'>\tOptional: " + (boolAt(*s, {"optional"}) ? "true" : "false");
      }
    }
    w.kv(3, name, value);
  }
}

void writeMounts(DescribeWriter& w, const json& c) {
  const json& mounts = arrayAt(c, {"volumeMounts"});
  if (mounts.empty()) {
    w.kv(2, "Mounts", "<none>");
    return;
  }
  w.line(2, "Mounts:");
  for (const auto& m : mounts) {
    std::string flags = boolAt(m, {"readOnly"}) ? "ro" : "rw";
    if (!stringAt(m, {"subPath"}).empty()) flags += ",path=\"" + stringAt(m, {"subPath"}) + "\"";
    w.line(3, stringAt(m, {"mountPath"}) + " from " + stringAt(m, {"name"}) + " (" + flags + ")");
  }
}

void writeResources(DescribeWriter& w, const json& c) {
  for (const char* section : {"limits", "requests"}) {
    const json* r = jsonAt(c, {"resources", section});
    if (!r || !r->is_object() || r->empty()) continue;
    std::string title = section;
    title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
    w.line(2, title + ":");
    for (auto it = r->begin(); it != r->end(); ++it) w.kv(3, it.key(), scalarText(it.value()));
  }
}

void writeStringList(DescribeWriter& w, const char* title, const json& list) {
  if (!list.is_array() || list.empty()) return;
  w.line(2, std::string(title) + ":");
  for (const auto& v : list) w.line(3, firstLine(scalarText(v)));
}

// status: the matching containerStatuses entry, or null for templates.
void writeContainer(DescribeWriter& w, const json& c, const json* status, bool templateStyle) {
  if (templateStyle) {
    w.line(0, "   " + stringAt(c, {"name"}) + ":");
  } else {
    w.line(1, stringAt(c, {"name"}) + ":");
  }
  if (status) w.kv(2, "Container ID", stringAt(*status, {"containerID"}));
  w.kv(2, "Image", stringAt(c, {"image"}));
  if (status) w.kv(2, "Image ID", stringAt(*status, {"imageID"}));
  const json& ports = arrayAt(c, {"ports"});
  std::string p = portsText(ports, "containerPort");
  w.kv(2, p.find(',') != std::string::npos ? "Ports" : "Port", orNone(p));
  if (!ports.empty()) {
    std::string hp = portsText(ports, "hostPort");
    w.kv(2, hp.find(',') != std::string::npos ? "Host Ports" : "Host Port", hp);
  }
  writeStringList(w, "Command", arrayAt(c, {"command"}));
  writeStringList(w, "Args", arrayAt(c, {"args"}));
  if (status) {
    static const json kEmpty = json::object();
    const json* state = jsonAt(*status, {"state"});
    writeState(w, "State", state ? *state : kEmpty);
    if (const json* last = jsonAt(*status, {"lastState"});
        last && last->is_object() && !last->empty()) {
      writeState(w, "Last State", *last);
    }
    w.kv(2, "Ready", boolAt(*status, {"ready"}) ? "True" : "False");
    w.kv(2, "Restart Count", std::to_string(intAt(*status, {"restartCount"})));
  } else if (!templateStyle) {
    w.kv(2, "State", "Waiting");
    w.kv(2, "Ready", "False");
    w.kv(2, "Restart Count", "0");
  }
  writeResources(w, c);
  writeEnv(w, c);
  writeMounts(w, c);
}

void writeContainers(DescribeWriter& w, const char* title, const json& containers,
                     const json& statuses, bool templateStyle) {
  if (templateStyle) {
    w.line(1, std::string(title) + ":");
  } else {
    w.line(0, std::string(title) + ":");
  }
  for (const auto& c : containers) {
    const json* st = nullptr;
    for (const auto& s : statuses) {
      if (stringAt(s, {"name"}) == stringAt(c, {"name"})) st = &s;
    }
    writeContainer(w, c, st, templateStyle);
  }
}

// ---------------------------------------------------------------------------------------------
// Generic rendering of nested content: "Key:  value" lines with camelCase keys split into words.

std::string humanizeKey(const std::string& key) {
  static const char* const kAcronyms[] = {"uid", "id", "ip", "url", "api", "dns", "cpu"};
  for (const char* a : kAcronyms) {
    if (key == a) {
      std::string up = key;
      for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return up;
    }
  }
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    bool upper = std::isupper(static_cast<unsigned char>(c));
    if (i > 0 && upper) {
      char prev = key[i - 1];
      bool prevLower = std::islower(static_cast<unsigned char>(prev)) ||
                       std::isdigit(static_cast<unsigned char>(prev));
      bool nextLower = i + 1 < key.size() && std::islower(static_cast<unsigned char>(key[i + 1]));
      bool prevUpper = std::isupper(static_cast<unsigned char>(prev));
      if (prevLower || (prevUpper && nextLower)) out += ' ';
    }
    out += (i == 0) ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
  }
  return out;
}

void writeContent(DescribeWriter& w, int level, const json& v);

// False for containers that hold no scalar anywhere (nothing would be printed under them).
bool hasContent(const json& v) {
  if (!v.is_object() && !v.is_array()) return true;
  for (const auto& child : v) {
    if (hasContent(child)) return true;
  }
  return false;
}

void writeField(DescribeWriter& w, int level, const std::string& key, const json& v) {
  std::string title = humanizeKey(key);
  if (!hasContent(v)) return;
  if (v.is_object()) {
    w.line(level, title + ":");
    writeContent(w, level + 1, v);
  } else if (v.is_array()) {
    w.line(level, title + ":");
    for (const auto& item : v) {
      if (item.is_object()) {
        writeContent(w, level + 1, item);
      } else if (item.is_array()) {
        writeContent(w, level + 1, item);
      } else {
        w.line(level + 1, firstLine(scalarText(item)));
      }
    }
  } else {
    w.kv(level, title, firstLine(scalarText(v)));
  }
}

void writeContent(DescribeWriter& w, int level, const json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) writeField(w, level, it.key(), it.value());
  } else if (v.is_array()) {
    for (const auto& item : v) writeContent(w, level, item);
  } else {
    w.line(level, firstLine(scalarText(v)));
  }
}

// ---------------------------------------------------------------------------------------------
// Kinds

void describePod(DescribeWriter& w, const json& pod) {
  writeCommonHeader(w, pod, true);
  if (const json* p = jsonAt(pod, {"spec", "priority"}); p && p->is_number()) {
    w.kv(0, "Priority", std::to_string(p->get<int64_t>()));
  }
  if (!stringAt(pod, {"spec", "serviceAccountName"}).empty()) {
    w.kv(0, "Service Account", stringAt(pod, {"spec", "serviceAccountName"}));
  }
  std::string node = stringAt(pod, {"spec", "nodeName"});
  std::string hostIP = stringAt(pod, {"status", "hostIP"});
  w.kv(0, "Node", node.empty() ? "<none>" : (hostIP.empty() ? node : node + "/" + hostIP));
  if (!stringAt(pod, {"status", "startTime"}).empty()) {
    w.kv(0, "Start Time", timeText(stringAt(pod, {"status", "startTime"})));
  }
  writeLabelsAnnotations(w, pod);
  std::string phase = stringAt(pod, {"status", "phase"});
  if (!stringAt(pod, {"metadata", "deletionTimestamp"}).empty()) {
    w.kv(0, "Status",
         "Terminating (lasts since " + timeText(stringAt(pod, {"metadata", "deletionTimestamp"})) +
             ")");
  } else {
    w.kv(0, "Status", orNone(phase));
  }
  if (!stringAt(pod, {"status", "reason"}).empty()) {
    w.kv(0, "Reason", stringAt(pod, {"status", "reason"}));
  }
  if (!stringAt(pod, {"status", "message"}).empty()) {
    w.kv(0, "Message", stringAt(pod, {"status", "message"}));
  }
  w.kv(0, "IP", stringAt(pod, {"status", "podIP"}));
  const json& ips = arrayAt(pod, {"status", "podIPs"});
  if (ips.empty()) {
    w.kv(0, "IPs", "<none>");
  } else {
    w.line(0, "IPs:");
    for (const auto& ip : ips) w.kv(1, "IP", stringAt(ip, {"ip"}));
  }
  for (const auto& ref : arrayAt(pod, {"metadata", "ownerReferences"})) {
    if (boolAt(ref, {"controller"})) {
      w.kv(0, "Controlled By", stringAt(ref, {"kind"}) + "/" + stringAt(ref, {"name"}));
    }
  }
  const json& init = arrayAt(pod, {"spec", "initContainers"});
  if (!init.empty()) {
    writeContainers(w, "Init Containers", init, arrayAt(pod, {"status", "initContainerStatuses"}),
                    false);
  }
  writeContainers(w, "Containers", arrayAt(pod, {"spec", "containers"}),
                  arrayAt(pod, {"status", "containerStatuses"}), false);
  const json& conditions = arrayAt(pod, {"status", "conditions"});
  if (!conditions.empty()) {
    w.line(0, "Conditions:");
    w.line(1, "Type\tStatus");
    for (const auto& c : conditions) {
      w.line(1, stringAt(c, {"type"}) + "\t" + stringAt(c, {"status"}));
    }
  }
  const json& volumes = arrayAt(pod, {"spec", "volumes"});
  if (volumes.empty()) {
    w.kv(0, "Volumes", "<none>");
  } else {
    w.line(0, "Volumes:");
    for (const auto& v : volumes) {
      w.line(1, stringAt(v, {"name"}) + ":");
      if (const json* s = jsonAt(v, {"emptyDir"})) {
        w.kv(2, "Type", "EmptyDir (a temporary directory that shares a pod's lifetime)");
        w.kv(2, "Medium", stringAt(*s, {"medium"}));
        const json* limit = jsonAt(*s, {"sizeLimit"});
        w.kv(2, "SizeLimit", limit ? scalarText(*limit) : "<unset>");
      } else if (const json* h = jsonAt(v, {"hostPath"})) {
        w.kv(2, "Type", "HostPath (bare host directory volume)");
        w.kv(2, "Path", stringAt(*h, {"path"}));
        w.kv(2, "HostPathType", stringAt(*h, {"type"}));
      } else if (const json* cm = jsonAt(v, {"configMap"})) {
        w.kv(2, "Type", "ConfigMap (a volume populated by a ConfigMap)");
        w.kv(2, "Name", stringAt(*cm, {"name"}));
        w.kv(2, "Optional", boolAt(*cm, {"optional"}) ? "true" : "false");
      } else if (const json* sec = jsonAt(v, {"secret"})) {
        w.kv(2, "Type", "Secret (a volume populated by a Secret)");
        w.kv(2, "SecretName", stringAt(*sec, {"secretName"}));
        w.kv(2, "Optional", boolAt(*sec, {"optional"}) ? "true" : "false");
      } else if (const json* pvc = jsonAt(v, {"persistentVolumeClaim"})) {
        w.kv(2, "Type",
             "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
             "namespace)");
        w.kv(2, "ClaimName", stringAt(*pvc, {"claimName"}));
        w.kv(2, "ReadOnly", boolAt(*pvc, {"readOnly"}) ? "true" : "false");
      } else {
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (it.key() == "name") continue;
          std::string type = humanizeKey(it.key());
          type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
          w.kv(2, "Type", type);
          if (it.value().is_object()) writeContent(w, 2, it.value());
        }
      }
    }
  }
  if (!stringAt(pod, {"status", "qosClass"}).empty()) {
    w.kv(0, "QoS Class", stringAt(pod, {"status", "qosClass"}));
  }
  writeMultiline(w, 0, "Node-Selectors", jsonAt(pod, {"spec", "nodeSelector"}), "=");
  const json& tolerations = arrayAt(pod, {"spec", "tolerations"});
  if (tolerations.empty()) {
    w.kv(0, "Tolerations", "<none>");
  } else {
    for (size_t i = 0; i < tolerations.size(); ++i) {
      const json& t = tolerations[i];
      std::string text = stringAt(t, {"key"});
      if (!stringAt(t, {"value"}).empty()) text += "=" + stringAt(t, {"value"});
      if (!stringAt(t, {"effect"}).empty()) text += ":" + stringAt(t, {"effect"});
      if (stringAt(t, {"operator"}) == "Exists" && stringAt(t, {"value"}).empty()) {
        text += text.empty() ? "op=Exists" : " op=Exists";
      }
      if (const json* s = jsonAt(t, {"tolerationSeconds"}); s && s->is_number()) {
        text += " for " + std::to_string(s->get<int64_t>()) + "s";
      }
      if (i == 0) {
        w.kv(0, "Tolerations", text);
      } else {
        w.line(0, "\t" + text);
      }
    }
  }
}

void describeNode(DescribeWriter& w, const json& node) {
  writeCommonHeader(w, node, false);
  std::vector<std::string> roles;
  if (const json* labels = jsonAt(node, {"metadata", "labels"}); labels && labels->is_object()) {
    constexpr std::string_view kRolePrefix = "node-role.kubernetes.io/";
    for (auto it = labels->begin(); it != labels->end(); ++it) {
      if (it.key().rfind(kRolePrefix, 0) == 0 && it.key().size() > kRolePrefix.size()) {
        roles.push_back(it.key().substr(kRolePrefix.size()));
      } else if (it.key() == "kubernetes.io/role" && it.value().is_string()) {
        roles.push_back(it.value().get<std::string>());
      }
    }
  }
  std::sort(roles.begin(), roles.end());
  std::string rolesText;
  for (const auto& r : roles) rolesText += (rolesText.empty() ? "" : ",") + r;
  w.kv(0, "Roles", orNone(rolesText));
  writeLabelsAnnotations(w, node);
  w.kv(0, "CreationTimestamp", timeText(stringAt(node, {"metadata", "creationTimestamp"})));
  const json& taints = arrayAt(node, {"spec", "taints"});
  if (taints.empty()) {
    w.kv(0, "Taints", "<none>");
  } else {
    for (size_t i = 0; i < taints.size(); ++i) {
      std::string text = stringAt(taints[i], {"key"});
      if (!stringAt(taints[i], {"value"}).empty()) text += "=" + stringAt(taints[i], {"value"});
      text += ":" + stringAt(taints[i], {"effect"});
      if (i == 0) {
        w.kv(0, "Taints", text);
      } else {
        w.line(0, "\t" + text);
      }
    }
  }
  w.kv(0, "Unschedulable", boolAt(node, {"spec", "unschedulable"}) ? "true" : "false");
  const json& conditions = arrayAt(node, {"status", "conditions"});
  if (!conditions.empty()) {
    w.line(0, "Conditions:");
    w.line(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage");
    w.line(1, "----\t------\t-----------------\t------------------\t------\t-------");
    for (const auto& c : conditions) {
      w.line(1, stringAt(c, {"type"}) + "\t" + stringAt(c, {"status"}) + "\t" +
                    timeText(stringAt(c, {"lastHeartbeatTime"})) + "\t" +
                    timeText(stringAt(c, {"lastTransitionTime"})) + "\t" + stringAt(c, {"reason"}) +
                    "\t" + firstLine(stringAt(c, {"message"})));
    }
  }
  w.line(0, "Addresses:");
  for (const auto& a : arrayAt(node, {"status", "addresses"})) {
    w.kv(1, stringAt(a, {"type"}), stringAt(a, {"address"}));
  }
  for (const auto& [key, title] :
       {std::pair{"capacity", "Capacity"}, std::pair{"allocatable", "Allocatable"}}) {
    const json* m = jsonAt(node, {"status", key});
    if (!m || !m->is_object()) continue;
    w.line(0, std::string(title) + ":");
    for (auto it = m->begin(); it != m->end(); ++it) w.kv(1, it.key(), scalarText(it.value()));
  }
  if (const json* info = jsonAt(node, {"status", "nodeInfo"}); info && info->is_object()) {
    w.line(0, "System Info:");
    static const std::pair<const char*, const char*> kFields[] = {
        {"machineID", "Machine ID"},
        {"systemUUID", "System UUID"},
        {"bootID", "Boot ID"},
        {"kernelVersion", "Kernel Version"},
        {"osImage", "OS Image"},
        {"operatingSystem", "Operating System"},
        {"architecture", "Architecture"},
        {"containerRuntimeVersion", "Container Runtime Version"},
        {"kubeletVersion", "Kubelet Version"},
        {"kubeProxyVersion", "Kube-Proxy Version"}};
    for (const auto& [key, title] : kFields) w.kv(1, title, stringAt(*info, {key}));
  }
  if (!stringAt(node, {"spec", "podCIDR"}).empty()) {
    w.kv(0, "PodCIDR", stringAt(node, {"spec", "podCIDR"}));
  }
}

std::string selectorText(const json* selector) {
  if (!selector || !selector->is_object()) return "<none>";
  std::string out;
  if (const json* ml = jsonAt(*selector, {"matchLabels"}); ml && ml->is_object()) {
    for (auto it = ml->begin(); it != ml->end(); ++it) {
      out += (out.empty() ? "" : ",") + it.key() + "=" + scalarText(it.value());
    }
  }
  for (const auto& e : arrayAt(*selector, {"matchExpressions"})) {
    std::string op = stringAt(e, {"operator"});
    std::string expr;
    if (op == "Exists") {
      expr = stringAt(e, {"key"});
    } else if (op == "DoesNotExist") {
      expr = "!" + stringAt(e, {"key"});
    } else {
      std::string values;
      for (const auto& v : arrayAt(e, {"values"})) {
        values += (values.empty() ? "" : ",") + scalarText(v);
      }
      std::string lower = op == "NotIn" ? "notin" : "in";
      expr = stringAt(e, {"key"}) + " " + lower + " (" + values + ")";
    }
    out += (out.empty() ? "" : ",") + expr;
  }
  return orNone(out);
}

void describeDeployment(DescribeWriter& w, const json& d) {
  writeCommonHeader(w, d, true);
  w.kv(0, "CreationTimestamp", timeText(stringAt(d, {"metadata", "creationTimestamp"})));
  writeLabelsAnnotations(w, d);
  w.kv(0, "Selector", selectorText(jsonAt(d, {"spec", "selector"})));
  int64_t desired = intAt(d, {"spec", "replicas"}, 1);
  w.kv(0, "Replicas",
       std::to_string(desired) + " desired | " +
           std::to_string(intAt(d, {"status", "updatedReplicas"})) + " updated | " +
           std::to_string(intAt(d, {"status", "replicas"})) + " total | " +
           std::to_string(intAt(d, {"status", "availableReplicas"})) + " available | " +
           std::to_string(intAt(d, {"status", "unavailableReplicas"})) + " unavailable");
  std::string strategy = stringAt(d, {"spec", "strategy", "type"});
  if (strategy.empty()) strategy = "RollingUpdate";
  w.kv(0, "StrategyType", strategy);
  w.kv(0, "MinReadySeconds", std::to_string(intAt(d, {"spec", "minReadySeconds"})));
  if (strategy == "RollingUpdate") {
    const json* ru = jsonAt(d, {"spec", "strategy", "rollingUpdate"});
    std::string unavailable = "25%";
    std::string surge = "25%";
    if (ru) {
      if (const json* u = jsonAt(*ru, {"maxUnavailable"})) unavailable = scalarText(*u);
      if (const json* s = jsonAt(*ru, {"maxSurge"})) surge = scalarText(*s);
    }
    w.kv(0, "RollingUpdateStrategy", unavailable + " max unavailable, " + surge + " max surge");
  }
  w.line(0, "Pod Template:");
  static const json kNull;
  const json* tmpl = jsonAt(d, {"spec", "template"});
  const json& t = tmpl ? *tmpl : kNull;
  writeMultiline(w, 1, "Labels", jsonAt(t, {"metadata", "labels"}), "=");
  if (const json* a = jsonAt(t, {"metadata", "annotations"}); a && a->is_object() && !a->empty()) {
    writeMultiline(w, 1, "Annotations", a, ": ");
  }
  const json& init = arrayAt(t, {"spec", "initContainers"});
  if (!init.empty()) {
    writeContainers(w, "Init Containers", init, json::array(), true);
  }
  writeContainers(w, "Containers", arrayAt(t, {"spec", "containers"}), json::array(), true);
  const json& volumes = arrayAt(t, {"spec", "volumes"});
  if (volumes.empty()) {
    w.kv(1, "Volumes", "<none>");
  } else {
    w.line(1, "Volumes:");
    for (const auto& v : volumes) {
      w.line(2, stringAt(v, {"name"}) + ":");
      json rest = v;
      rest.erase("name");
      writeContent(w, 3, rest);
    }
  }
  writeMultiline(w, 1, "Node-Selectors", jsonAt(t, {"spec", "nodeSelector"}), "=");
  const json& conditions = arrayAt(d, {"status", "conditions"});
  if (!conditions.empty()) {
    w.line(0, "Conditions:");
    w.line(1, "Type\tStatus\tReason");
    w.line(1, "----\t------\t------");
    for (const auto& c : conditions) {
      w.line(1, stringAt(c, {"type"}) + "\t" + stringAt(c, {"status"}) + "\t" +
                    stringAt(c, {"reason"}));
    }
  }
}

// "N bytes" for base64 data, as kubectl describe shows binaryData and Secret data ("?" when
// the value is not base64, which the server never stores).
std::string decodedBytes(const json& value) {
  auto n = api::base64DecodedSize(scalarText(value));
  return (n ? std::to_string(*n) : std::string("?")) + " bytes";
}

void describeConfigMap(DescribeWriter& w, const json& cm) {
  writeCommonHeader(w, cm, true);
  writeLabelsAnnotations(w, cm);
  w.raw("\nData\n====\n");
  if (const json* data = jsonAt(cm, {"data"}); data && data->is_object()) {
    for (auto it = data->begin(); it != data->end(); ++it) {
      w.raw(it.key() + ":\n----\n" + scalarText(it.value()) + "\n\n");
    }
  }
  w.raw("\nBinaryData\n====\n");
  if (const json* data = jsonAt(cm, {"binaryData"}); data && data->is_object()) {
    for (auto it = data->begin(); it != data->end(); ++it) {
      w.raw(it.key() + ": " + decodedBytes(it.value()) + "\n");
    }
  }
  w.raw("\n");
}

void describeSecret(DescribeWriter& w, const json& s) {
  writeCommonHeader(w, s, true);
  writeLabelsAnnotations(w, s);
  w.raw("\n");
  std::string type = stringAt(s, {"type"});
  w.kv(0, "Type", type.empty() ? "Opaque" : type);
  w.raw("\nData\n====\n");
  if (const json* data = jsonAt(s, {"data"}); data && data->is_object()) {
    for (auto it = data->begin(); it != data->end(); ++it) {
      w.kv(0, it.key(), decodedBytes(it.value()));
    }
  }
}

void describeGeneric(DescribeWriter& w, const api::KindInfo& kind, const json& obj) {
  writeCommonHeader(w, obj, kind.namespaced);
  writeLabelsAnnotations(w, obj);
  w.kv(0, "API Version", obj.value("apiVersion", kind.apiVersion()));
  w.kv(0, "Kind", obj.value("kind", kind.kind));
  if (const json* md = jsonAt(obj, {"metadata"}); md && md->is_object()) {
    json rest = *md;
    for (const char* k : {"name", "namespace", "labels", "annotations", "managedFields"}) {
      rest.erase(k);
    }
    if (!rest.empty()) {
      w.line(0, "Metadata:");
      writeContent(w, 1, rest);
    }
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (it.key() == "apiVersion" || it.key() == "kind" || it.key() == "metadata") continue;
    writeField(w, 0, it.key(), it.value());
  }
}

int64_t eventTime(const json& e) {
  for (const char* key : {"lastTimestamp", "eventTime", "firstTimestamp"}) {
    int64_t t = parseRfc3339(stringAt(e, {key}));
    if (t >= 0) return t;
  }
  return parseRfc3339(stringAt(e, {"metadata", "creationTimestamp"}));
}

void writeEvents(DescribeWriter& w, const json& events, int64_t nowMillis) {
  if (!events.is_array() || events.empty()) {
    w.kv(0, "Events", "<none>");
    return;
  }
  std::vector<const json*> sorted;
  for (const auto& e : events) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const json* a, const json* b) { return eventTime(*a) < eventTime(*b); });
  w.line(0, "Events:");
  w.line(1, "Type\tReason\tAge\tFrom\tMessage");
  w.line(1, "----\t------\t----\t----\t-------");
  for (const json* e : sorted) {
    int64_t last = eventTime(*e);
    std::string age = last < 0 ? "<unknown>" : formatAge(nowMillis - last);
    int64_t count = intAt(*e, {"count"}, 1);
    int64_t first = parseRfc3339(stringAt(*e, {"firstTimestamp"}));
    if (count > 1 && first >= 0) {
      age += " (x" + std::to_string(count) + " over " + formatAge(nowMillis - first) + ")";
    }
    std::string from = stringAt(*e, {"source", "component"});
    if (from.empty()) from = stringAt(*e, {"reportingComponent"});
    if (from.empty()) from = stringAt(*e, {"reportingController"});
    if (!stringAt(*e, {"source", "host"}).empty()) from += ", " + stringAt(*e, {"source", "host"});
    std::string message = stringAt(*e, {"message"});
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    w.line(1, stringAt(*e, {"type"}) + "\t" + stringAt(*e, {"reason"}) + "\t" + age + "\t" + from +
                  "\t" + firstLine(message));
  }
}

}  // namespace

std::string formatRfc1123(int64_t unixMillis) {
  std::time_t secs = static_cast<std::time_t>(unixMillis / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string describeObject(const api::KindInfo& kind, const json& object, const json& events,
                           int64_t nowMillis) {
  DescribeWriter w;
  if (kind.group.empty() && kind.kind == "Pod") {
    describePod(w, object);
  } else if (kind.group.empty() && kind.kind == "Node") {
    describeNode(w, object);
  } else if (kind.group == "apps" && kind.kind == "Deployment") {
    describeDeployment(w, object);
  } else if (kind.group.empty() && kind.kind == "ConfigMap") {
    describeConfigMap(w, object);
  } else if (kind.group.empty() && kind.kind == "Secret") {
    describeSecret(w, object);
  } else {
    describeGeneric(w, kind, object);
  }
  if (!events.is_null()) writeEvents(w, events, nowMillis);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Command

namespace {

json fetchEvents(Context& ctx, const api::KindInfo& kind, const json& obj) {
  std::string name = stringAt(obj, {"metadata", "name"});
  std::string ns = stringAt(obj, {"metadata", "namespace"});
  std::string uid = stringAt(obj, {"metadata", "uid"});
  std::string selector = "involvedObject.name=" + name;
  if (kind.namespaced) {
    selector += ",involvedObject.namespace=" + ns;
  } else {
    selector += ",involvedObject.kind=" + kind.kind;
  }
  if (!uid.empty() && kind.namespaced) selector += ",involvedObject.uid=" + uid;
  const api::KindInfo* eventKind = api::findByApiVersionKind("v1", "Event");
  if (!eventKind) return json::array();
  std::string path = resourcePath(*eventKind, kind.namespaced ? ns : "") +
                     buildQuery({{"fieldSelector", selector}});
  auto r = ctx.api->call("GET", path);
  if (!r || !r->ok()) return json::array();
  const json* items = jsonAt(r->body, {"items"});
  return items && items->is_array() ? *items : json::array();
}

}  // namespace

int runDescribe(Context& ctx, const DescribeOptions& options) {
  std::ostream& out = *ctx.out;
  std::ostream& err = *ctx.err;
  auto refs = parseResourceArgs(options.args, "describe");
  if (!refs) {
    err << "error: " << refs.status().message() << "\n";
    return 1;
  }
  int rc = 0;
  bool first = true;
  auto emit = [&](const api::KindInfo& kind, const json& obj) {
    json events = options.showEvents ? fetchEvents(ctx, kind, obj) : json();
    std::string text = describeObject(kind, obj, events, ctx.clock->nowMillis());
    out << (first ? "" : "\n") << text << "\n";
    out.flush();
    first = false;
  };
  for (const auto& ref : *refs) {
    const api::KindInfo& kind = *ref.kind;
    std::string ns = kind.namespaced && !ctx.allNamespaces ? ctx.ns : "";
    auto listAll = [&]() -> Result<json> {
      std::string path =
          resourcePath(kind, ns) + buildQuery({{"labelSelector", options.labelSelector}});
      auto r = ctx.api->call("GET", path);
      if (!r) return r.status();
      if (!r->ok()) return Status(Code::kInternal, serverErrorLine(*r));
      const json* items = jsonAt(r->body, {"items"});
      return items && items->is_array() ? *items : json::array();
    };
    if (ref.names.empty()) {
      auto items = listAll();
      if (!items) {
        const std::string& m = items.status().message();
        err << (m.rfind("Error from server", 0) == 0 ? "" : "error: ") << m << "\n";
        return 1;
      }
      if (items->empty()) {
        err << noResourcesMessage(kind.namespaced, ctx.allNamespaces, ctx.ns) << "\n";
        continue;
      }
      for (const auto& obj : *items) emit(kind, obj);
      continue;
    }
    for (const auto& name : ref.names) {
      auto r = ctx.api->call("GET", resourcePath(kind, effectiveNamespace(kind, ctx.ns), name));
      if (!r) {
        err << "error: " << r.status().message() << "\n";
        return 1;
      }
      if (r->ok()) {
        emit(kind, r->body);
        continue;
      }
      if (r->status == 404) {
        // kubectl falls back to describing every object whose name starts with the argument.
        auto items = listAll();
        bool matched = false;
        if (items) {
          for (const auto& obj : *items) {
            if (stringAt(obj, {"metadata", "name"}).rfind(name, 0) == 0) {
              emit(kind, obj);
              matched = true;
            }
          }
        }
        if (matched) continue;
      }
      err << serverErrorLine(*r) << "\n";
      rc = 1;
    }
  }
  return rc;
}

}  // namespace ep::edgectl
