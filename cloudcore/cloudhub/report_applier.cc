#include "cloudcore/cloudhub/report_applier.h"

#include <spdlog/spdlog.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cloudcore/cloudhub/node_leases.h"
#include "cloudcore/devicedata/device_data_store.h"
#include "common/api/json_limits.h"
#include "common/api/models.h"
#include "common/api/names.h"
#include "common/api/object_util.h"
#include "proto/tunnel.pb.h"

namespace ep::cloudhub {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxDepth = 64;

bool transient(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTimeout ||
         s.code() == Code::kConflict || s.code() == Code::kInternal;
}

ReportResult fromStatus(const Status& s, const std::string& what) {
  if (transient(s)) return {ReportOutcome::kRetry, what + ": " + s.toString()};
  return {ReportOutcome::kRejected, what + ": " + s.toString()};
}

ReportResult rejected(std::string why) {
  return {ReportOutcome::kRejected, std::move(why)};
}

// Parses a payload that must be a JSON object of sane depth.
bool parseObject(const std::string& payload, Json& out, std::string& why) {
  bool tooDeep = false;
  out = api::parseJsonBounded(payload, kMaxDepth, &tooDeep);
  if (tooDeep) {
    why = "payload nests too deeply";
    return false;
  }
  if (out.is_discarded()) {
    why = "payload is not valid JSON";
    return false;
  }
  if (!out.is_object()) {
    why = "payload is not a JSON object";
    return false;
  }
  if (api::nestedDeeperThan(out, kMaxDepth)) {
    why = "payload nests too deeply";
    return false;
  }
  return true;
}

// For each condition in `status` whose type and status equal one in `stored`, the stored
// lastTransitionTime is kept.
void keepTransitionTimes(Json& status, const Json& stored) {
  auto conditions = status.find("conditions");
  auto before = stored.is_object() ? stored.find("conditions") : stored.end();
  if (conditions == status.end() || !conditions->is_array() || !stored.is_object() ||
      before == stored.end() || !before->is_array()) {
    return;
  }
  for (auto& c : *conditions) {
    if (!c.is_object()) continue;
    for (const auto& old : *before) {
      if (!old.is_object() || old.value("type", Json()) != c.value("type", Json()) ||
          old.value("status", Json()) != c.value("status", Json())) {
        continue;
      }
      if (auto t = old.find("lastTransitionTime"); t != old.end()) c["lastTransitionTime"] = *t;
      break;
    }
  }
}

const api::KindInfo& kindOf(const char* kind) {
  return *api::findByApiVersionKind("v1", kind);
}

// `status` without its conditions' lastHeartbeatTime.
Json withoutHeartbeats(Json status) {
  if (auto c = status.find("conditions"); c != status.end() && c->is_array()) {
    for (auto& condition : *c) {
      if (condition.is_object()) condition.erase("lastHeartbeatTime");
    }
  }
  return status;
}

// The Ready condition's lastHeartbeatTime in `status` (Unix ms), or -1.
int64_t readyHeartbeatMillis(const Json& status) {
  const Json* conditions = api::lookupPath(status, "conditions");
  if (conditions == nullptr || !conditions->is_array()) return -1;
  for (const auto& c : *conditions) {
    if (c.is_object() && c.value("type", Json()) == "Ready") {
      const Json& t = c.value("lastHeartbeatTime", Json());
      return t.is_string() ? parseRfc3339(t.get<std::string>()) : -1;
    }
  }
  return -1;
}

}  // namespace

ReportApplier::ReportApplier(registry::Registry& registry, bool autoRegister,
                             devicedata::DeviceDataStore* deviceData, RoutedMessageSink* routed,
                             NodeLeases* leases, Clock& clock)
    : registry_(registry),
      autoRegister_(autoRegister),
      deviceData_(deviceData),
      routed_(routed),
      leases_(leases),
      clock_(clock) {}

ReportResult ReportApplier::apply(const std::string& node, const ReportInput& report) {
  switch (static_cast<ReportKind>(report.kind)) {
    case ReportKind::kNodeStatus:
      return applyNodeStatus(node, report);
    case ReportKind::kPodStatus:
      return applyPodStatus(node, report);
    case ReportKind::kEvent:
      return applyEvent(node, report);
    case ReportKind::kDeviceTwin:
      return applyDeviceTwin(node, report);
    case ReportKind::kData:
      return applyData(node, report);
    case ReportKind::kRoutedMessage:
      return applyRoutedMessage(node, report);
    case ReportKind::kModelStatus:
      return applyModelStatus(node, report);
    case ReportKind::kCommandResult:
      spdlog::debug("cloudhub: node {}: report kind {} not handled yet; acknowledged", node,
                    report.kind);
      return {ReportOutcome::kApplied, "not handled yet"};
    default:
      return rejected("unknown report kind " + std::to_string(report.kind));
  }
}

ReportResult ReportApplier::applyNodeStatus(const std::string& node, const ReportInput& report) {
  Json reported;
  std::string why;
  if (!parseObject(report.payload, reported, why)) return rejected("node status: " + why);
  // The payload is a full Node; accept a bare status too (then nothing but status is known).
  Json status = reported.contains("status") ? reported["status"] : reported;
  if (!status.is_object()) return rejected("node status: status is not an object");
  std::string bodyName = api::stringAt(reported, "metadata.name");
  if (!bodyName.empty() && bodyName != node) {
    return rejected("node status: metadata.name \"" + bodyName + "\" is not the node \"" + node +
                    "\"");
  }
  std::map<std::string, std::string> labels = api::labelsOf(reported);
  const auto& kind = kindOf("Node");

  auto current = registry_.get(kind, "", node);
  if (!current.isOk() && current.status().code() != Code::kNotFound) {
    return fromStatus(current.status(), "reading node");
  }
  if (!current.isOk()) {
    if (!autoRegister_) return rejected("node is not registered and registration is manual");
    Json obj = Json::object();
    obj["apiVersion"] = "v1";
    obj["kind"] = "Node";
    obj["metadata"] = Json::object();
    obj["metadata"]["name"] = node;
    if (!labels.empty()) obj["metadata"]["labels"] = labels;
    if (reported.contains("spec") && reported["spec"].is_object()) obj["spec"] = reported["spec"];
    obj["status"] = status;
    auto created = registry_.create(kind, "", obj);
    if (created.isOk()) {
      spdlog::info("cloudhub: registered node {}", node);
      if (leases_ != nullptr) leases_->renew(node);
      return {};
    }
    if (created.status().code() != Code::kAlreadyExists) {
      return fromStatus(created.status(), "registering node");
    }
    current = registry_.get(kind, "", node);  // lost a race: update instead
    if (!current.isOk()) return fromStatus(current.status(), "reading node");
  }
  // Labels the edge reports are merged in; labels it does not mention (an operator's) stay.
  auto have = api::labelsOf(*current);
  bool labelsChanged = false;
  for (const auto& [k, v] : labels) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) labelsChanged = true;
  }
  if (labelsChanged) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      Json next = *current;
      for (const auto& [k, v] : labels) next["metadata"]["labels"][k] = v;
      auto r = registry_.update(kind, "", node, next);  // CAS on its resourceVersion
      if (r.isOk()) break;
      if (r.status().code() != Code::kConflict || attempt == 4) {
        if (transient(r.status())) return fromStatus(r.status(), "merging node labels");
        spdlog::warn("cloudhub: node {}: labels not merged: {}", node, r.status().toString());
        break;
      }
      current = registry_.get(kind, "", node);
      if (!current.isOk()) return fromStatus(current.status(), "reading node");
    }
  }
  // A condition whose status did not change keeps the time it last changed: the edge reports
  // every condition with each heartbeat.
  const Json stored = current->value("status", Json::object());
  keepTransitionTimes(status, stored);
  if (leases_ != nullptr) {
    // The stored heartbeat is the edge's clock: one ahead of ours (a negative age) writes too.
    const int64_t heartbeat = readyHeartbeatMillis(stored);
    const int64_t age = clock_.nowMillis() - heartbeat;
    if (heartbeat >= 0 && age >= 0 &&
        age < std::chrono::duration_cast<std::chrono::milliseconds>(kUnchangedNodeStatusWriteAfter)
                  .count() &&
        withoutHeartbeats(status) == withoutHeartbeats(stored)) {
      // Nothing new but that the node is alive: the Lease says so, written before the report
      // is acknowledged (this runs on the worker pool), so the node controller never sees the
      // report's liveness missing from both. Should the Lease not be written, or have expired
      // before (the node controller may be marking the node Unknown right now), the Node is.
      auto renewed = leases_->renewNow(node);
      if (renewed.isOk() && *renewed == NodeLeases::Renewal::kRenewed) return {};
    }
  }
  Json body = Json::object();
  body["status"] = status;
  auto r = registry_.update(kind, "", node, body, registry::Subresource::kStatus);
  if (!r.isOk()) return fromStatus(r.status(), "updating node status");
  if (leases_ != nullptr) leases_->renew(node);
  return {};
}

// A Device's status as its node's twin holds it (devices.kubeedge.io/v1beta1 DeviceStatus):
// twins[] with reported/observedDesired {value, metadata}, state, lastOnlineTime. It replaces
// the stored status: the edge's twin is the status's only writer.
ReportResult ReportApplier::applyDeviceTwin(const std::string& node, const ReportInput& report) {
  const std::string what = "device status " + report.namespace_ + "/" + report.name;
  if (!api::checkDns1123Label(report.namespace_).empty() ||
      !api::checkDns1123Subdomain(report.name).empty()) {
    return rejected("device status: invalid device namespace/name \"" + report.namespace_ + "/" +
                    report.name + "\"");
  }
  Json status;
  std::string why;
  if (!parseObject(report.payload, status, why)) return rejected(what + ": " + why);
  for (const auto& [k, v] : status.items()) {
    if (k == "twins") {
      if (!v.is_array()) return rejected(what + ": twins: must be a list");
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string at = what + ": twins[" + std::to_string(i) + "]";
        const Json& t = v[i];
        if (!t.is_object() || !t.contains("propertyName") || !t["propertyName"].is_string()) {
          return rejected(at + ".propertyName: must be a string");
        }
        for (const char* part : {"reported", "observedDesired"}) {
          if (!t.contains(part)) continue;
          const Json& p = t[part];
          if (!p.is_object() || (p.contains("value") && !p["value"].is_string())) {
            return rejected(at + "." + part + ".value: must be a string");
          }
          if (p.contains("metadata")) {
            if (!p["metadata"].is_object())
              return rejected(at + "." + part + ".metadata: must be a map");
            for (const auto& [mk, mv] : p["metadata"].items()) {
              if (!mv.is_string())
                return rejected(at + "." + part + ".metadata." + mk + ": must be a string");
            }
          }
        }
      }
    } else if (k == "state" || k == "lastOnlineTime") {
      if (!v.is_string()) return rejected(what + ": " + k + ": must be a string");
    } else {
      return rejected(what + ": " + k + ": unknown field of DeviceStatus");
    }
  }
  const auto& kind = *api::findByApiVersionKind("devices.kubeedge.io/v1beta1", "Device");
  auto device = registry_.get(kind, report.namespace_, report.name);
  if (!device.isOk()) {
    if (device.status().code() == Code::kNotFound) return rejected(what + ": device not found");
    return fromStatus(device.status(), "reading device");
  }
  const std::string boundTo = api::stringAt(*device, "spec.nodeName");
  if (boundTo != node) {
    return rejected(what + ": the device is bound to \"" + boundTo + "\", not to this node");
  }
  if (device->value("status", Json::object()) == status) return {};
  Json body = Json::object();
  body["status"] = status;
  auto r =
      registry_.update(kind, report.namespace_, report.name, body, registry::Subresource::kStatus);
  if (!r.isOk()) return fromStatus(r.status(), "updating device status");
  return {};
}

// A node's state of one Model: {"state": "Ready|Downloading|Waiting|Failed|Unused", "version",
// "digest", "have": [versions on the node], "pods": N, "bytes", "size", "error"}. Recorded as
// status.nodes[NODE] of the Model, and status.versions (per version: nodes that have it, pods
// using it) recomputed from all nodes. Node authorization: the node must run a pod that uses the
// Model (or report "Unused", which only removes its own entry).
ReportResult ReportApplier::applyModelStatus(const std::string& node, const ReportInput& report) {
  const std::string what = "model status " + report.namespace_ + "/" + report.name;
  if (!api::checkDns1123Label(report.namespace_).empty() ||
      !api::checkDns1123Subdomain(report.name).empty()) {
    return rejected("model status: invalid model namespace/name \"" + report.namespace_ + "/" +
                    report.name + "\"");
  }
  Json in;
  std::string why;
  if (!parseObject(report.payload, in, why)) return rejected(what + ": " + why);
  Json entry = Json::object();
  for (const auto& [k, v] : in.items()) {
    if (k == "state" || k == "version" || k == "digest" || k == "error") {
      if (!v.is_string() || v.get_ref<const std::string&>().size() > 1024) {
        return rejected(what + ": " + k + ": must be a string of at most 1024 bytes");
      }
    } else if (k == "pods" || k == "bytes" || k == "size") {
      if (!v.is_number_unsigned()) return rejected(what + ": " + k + ": must be a count");
    } else if (k == "have") {
      if (!v.is_array() || v.size() > api::kMaxModelHistory) {
        return rejected(what + ": have: must be a list of at most 20 versions");
      }
      for (const auto& h : v) {
        if (!h.is_string()) return rejected(what + ": have: must be a list of versions");
      }
    } else {
      return rejected(what + ": " + k + ": unknown field");
    }
    entry[k] = v;
  }
  const std::string state = entry.value("state", "");
  static const std::set<std::string> kStates = {"Ready", "Downloading", "Waiting", "Failed",
                                                "Unused"};
  if (!kStates.count(state)) return rejected(what + ": state: unknown state \"" + state + "\"");
  const auto& kind = *api::findByApiVersionKind("sedna.io/v1alpha1", "Model");
  if (state != "Unused") {
    registry::ListQuery q;
    q.fieldSelector = "spec.nodeName=" + node;
    auto pods = registry_.list(kindOf("Pod"), report.namespace_, q);
    if (!pods.isOk()) return fromStatus(pods.status(), "listing pods");
    bool used = false;
    for (const auto& p : pods->items) {
      for (const auto& v : api::modelVolumes(p)) used = used || v.model == report.name;
    }
    if (!used) return rejected(what + ": no pod on this node uses the model");
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto model = registry_.get(kind, report.namespace_, report.name);
    if (!model.isOk()) {
      if (model.status().code() == Code::kNotFound) return {};  // deleted meanwhile: nothing to do
      return fromStatus(model.status(), "reading model");
    }
    Json status = model->value("status", Json::object());
    if (!status.is_object()) status = Json::object();
    Json nodes = status.value("nodes", Json::object());
    if (!nodes.is_object()) nodes = Json::object();
    if (state == "Unused") {
      if (!nodes.contains(node)) return {};
      nodes.erase(node);
    } else {
      entry.erase("state");
      entry["state"] = state;
      if (nodes.contains(node) && nodes[node] == entry) return {};
      nodes[node] = entry;
    }
    // Per version: nodes that hold it, pods using it (pods count for the version their node
    // serves once it is Ready there).
    std::map<std::string, std::pair<uint64_t, uint64_t>> perVersion;
    for (const auto& [n, e] : nodes.items()) {
      if (!e.is_object()) continue;
      for (const auto& h : e.value("have", Json::array())) {
        if (h.is_string()) perVersion[h.get<std::string>()].first += 1;
      }
      if (e.value("state", "") == "Ready" && e.contains("version") && e["version"].is_string()) {
        perVersion[e["version"].get<std::string>()].second += e.value("pods", uint64_t{0});
      }
    }
    Json versions = Json::array();
    for (const auto& [v, counts] : perVersion) {
      versions.push_back({{"version", v}, {"nodes", counts.first}, {"pods", counts.second}});
    }
    status["nodes"] = std::move(nodes);
    status["versions"] = std::move(versions);
    Json body = {{"status", status}};
    if (const Json* rv = api::lookupPath(*model, "metadata.resourceVersion")) {
      body["metadata"]["resourceVersion"] = *rv;
    }
    auto r = registry_.update(kind, report.namespace_, report.name, body,
                              registry::Subresource::kStatus);
    if (r.isOk()) return {};
    if (r.status().code() != Code::kConflict)
      return fromStatus(r.status(), "updating model status");
  }
  return fromStatus(Status(Code::kConflict, "model status kept changing"), "updating model status");
}

// Device data: {"devices": [{"namespace", "name", "samples": [{"property", "timestamp",
// "value"}]}]}. The shape is all or nothing (a malformed report is refused whole); samples of a
// device that is gone or no longer bound to this node, or of a property its spec no longer
// lists, are dropped and logged, and the rest is kept.
ReportResult ReportApplier::applyData(const std::string& node, const ReportInput& report) {
  Json body;
  std::string why;
  if (!parseObject(report.payload, body, why)) return rejected("device data: " + why);
  auto devices = body.find("devices");
  if (devices == body.end() || !devices->is_array()) {
    return rejected("device data: devices: must be a list");
  }
  std::vector<devicedata::DeviceSamples> batch;
  uint32_t position = 0;  // each sample's place in the report: its identity with the sequence
  for (size_t i = 0; i < devices->size(); ++i) {
    const std::string at = "device data: devices[" + std::to_string(i) + "]";
    const Json& d = (*devices)[i];
    if (!d.is_object()) return rejected(at + ": must be an object");
    devicedata::DeviceSamples ds;
    for (const char* f : {"namespace", "name"}) {
      auto v = d.find(f);
      if (v == d.end() || !v->is_string()) return rejected(at + "." + f + ": must be a string");
    }
    ds.ns = d["namespace"].get<std::string>();
    ds.device = d["name"].get<std::string>();
    auto samples = d.find("samples");
    if (samples == d.end() || !samples->is_array()) {
      return rejected(at + ".samples: must be a list");
    }
    for (size_t j = 0; j < samples->size(); ++j) {
      const std::string sat = at + ".samples[" + std::to_string(j) + "]";
      const Json& s = (*samples)[j];
      if (!s.is_object()) return rejected(sat + ": must be an object");
      auto p = s.find("property");
      auto t = s.find("timestamp");
      auto v = s.find("value");
      if (p == s.end() || !p->is_string()) return rejected(sat + ".property: must be a string");
      if (t == s.end() || !t->is_number_integer()) {
        return rejected(sat + ".timestamp: must be milliseconds since the epoch");
      }
      if (v == s.end() || !v->is_string()) return rejected(sat + ".value: must be a string");
      ds.samples.push_back(
          {p->get<std::string>(), t->get<int64_t>(), v->get<std::string>(), position++});
    }
    if (auto bad = devicedata::checkSamples(ds); !bad.empty()) return rejected(at + "." + bad);
    batch.push_back(std::move(ds));
  }
  if (deviceData_ == nullptr) return {ReportOutcome::kApplied, "device data is not kept"};
  const auto& kind = *api::findByApiVersionKind("devices.kubeedge.io/v1beta1", "Device");
  std::vector<devicedata::DeviceSamples> kept;
  size_t droppedSamples = 0;
  for (auto& ds : batch) {
    auto device = registry_.get(kind, ds.ns, ds.device);
    if (!device.isOk() && device.status().code() != Code::kNotFound) {
      return fromStatus(device.status(), "reading device");
    }
    if (!device.isOk() || api::stringAt(*device, "spec.nodeName") != node) {
      spdlog::warn("cloudhub: node {}: {} samples of device {}/{} dropped: {}", node,
                   ds.samples.size(), ds.ns, ds.device,
                   device.isOk() ? "the device is bound to another node" : "no such device");
      droppedSamples += ds.samples.size();
      continue;
    }
    std::set<std::string> properties;
    if (const Json* props = api::lookupPath(*device, "spec.properties");
        props && props->is_array()) {
      for (const auto& p : *props) {
        if (p.is_object() && p.contains("name") && p["name"].is_string()) {
          properties.insert(p["name"].get<std::string>());
        }
      }
    }
    const size_t before = ds.samples.size();
    std::erase_if(ds.samples,
                  [&](const devicedata::Sample& s) { return properties.count(s.property) == 0; });
    droppedSamples += before - ds.samples.size();
    if (!ds.samples.empty()) kept.push_back(std::move(ds));
  }
  if (droppedSamples > 0) {
    spdlog::warn("cloudhub: node {}: report {}: {} samples not kept (device or property gone)",
                 node, report.sequence, droppedSamples);
  }
  if (kept.empty()) return {};
  if (auto s = deviceData_->append(report.sequence, kept); !s.isOk()) {
    if (s.code() == Code::kInvalid) return rejected("device data: " + s.message());
    return {ReportOutcome::kRetry, "device data: " + s.toString()};
  }
  return {};
}

ReportResult ReportApplier::applyPodStatus(const std::string& node, const ReportInput& report) {
  if (!api::checkDns1123Label(report.namespace_).empty() ||
      !api::checkDns1123Subdomain(report.name).empty()) {
    return rejected("pod status: invalid pod namespace/name \"" + report.namespace_ + "/" +
                    report.name + "\"");
  }
  Json reported;
  std::string why;
  if (!parseObject(report.payload, reported, why)) return rejected("pod status: " + why);
  // "Pod status JSON": a bare status, or a Pod carrying one.
  bool wrapped = reported.contains("status") &&
                 (reported.contains("metadata") || api::stringAt(reported, "kind") == "Pod");
  Json status = wrapped ? reported["status"] : reported;
  if (!status.is_object()) return rejected("pod status: status is not an object");
  const auto& kind = kindOf("Pod");
  auto pod = registry_.get(kind, report.namespace_, report.name);
  if (!pod.isOk()) {
    if (pod.status().code() == Code::kNotFound) {
      return rejected("pod status: pod " + report.namespace_ + "/" + report.name + " not found");
    }
    return fromStatus(pod.status(), "reading pod");
  }
  std::string boundTo = api::stringAt(*pod, "spec.nodeName");
  if (boundTo != node) {
    return rejected("pod status: pod " + report.namespace_ + "/" + report.name + " is bound to \"" +
                    boundTo + "\", not to this node");
  }
  // A pod in graceful deletion is removed once its node reports it terminated (phase
  // Succeeded or Failed): the node has stopped every container (docs/edged.md).
  std::string phase = api::stringAt(status, "phase");
  if (!api::stringAt(*pod, "metadata.deletionTimestamp").empty() &&
      (phase == "Succeeded" || phase == "Failed")) {
    registry::DeleteOptions force;
    force.gracePeriodSeconds = 0;
    force.preconditionUid = api::stringAt(*pod, "metadata.uid");
    auto d = registry_.remove(kind, report.namespace_, report.name, force);
    if (!d.isOk() && d.status().code() != Code::kNotFound) {
      return fromStatus(d.status(), "removing terminated pod");
    }
    return {};
  }
  Json body = Json::object();
  body["status"] = status;
  auto r =
      registry_.update(kind, report.namespace_, report.name, body, registry::Subresource::kStatus);
  if (!r.isOk()) return fromStatus(r.status(), "updating pod status");
  return {};
}

// Events are upserted by name: the edge aggregates repeats of one event under one name with a
// growing count, so a later report replaces the earlier one. Only events about objects in the
// reporting node's scope are accepted: the involved object must be a Pod bound to the node (or
// the Node itself).
ReportResult ReportApplier::applyEvent(const std::string& node, const ReportInput& report) {
  Json event;
  std::string why;
  if (!parseObject(report.payload, event, why)) return rejected("event: " + why);
  if (!api::checkDns1123Label(report.namespace_).empty() ||
      !api::checkDns1123Subdomain(report.name).empty()) {
    return rejected("event: invalid namespace/name \"" + report.namespace_ + "/" + report.name +
                    "\"");
  }
  std::string involvedKind = api::stringAt(event, "involvedObject.kind");
  std::string involvedName = api::stringAt(event, "involvedObject.name");
  if (involvedKind == "Pod") {
    auto pod = registry_.get(kindOf("Pod"), report.namespace_, involvedName);
    if (pod.isOk() && api::stringAt(*pod, "spec.nodeName") != node) {
      return rejected("event: pod " + report.namespace_ + "/" + involvedName +
                      " is not bound to this node");
    }
    // A pod already deleted keeps its last events (Killing) like Kubernetes does.
  } else if (!(involvedKind == "Node" && involvedName == node)) {
    return rejected("event: involvedObject " + involvedKind + "/" + involvedName +
                    " is not this node's");
  }
  event["apiVersion"] = "v1";
  event["kind"] = "Event";
  event["metadata"] = Json{{"name", report.name}, {"namespace", report.namespace_}};
  const auto& kind = kindOf("Event");
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto current = registry_.get(kind, report.namespace_, report.name);
    if (!current.isOk()) {
      if (current.status().code() != Code::kNotFound) {
        return fromStatus(current.status(), "reading event");
      }
      auto created = registry_.create(kind, report.namespace_, event);
      if (created.isOk()) return {};
      if (created.status().code() == Code::kAlreadyExists) continue;
      if (transient(created.status())) return fromStatus(created.status(), "creating event");
      return rejected("event: " + created.status().toString());
    }
    Json next = event;
    next["metadata"] = (*current)["metadata"];
    auto updated = registry_.update(kind, report.namespace_, report.name, next);
    if (updated.isOk()) return {};
    if (updated.status().code() == Code::kConflict) continue;
    if (transient(updated.status())) return fromStatus(updated.status(), "updating event");
    return rejected("event: " + updated.status().toString());
  }
  return {ReportOutcome::kRetry, "event: conflicting writers"};
}

ReportResult ReportApplier::applyRoutedMessage(const std::string& node, const ReportInput& report) {
  if (routed_ == nullptr) return rejected("routed message: rules are not served by this cloudcore");
  edgeplane::tunnel::v1::RoutedMessage m;
  if (!m.ParseFromString(report.payload)) return rejected("routed message: malformed payload");
  // No Rule: an upload ($hw/events/upload/#), kept as the node's time series.
  const bool upload = report.namespace_.empty() && report.name.empty();
  if (upload && m.topic().rfind("$hw/events/upload/", 0) != 0) {
    return rejected("routed message: names no rule and is not an upload: topic " + m.topic());
  }
  if (!upload && (report.namespace_.empty() || report.name.empty())) {
    return rejected("routed message: the report names no rule");
  }
  Status s = routed_->routeFromEdge(node, report.sequence, report.namespace_, report.name,
                                    m.topic(), std::move(*m.mutable_payload()), m.timestamp_ms());
  if (s.isOk()) return {};
  return fromStatus(s, upload ? "upload on " + m.topic()
                              : "routed message for rule " + report.namespace_ + "/" + report.name);
}

}  // namespace ep::cloudhub
