#include "common/api/printers.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/api/label_selector.h"
#include "common/api/object_util.h"
#include "common/clock.h"

namespace ep::api {
namespace {

using nlohmann::json;

Column nameColumn() {
  return {"Name", "string", "name", "Name of the object, unique within its namespace.", 0};
}
Column ageColumn() {
  return {"Age", "string", "", "Time since the object was created.", 0};
}
Column col(std::string name, std::string type, std::string description, int priority = 0) {
  return {std::move(name), std::move(type), "", std::move(description), priority};
}

std::vector<Column> podColumns() {
  return {nameColumn(),
          col("Ready", "string", "Ready containers out of all containers."),
          col("Status", "string", "Aggregate status of the pod and its containers."),
          col("Restarts", "string", "Total container restarts, with the age of the last one."),
          ageColumn(),
          col("IP", "string", "IP address of the pod.", 1),
          col("Node", "string", "Node the pod is bound to.", 1),
          col("Nominated Node", "string", "Node nominated by the scheduler for preemption.", 1),
          col("Readiness Gates", "string", "Readiness gates that are true, out of all gates.", 1)};
}

std::vector<Column> nodeColumns() {
  return {nameColumn(),
          col("Status", "string", "Readiness of the node; SchedulingDisabled when cordoned."),
          col("Roles", "string", "Roles from node-role.kubernetes.io/<role> labels."),
          ageColumn(),
          col("Version", "string", "Kubelet version reported by the node."),
          col("Internal-IP", "string", "First InternalIP address of the node.", 1),
          col("External-IP", "string", "First ExternalIP address of the node.", 1),
          col("OS-Image", "string", "Operating system image reported by the node.", 1),
          col("Kernel-Version", "string", "Kernel version reported by the node.", 1),
          col("Container-Runtime", "string", "Container runtime name and version.", 1)};
}

std::vector<Column> eventColumns() {
  return {col("Last Seen", "string", "Time since the event was last observed."),
          col("Type", "string", "Event type: Normal or Warning."),
          col("Reason", "string", "Short machine-readable reason."),
          col("Object", "string", "Object the event is about, as kind/name."),
          col("Subobject", "string", "Part of the object the event is about.", 1),
          col("Source", "string", "Component (and host) that reported the event.", 1),
          col("Message", "string", "Human-readable description."),
          col("First Seen", "string", "Time since the event was first observed.", 1),
          col("Count", "integer", "Number of times the event occurred.", 1),
          col("Name", "string", "Name of the event object.", 1)};
}

std::vector<Column> workloadWideColumns() {
  return {col("Containers", "string", "Container names of the pod template.", 1),
          col("Images", "string", "Container images of the pod template.", 1),
          col("Selector", "string", "Label selector of the managed pods.", 1)};
}

std::string ageSince(const json& obj, std::string_view path, int64_t nowMillis) {
  std::string ts = stringAt(obj, path);
  if (ts.empty()) return "<unknown>";
  int64_t t = parseRfc3339(ts);
  if (t < 0) return "<unknown>";
  return formatAge(nowMillis - t);
}

std::string age(const json& obj, int64_t nowMillis) {
  return ageSince(obj, "metadata.creationTimestamp", nowMillis);
}

std::string orNone(std::string s) {
  return s.empty() ? "<none>" : s;
}

const json& arrayAt(const json& obj, std::string_view path) {
  static const json kEmpty = json::array();
  const json* v = lookupPath(obj, path);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

size_t mapSize(const json& obj, std::string_view path) {
  const json* v = lookupPath(obj, path);
  return v != nullptr && v->is_object() ? v->size() : 0;
}

bool hasCondition(const json& obj, std::string_view type, std::string_view status) {
  for (const auto& c : arrayAt(obj, "status.conditions")) {
    if (stringAt(c, "type") == type && stringAt(c, "status") == status) return true;
  }
  return false;
}

// Latest lastState.terminated.finishedAt of a container status, 0 when unknown.
int64_t lastTermination(const json& cs) {
  std::string fin = stringAt(cs, "lastState.terminated.finishedAt");
  if (fin.empty()) return 0;
  int64_t t = parseRfc3339(fin);
  return t < 0 ? 0 : t;
}

std::string terminatedReason(const json& term, const std::string& prefix) {
  std::string r = stringAt(term, "reason");
  if (!r.empty()) return prefix + r;
  int64_t signal = intAt(term, "signal");
  if (signal != 0) return prefix + "Signal:" + std::to_string(signal);
  return prefix + "ExitCode:" + std::to_string(intAt(term, "exitCode"));
}

json podCells(const json& obj, int64_t nowMillis) {
  const json& containers = arrayAt(obj, "spec.containers");
  const json& initContainers = arrayAt(obj, "spec.initContainers");
  int64_t restarts = 0;
  int64_t restartableInitRestarts = 0;
  int64_t total = static_cast<int64_t>(containers.size());
  int64_t ready = 0;
  int64_t lastRestart = 0;
  int64_t lastRestartableInitRestart = 0;

  std::string phase = stringAt(obj, "status.phase");
  if (phase.empty()) phase = "Pending";
  std::string reason = phase;
  if (std::string r = stringAt(obj, "status.reason"); !r.empty()) reason = r;
  for (const auto& c : arrayAt(obj, "status.conditions")) {
    if (stringAt(c, "type") == "PodScheduled" && stringAt(c, "reason") == "SchedulingGated") {
      reason = "SchedulingGated";
    }
  }

  std::set<std::string> restartableInit;
  for (const auto& ic : initContainers) {
    if (stringAt(ic, "restartPolicy") == "Always") {
      restartableInit.insert(stringAt(ic, "name"));
      ++total;
    }
  }

  bool initializing = false;
  const json& initStatuses = arrayAt(obj, "status.initContainerStatuses");
  for (size_t i = 0; i < initStatuses.size(); ++i) {
    const json& cs = initStatuses[i];
    int64_t rc = intAt(cs, "restartCount");
    restarts += rc;
    lastRestart = std::max(lastRestart, lastTermination(cs));
    bool restartable = restartableInit.count(stringAt(cs, "name")) > 0;
    if (restartable) {
      restartableInitRestarts += rc;
      lastRestartableInitRestart = std::max(lastRestartableInitRestart, lastTermination(cs));
    }
    const json* term = lookupPath(cs, "state.terminated");
    const json* waiting = lookupPath(cs, "state.waiting");
    bool hasTerm = term != nullptr && term->is_object();
    if (hasTerm && intAt(*term, "exitCode") == 0) continue;
    const json* started = lookupPath(cs, "started");
    if (restartable && started != nullptr && *started == true) {
      const json* r = lookupPath(cs, "ready");
      if (r != nullptr && *r == true) ++ready;
      continue;
    }
    std::string waitingReason = waiting != nullptr ? stringAt(*waiting, "reason") : "";
    if (hasTerm) {
      reason = terminatedReason(*term, "Init:");
    } else if (!waitingReason.empty() && waitingReason != "PodInitializing") {
      reason = "Init:" + waitingReason;
    } else {
      reason = "Init:" + std::to_string(i) + "/" + std::to_string(initContainers.size());
    }
    initializing = true;
    break;
  }

  if (!initializing || hasCondition(obj, "Initialized", "True")) {
    restarts = restartableInitRestarts;
    lastRestart = lastRestartableInitRestart;
    bool hasRunning = false;
    const json& statuses = arrayAt(obj, "status.containerStatuses");
    for (size_t n = statuses.size(); n > 0; --n) {
      const json& cs = statuses[n - 1];
      restarts += intAt(cs, "restartCount");
      lastRestart = std::max(lastRestart, lastTermination(cs));
      const json* term = lookupPath(cs, "state.terminated");
      const json* waiting = lookupPath(cs, "state.waiting");
      const json* running = lookupPath(cs, "state.running");
      const json* r = lookupPath(cs, "ready");
      std::string waitingReason = waiting != nullptr ? stringAt(*waiting, "reason") : "";
      if (!waitingReason.empty()) {
        reason = waitingReason;
      } else if (term != nullptr && term->is_object()) {
        reason = terminatedReason(*term, "");
      } else if (r != nullptr && *r == true && running != nullptr && running->is_object()) {
        hasRunning = true;
        ++ready;
      }
    }
    if (reason == "Completed" && hasRunning) {
      reason = hasCondition(obj, "Ready", "True") ? "Running" : "NotReady";
    }
  }

  if (lookupPath(obj, "metadata.deletionTimestamp") != nullptr &&
      !lookupPath(obj, "metadata.deletionTimestamp")->is_null()) {
    if (stringAt(obj, "status.reason") == "NodeLost") {
      reason = "Unknown";
    } else if (phase != "Succeeded" && phase != "Failed") {
      reason = "Terminating";
    }
  }

  json restartsCell = restarts;
  if (restarts != 0 && lastRestart != 0) {
    restartsCell = std::to_string(restarts) + " (" + formatAge(nowMillis - lastRestart) + " ago)";
  }

  std::string podIp = stringAt(obj, "status.podIPs[0].ip");
  if (podIp.empty()) podIp = stringAt(obj, "status.podIP");

  std::string gates = "<none>";
  const json& readinessGates = arrayAt(obj, "spec.readinessGates");
  if (!readinessGates.empty()) {
    size_t trueCount = 0;
    for (const auto& g : readinessGates) {
      std::string type = stringAt(g, "conditionType");
      for (const auto& c : arrayAt(obj, "status.conditions")) {
        if (stringAt(c, "type") == type) {
          if (stringAt(c, "status") == "True") ++trueCount;
          break;
        }
      }
    }
    gates = std::to_string(trueCount) + "/" + std::to_string(readinessGates.size());
  }

  return json::array({stringAt(obj, "metadata.name"),
                      std::to_string(ready) + "/" + std::to_string(total), reason, restartsCell,
                      age(obj, nowMillis), orNone(podIp), orNone(stringAt(obj, "spec.nodeName")),
                      orNone(stringAt(obj, "status.nominatedNodeName")), gates});
}

std::string nodeAddress(const json& obj, std::string_view type) {
  for (const auto& a : arrayAt(obj, "status.addresses")) {
    if (stringAt(a, "type") == type) return stringAt(a, "address");
  }
  return "";
}

json nodeCells(const json& obj, int64_t nowMillis) {
  std::string status = "Unknown";
  for (const auto& c : arrayAt(obj, "status.conditions")) {
    if (stringAt(c, "type") == "Ready") {
      status = stringAt(c, "status") == "True" ? "Ready" : "NotReady";
      break;
    }
  }
  const json* unsched = lookupPath(obj, "spec.unschedulable");
  if (unsched != nullptr && *unsched == true) status += ",SchedulingDisabled";

  std::set<std::string> roles;
  constexpr std::string_view kRolePrefix = "node-role.kubernetes.io/";
  for (const auto& [k, v] : labelsOf(obj)) {
    if (k.compare(0, kRolePrefix.size(), kRolePrefix) == 0 && k.size() > kRolePrefix.size()) {
      roles.insert(k.substr(kRolePrefix.size()));
    } else if (k == "kubernetes.io/role" && !v.empty()) {
      roles.insert(v);
    }
  }
  std::string rolesCell;
  for (const auto& r : roles) {
    if (!rolesCell.empty()) rolesCell += ',';
    rolesCell += r;
  }
  auto orUnknown = [](std::string s) { return s.empty() ? std::string("<unknown>") : s; };
  return json::array(
      {stringAt(obj, "metadata.name"), status, orNone(rolesCell), age(obj, nowMillis),
       stringAt(obj, "status.nodeInfo.kubeletVersion"), orNone(nodeAddress(obj, "InternalIP")),
       orNone(nodeAddress(obj, "ExternalIP")), orUnknown(stringAt(obj, "status.nodeInfo.osImage")),
       orUnknown(stringAt(obj, "status.nodeInfo.kernelVersion")),
       orUnknown(stringAt(obj, "status.nodeInfo.containerRuntimeVersion"))});
}

json eventCells(const json& obj, int64_t nowMillis) {
  std::string first = ageSince(obj, "firstTimestamp", nowMillis);
  if (stringAt(obj, "firstTimestamp").empty()) first = ageSince(obj, "eventTime", nowMillis);
  std::string last = ageSince(obj, "lastTimestamp", nowMillis);
  if (stringAt(obj, "lastTimestamp").empty()) last = first;
  int64_t count = intAt(obj, "count");
  const json* series = lookupPath(obj, "series");
  if (series != nullptr && series->is_object()) {
    last = ageSince(*series, "lastObservedTime", nowMillis);
    count = intAt(*series, "count");
  } else if (count == 0) {
    count = 1;
  }
  std::string kind = stringAt(obj, "involvedObject.kind");
  std::transform(kind.begin(), kind.end(), kind.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string name = stringAt(obj, "involvedObject.name");
  std::string target = name.empty() ? kind : kind + "/" + name;

  std::string component = stringAt(obj, "source.component");
  if (component.empty()) component = stringAt(obj, "reportingComponent");
  std::string host = stringAt(obj, "source.host");
  if (host.empty()) host = stringAt(obj, "reportingInstance");
  std::string source = host.empty() ? component : component + ", " + host;

  std::string message = stringAt(obj, "message");
  auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!message.empty() && blank(message.back())) message.pop_back();
  message.erase(message.begin(), std::find_if_not(message.begin(), message.end(), blank));

  return json::array({last, stringAt(obj, "type"), stringAt(obj, "reason"), target,
                      stringAt(obj, "involvedObject.fieldPath"), source, message, first, count,
                      stringAt(obj, "metadata.name")});
}

json workloadWideCells(const json& obj) {
  std::string names;
  std::string images;
  const json& containers = arrayAt(obj, "spec.template.spec.containers");
  for (size_t i = 0; i < containers.size(); ++i) {
    if (i > 0) {
      names += ',';
      images += ',';
    }
    names += stringAt(containers[i], "name");
    images += stringAt(containers[i], "image");
  }
  std::string selector;
  if (const json* sel = lookupPath(obj, "spec.selector")) {
    auto parsed = labelSelectorFromJson(*sel);
    selector = parsed.isOk() ? parsed->toString() : "<invalid>";
  }
  return json::array({names, images, selector});
}

// "name=value,..." of a Device's reported twin values, in status order.
std::string reportedValues(const json& obj) {
  std::string out;
  for (const auto& t : arrayAt(obj, "status.twins")) {
    if (!t.is_object()) continue;
    const std::string property = stringAt(t, "propertyName");
    const json* value = lookupPath(t, "reported.value");
    if (property.empty() || value == nullptr || !value->is_string()) continue;
    if (!out.empty()) out += ',';
    out += property + "=" + value->get<std::string>();
  }
  return out;
}

int64_t desiredReplicas(const json& obj) {
  return intAt(obj, "spec.replicas", 1);
}

// "a, b, c + N more..." of kubectl's endpoint columns: at most three shown.
std::string firstThree(const std::vector<std::string>& items, const char* none) {
  if (items.empty()) return none;
  std::string out;
  for (size_t i = 0; i < items.size() && i < 3; ++i) out += (i ? "," : "") + items[i];
  if (items.size() > 3) out += " + " + std::to_string(items.size() - 3) + " more...";
  return out;
}

json serviceCells(const json& obj, int64_t nowMillis) {
  const std::string type = stringAt(obj, "spec.type", "ClusterIP");
  std::string clusterIp = stringAt(obj, "spec.clusterIP");
  std::vector<std::string> external;
  for (const auto& ip : arrayAt(obj, "spec.externalIPs")) {
    if (ip.is_string()) external.push_back(ip.get<std::string>());
  }
  std::string externalText;
  if (type == "ExternalName") {
    externalText = stringAt(obj, "spec.externalName");
  } else if (type == "LoadBalancer") {
    std::vector<std::string> lb;
    for (const auto& ing : arrayAt(obj, "status.loadBalancer.ingress")) {
      std::string v = stringAt(ing, "ip");
      if (v.empty()) v = stringAt(ing, "hostname");
      if (!v.empty()) lb.push_back(v);
    }
    lb.insert(lb.end(), external.begin(), external.end());
    externalText = lb.empty() ? "<pending>" : "";
    for (size_t i = 0; i < lb.size(); ++i) externalText += (i ? "," : "") + lb[i];
  } else {
    for (size_t i = 0; i < external.size(); ++i) externalText += (i ? "," : "") + external[i];
  }
  std::string ports;
  for (const auto& p : arrayAt(obj, "spec.ports")) {
    if (!ports.empty()) ports += ",";
    ports += std::to_string(intAt(p, "port"));
    if (intAt(p, "nodePort") > 0) ports += ":" + std::to_string(intAt(p, "nodePort"));
    ports += "/" + stringAt(p, "protocol", "TCP");
  }
  std::string selector;
  if (const json* sel = lookupPath(obj, "spec.selector"); sel != nullptr && sel->is_object()) {
    for (auto it = sel->begin(); it != sel->end(); ++it) {
      if (!selector.empty()) selector += ",";
      selector += it.key() + "=" + (it.value().is_string() ? it.value().get<std::string>() : "");
    }
  }
  return json::array({stringAt(obj, "metadata.name"), type, orNone(clusterIp), orNone(externalText),
                      orNone(ports), age(obj, nowMillis), orNone(selector)});
}

json endpointsCells(const json& obj, int64_t nowMillis) {
  std::vector<std::string> items;
  for (const auto& subset : arrayAt(obj, "subsets")) {
    const auto& ports = arrayAt(subset, "ports");
    const auto& addresses = arrayAt(subset, "addresses");
    if (ports.empty()) {  // a headless Service may have no ports
      for (const auto& a : addresses) items.push_back(stringAt(a, "ip"));
      continue;
    }
    for (const auto& p : ports) {
      for (const auto& a : addresses) {
        items.push_back(stringAt(a, "ip") + ":" + std::to_string(intAt(p, "port")));
      }
    }
  }
  return json::array(
      {stringAt(obj, "metadata.name"), firstThree(items, "<none>"), age(obj, nowMillis)});
}

json endpointSliceCells(const json& obj, int64_t nowMillis) {
  std::vector<std::string> ports;
  for (const auto& p : arrayAt(obj, "ports")) {
    ports.push_back(p.contains("port") ? std::to_string(intAt(p, "port")) : "<unset>");
  }
  std::string portsText = ports.empty() ? "<unset>" : "";
  for (size_t i = 0; i < ports.size(); ++i) portsText += (i ? "," : "") + ports[i];
  std::vector<std::string> addresses;
  for (const auto& e : arrayAt(obj, "endpoints")) {
    for (const auto& a : arrayAt(e, "addresses")) {
      if (a.is_string()) addresses.push_back(a.get<std::string>());
    }
  }
  return json::array({stringAt(obj, "metadata.name"), stringAt(obj, "addressType"), portsText,
                      firstThree(addresses, "<unset>"), age(obj, nowMillis)});
}

}  // namespace

const std::vector<Column>& tableColumns(const KindInfo& kind) {
  static const auto* byKind = [] {
    auto* m = new std::map<std::string, std::vector<Column>>();
    (*m)["/Pod"] = podColumns();
    (*m)["/Node"] = nodeColumns();
    (*m)["/Namespace"] = {nameColumn(), col("Status", "string", "Phase of the namespace."),
                          ageColumn()};
    (*m)["/ConfigMap"] = {nameColumn(), col("Data", "integer", "Number of data entries."),
                          ageColumn()};
    (*m)["/Secret"] = {nameColumn(), col("Type", "string", "Type of the secret."),
                       col("Data", "integer", "Number of data entries."), ageColumn()};
    (*m)["/Event"] = eventColumns();
    std::vector<Column> deploy = {
        nameColumn(), col("Ready", "string", "Ready replicas out of desired replicas."),
        col("Up-to-date", "integer", "Replicas updated to the current template."),
        col("Available", "integer", "Replicas available to users."), ageColumn()};
    auto wide = workloadWideColumns();
    deploy.insert(deploy.end(), wide.begin(), wide.end());
    (*m)["apps/Deployment"] = deploy;
    std::vector<Column> rs = {nameColumn(), col("Desired", "integer", "Desired replicas."),
                              col("Current", "integer", "Replicas created."),
                              col("Ready", "integer", "Replicas ready."), ageColumn()};
    rs.insert(rs.end(), wide.begin(), wide.end());
    (*m)["apps/ReplicaSet"] = rs;
    (*m)["devices.kubeedge.io/Device"] = {
        nameColumn(),
        col("Model", "string", "Device model (spec.deviceModelRef.name)."),
        col("Node", "string", "Node the device is bound to."),
        col("State", "string", "State the device last reported."),
        ageColumn(),
        col("Protocol", "string", "Protocol the device's mapper speaks.", 1),
        col("Last-Online", "string", "Time since the device last reported being online.", 1),
        col("Reported", "string", "Property values the device last reported.", 1)};
    (*m)["/Service"] = {
        nameColumn(),
        col("Type", "string", "The type of the service."),
        col("Cluster-IP", "string", "The cluster IP of the service."),
        col("External-IP", "string", "The external IP addresses of the service."),
        col("Port(s)", "string", "The ports of the service (port[:nodePort]/protocol)."),
        ageColumn(),
        col("Selector", "string", "The labels of the pods the service routes to.", 1)};
    (*m)["/Endpoints"] = {nameColumn(),
                          col("Endpoints", "string", "Endpoints of the service (ip:port)."),
                          ageColumn()};
    (*m)["discovery.k8s.io/EndpointSlice"] = {
        nameColumn(), col("AddressType", "string", "Type of the addresses."),
        col("Ports", "string", "Ports of the endpoints."),
        col("Endpoints", "string", "Addresses of the endpoints."), ageColumn()};
    (*m)["coordination.k8s.io/Lease"] = {
        nameColumn(), col("Holder", "string", "The holder of the lease (spec.holderIdentity)."),
        ageColumn()};
    (*m)["devices.kubeedge.io/DeviceModel"] = {
        nameColumn(), col("Protocol", "string", "Protocol of the model's devices."),
        col("Properties", "integer", "Number of properties."), ageColumn()};
    return m;
  }();
  static const auto* fallback = new std::vector<Column>{nameColumn(), ageColumn()};
  auto it = byKind->find(kind.group + "/" + kind.kind);
  return it == byKind->end() ? *fallback : it->second;
}

nlohmann::json tableCells(const KindInfo& kind, const nlohmann::json& obj, int64_t nowMillis) {
  try {
    const std::string id = kind.group + "/" + kind.kind;
    std::string name = stringAt(obj, "metadata.name");
    if (id == "/Pod") return podCells(obj, nowMillis);
    if (id == "/Node") return nodeCells(obj, nowMillis);
    if (id == "/Event") return eventCells(obj, nowMillis);
    if (id == "/Service") return serviceCells(obj, nowMillis);
    if (id == "/Endpoints") return endpointsCells(obj, nowMillis);
    if (id == "discovery.k8s.io/EndpointSlice") return endpointSliceCells(obj, nowMillis);
    if (id == "coordination.k8s.io/Lease") {
      return json::array({name, stringAt(obj, "spec.holderIdentity"), age(obj, nowMillis)});
    }
    if (id == "/Namespace") {
      return json::array({name, stringAt(obj, "status.phase"), age(obj, nowMillis)});
    }
    if (id == "/ConfigMap") {
      return json::array(
          {name, mapSize(obj, "data") + mapSize(obj, "binaryData"), age(obj, nowMillis)});
    }
    if (id == "/Secret") {
      return json::array({name, stringAt(obj, "type"), mapSize(obj, "data"), age(obj, nowMillis)});
    }
    if (id == "apps/Deployment") {
      json cells = json::array({name,
                                std::to_string(intAt(obj, "status.readyReplicas")) + "/" +
                                    std::to_string(desiredReplicas(obj)),
                                intAt(obj, "status.updatedReplicas"),
                                intAt(obj, "status.availableReplicas"), age(obj, nowMillis)});
      for (auto& c : workloadWideCells(obj)) cells.push_back(std::move(c));
      return cells;
    }
    if (id == "apps/ReplicaSet") {
      json cells = json::array({name, desiredReplicas(obj), intAt(obj, "status.replicas"),
                                intAt(obj, "status.readyReplicas"), age(obj, nowMillis)});
      for (auto& c : workloadWideCells(obj)) cells.push_back(std::move(c));
      return cells;
    }
    if (id == "devices.kubeedge.io/Device") {
      std::string lastOnline = stringAt(obj, "status.lastOnlineTime");
      return json::array(
          {name, stringAt(obj, "spec.deviceModelRef.name"), orNone(stringAt(obj, "spec.nodeName")),
           orNone(stringAt(obj, "status.state")), age(obj, nowMillis),
           orNone(stringAt(obj, "spec.protocol.protocolName")),
           lastOnline.empty() ? "<none>" : ageSince(obj, "status.lastOnlineTime", nowMillis),
           orNone(reportedValues(obj))});
    }
    if (id == "devices.kubeedge.io/DeviceModel") {
      return json::array({name, orNone(stringAt(obj, "spec.protocol")),
                          static_cast<int64_t>(arrayAt(obj, "spec.properties").size()),
                          age(obj, nowMillis)});
    }
    return json::array({name, age(obj, nowMillis)});
  } catch (...) {
    json cells = json::array();
    for (size_t i = 0; i < tableColumns(kind).size(); ++i) cells.push_back("");
    return cells;
  }
}

}  // namespace ep::api
