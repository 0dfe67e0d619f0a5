#include "edgecore/devicetwin/twin_engine.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "common/api/json_limits.h"

namespace ep::edgecore::devicetwin {
namespace {

using Json = nlohmann::json;
namespace tv1 = edgeplane::tunnel::v1;

constexpr const char* kDevicePrefix = "$hw/events/device/";
constexpr const char* kNodePrefix = "$hw/events/node/";
constexpr size_t kMaxDepth = 16;

std::string str(const Json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool deeperThan(const Json& j, size_t depth) {
  if (depth == 0) return true;
  if (j.is_object() || j.is_array()) {
    for (const auto& v : j) {
      if (deeperThan(v, depth - 1)) return true;
    }
  }
  return false;
}

// Parses a payload that must be a JSON object.
bool parsePayload(std::string_view payload, Json& out, std::string& why) {
  // Twin payloads are shallow (twin -> property -> actual -> metadata): deeper ones are refused
  // before anything is built, so a hostile message costs the edge nothing but reading it.
  bool tooDeep = false;
  out = api::parseJsonBounded(payload, 16, &tooDeep);
  if (tooDeep) {
    why = "payload nests deeper than 16 levels";
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
  if (deeperThan(out, kMaxDepth)) {
    why = "payload nests too deeply";
    return false;
  }
  return true;
}

std::string eventIdOf(const Json& j) {
  return j.is_object() ? str(j, "event_id") : "";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<double> parseNumber(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

Json twinValueJson(const TwinValue& v) {
  return Json{{"value", v.value}, {"metadata", {{"timestamp", v.timestamp}}}};
}

}  // namespace

std::string checkValue(const PropertyModel& model, const std::string& value) {
  if (value.size() > kMaxValueBytes) {
    return "longer than " + std::to_string(kMaxValueBytes) + " bytes";
  }
  const std::string type = lower(model.type);
  std::optional<double> number;
  if (type == "int") {
    errno = 0;
    char* end = nullptr;
    long long v = value.empty() ? 0 : std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || errno != 0 || end != value.c_str() + value.size()) {
      return "\"" + value + "\" is not an INT";
    }
    number = static_cast<double>(v);
  } else if (type == "float" || type == "double") {
    number = parseNumber(value);
    if (!number) return "\"" + value + "\" is not a " + model.type;
  } else if (type == "boolean") {
    if (value != "true" && value != "false")
      return "\"" + value + "\" is not a BOOLEAN (true|false)";
  }
  if (number) {
    if (model.minimum && *number < *model.minimum) {
      return value + " is below the model's minimum " + model.minimumText;
    }
    if (model.maximum && *number > *model.maximum) {
      return value + " is above the model's maximum " + model.maximumText;
    }
  }
  return "";
}

Json statusJson(const DeviceTwinState& twin, const std::map<std::string, PropertyModel>* props) {
  Json status = Json::object();
  Json twins = Json::array();
  for (const auto& [property, t] : twin.twins) {
    if (!t.reported && !t.desired) continue;
    Json entry = {{"propertyName", property}};
    if (t.reported) {
      Json meta = {{"timestamp", std::to_string(t.reported->timestamp)}};
      if (props) {
        if (auto it = props->find(property); it != props->end())
          meta["type"] = lower(it->second.type);
      }
      entry["reported"] = {{"value", t.reported->value}, {"metadata", meta}};
    }
    if (t.desired) {
      entry["observedDesired"] = {
          {"value", t.desired->value},
          {"metadata", {{"timestamp", std::to_string(t.desired->timestamp)}}}};
    }
    twins.push_back(std::move(entry));
  }
  if (!twins.empty()) status["twins"] = std::move(twins);
  if (!twin.state.empty()) status["state"] = twin.state;
  if (twin.lastOnline > 0) status["lastOnlineTime"] = formatRfc3339(twin.lastOnline);
  return status;
}

TwinEngine::TwinEngine(std::string nodeName, const Clock& clock)
    : nodeName_(std::move(nodeName)), clock_(clock) {}

std::vector<std::string> TwinEngine::subscriptions() {
  return {"$hw/events/device/+/twin/+", "$hw/events/device/+/state/update",
          "$hw/events/node/+/membership/get"};
}

std::vector<std::string> TwinEngine::load(
    const std::vector<std::pair<std::string, std::string>>& records) {
  std::vector<std::string> bad;
  for (const auto& [k, value] : records) {
    Json j = Json::parse(value, nullptr, false);
    DeviceTwinState t;
    bool ok = j.is_object() && j.contains("ns") && j["ns"].is_string() && j.contains("name") &&
              j["name"].is_string();
    if (ok) {
      t.ns = j["ns"];
      t.name = j["name"];
      t.state = str(j, "state");
      if (auto it = j.find("lastOnline"); it != j.end() && it->is_number_integer()) {
        t.lastOnline = it->get<int64_t>();
      }
      ok = key(t.ns, t.name) == k;
      if (auto tw = j.find("twins"); ok && tw != j.end() && tw->is_object()) {
        for (const auto& [property, v] : tw->items()) {
          PropertyTwin pt;
          for (const char* which : {"reported", "desired"}) {
            auto it = v.find(which);
            if (it == v.end()) continue;
            if (!it->is_object() || !(*it)["value"].is_string() ||
                !(*it)["timestamp"].is_number_integer()) {
              ok = false;
              break;
            }
            TwinValue tv{(*it)["value"].get<std::string>(), (*it)["timestamp"].get<int64_t>()};
            (std::string_view(which) == "reported" ? pt.reported : pt.desired) = tv;
          }
          t.twins[property] = std::move(pt);
        }
      }
    }
    if (!ok) {
      spdlog::error("devicetwin: stored twin {} is unreadable; discarding it", k);
      bad.push_back(k);
      continue;
    }
    twins_[k] = std::move(t);
  }
  return bad;
}

void TwinEngine::upsertModel(const Json& model, Effects& out) {
  const std::string ns = str(model.value("metadata", Json::object()), "namespace");
  const std::string name = str(model.value("metadata", Json::object()), "name");
  if (name.empty()) return;
  Model m;
  const Json spec = model.value("spec", Json::object());
  if (auto props = spec.find("properties"); props != spec.end() && props->is_array()) {
    for (const auto& p : *props) {
      if (!p.is_object() || str(p, "name").empty()) continue;
      PropertyModel pm;
      pm.type = str(p, "type");
      pm.accessMode = str(p, "accessMode");
      pm.minimumText = str(p, "minimum");
      pm.maximumText = str(p, "maximum");
      pm.minimum = parseNumber(pm.minimumText);
      pm.maximum = parseNumber(pm.maximumText);
      m.properties[str(p, "name")] = pm;
    }
  }
  models_[key(ns, name)] = std::move(m);
  (void)out;
}

void TwinEngine::removeModel(const std::string& ns, const std::string& name) {
  models_.erase(key(ns, name));
}

void TwinEngine::upsertDevice(const Json& device, Effects& out) {
  const Json meta = device.value("metadata", Json::object());
  Device d;
  d.ns = str(meta, "namespace");
  d.name = str(meta, "name");
  if (d.name.empty()) return;
  const Json spec = device.value("spec", Json::object());
  d.spec = spec.dump();
  if (auto ref = spec.find("deviceModelRef"); ref != spec.end() && ref->is_object()) {
    d.model = str(*ref, "name");
  }
  if (auto ann = meta.find("annotations"); ann != meta.end() && ann->is_object()) {
    d.description = str(*ann, "description");
  }
  if (auto props = spec.find("properties"); props != spec.end() && props->is_array()) {
    for (const auto& p : *props) {
      if (!p.is_object() || str(p, "name").empty()) continue;
      std::string desired;
      if (auto ds = p.find("desired"); ds != p.end() && ds->is_object())
        desired = str(*ds, "value");
      d.desired[str(p, "name")] = desired;
      d.propertyOrder.push_back(str(p, "name"));
      if (auto r = p.find("reportToCloud"); r != p.end() && r->is_boolean() && r->get<bool>()) {
        d.reportToCloud.insert(str(p, "name"));
      }
    }
  }
  const std::string k = key(d.ns, d.name);
  auto before = devices_.find(k);
  const bool added = before == devices_.end();
  // The cloud echoes each status change back; only a spec change concerns the device.
  if (!added && before->second.spec == d.spec && before->second.description == d.description)
    return;
  devices_[k] = d;
  byName_[d.name].insert(k);
  auto [it, fresh] = twins_.try_emplace(k);
  if (fresh) {
    it->second.ns = d.ns;
    it->second.name = d.name;
    commitTwin(it->second, out, /*report=*/false);
  }
  if (added && fresh) {
    Json update = {{"event_id", newEventId()},
                   {"timestamp", clock_.nowMillis()},
                   {"added_devices", Json::array({membershipDevice(d)})},
                   {"removed_devices", Json::array()}};
    out.publishes.push_back(
        {std::string(kNodePrefix) + nodeName_ + "/membership/updated", update.dump()});
  } else if (!added) {
    Json updated = {{"event_id", newEventId()},
                    {"timestamp", clock_.nowMillis()},
                    {"attributes", Json::object()}};
    out.publishes.push_back({std::string(kDevicePrefix) + d.name + "/updated", updated.dump()});
  }
  deliverDesired(devices_[k], out);
}

void TwinEngine::removeDevice(const std::string& ns, const std::string& name, Effects& out) {
  const std::string k = key(ns, name);
  auto it = devices_.find(k);
  Json removed = Json::array();
  if (it != devices_.end()) {
    removed.push_back(membershipDevice(it->second));
    devices_.erase(it);
  } else if (auto t = twins_.find(k); t != twins_.end()) {
    removed.push_back({{"id", name}, {"name", name}});
  }
  if (auto n = byName_.find(name); n != byName_.end()) {
    n->second.erase(k);
    if (n->second.empty()) byName_.erase(n);
  }
  if (twins_.erase(k) > 0) out.puts.push_back({kScope, k, std::nullopt});
  if (!removed.empty()) {
    Json update = {{"event_id", newEventId()},
                   {"timestamp", clock_.nowMillis()},
                   {"added_devices", Json::array()},
                   {"removed_devices", removed}};
    out.publishes.push_back(
        {std::string(kNodePrefix) + nodeName_ + "/membership/updated", update.dump()});
  }
}

void TwinEngine::reconcileAfterList(Effects& out) {
  std::vector<std::pair<std::string, std::string>> gone;
  for (const auto& [k, t] : twins_) {
    if (devices_.find(k) == devices_.end()) gone.emplace_back(t.ns, t.name);
  }
  for (const auto& [ns, name] : gone) removeDevice(ns, name, out);
}

const DeviceTwinState* TwinEngine::twin(const std::string& ns, const std::string& name) const {
  auto it = twins_.find(key(ns, name));
  return it == twins_.end() ? nullptr : &it->second;
}

const std::map<std::string, PropertyModel>* TwinEngine::modelOf(const Device& d) const {
  auto it = models_.find(key(d.ns, d.model));
  return it == models_.end() ? nullptr : &it->second.properties;
}

const TwinEngine::Device* TwinEngine::findByName(const std::string& name, int& code,
                                                 std::string& reason) const {
  auto it = byName_.find(name);
  if (it == byName_.end() || it->second.empty()) {
    code = 404;
    reason = "device \"" + name + "\" is not bound to node " + nodeName_;
    return nullptr;
  }
  if (it->second.size() > 1) {
    code = 409;
    reason = "device name \"" + name + "\" exists in several namespaces on this node";
    return nullptr;
  }
  return &devices_.at(*it->second.begin());
}

void TwinEngine::onMessage(std::string_view topic, std::string_view payload, Effects& out) {
  if (topic.rfind(kDevicePrefix, 0) == 0) {
    std::string_view rest = topic.substr(std::string_view(kDevicePrefix).size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return;
    const std::string id(rest.substr(0, slash));
    const std::string_view action = rest.substr(slash + 1);
    if (action == "twin/update") return handleTwinUpdate(id, payload, out);
    if (action == "twin/get") return handleTwinGet(id, payload, out);
    if (action == "state/update") return handleStateUpdate(id, payload, out);
    return;  // our own results/deltas echo back on twin/+: not requests
  }
  if (topic.rfind(kNodePrefix, 0) == 0) {
    std::string_view rest = topic.substr(std::string_view(kNodePrefix).size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return;
    if (rest.substr(0, slash) != nodeName_) return;  // another node's devices
    if (rest.substr(slash + 1) == "membership/get") handleMembershipGet(payload, out);
  }
}

void TwinEngine::errorResult(const std::string& topic, const std::string& eventId, int code,
                             const std::string& reason, Effects& out) {
  Json r = {
      {"event_id", eventId}, {"timestamp", clock_.nowMillis()}, {"code", code}, {"reason", reason}};
  out.publishes.push_back({topic, r.dump()});
}

const TwinEngine::Device* TwinEngine::request(const std::string& id, std::string_view payload,
                                              const std::string& resultTopic, Json& msg,
                                              Effects& out) {
  std::string why;
  if (!parsePayload(payload, msg, why)) {
    errorResult(resultTopic, "", 400, why, out);
    return nullptr;
  }
  int code = 0;
  const Device* d = findByName(id, code, why);
  if (!d) errorResult(resultTopic, eventIdOf(msg), code, why, out);
  return d;
}

void TwinEngine::handleTwinUpdate(const std::string& id, std::string_view payload, Effects& out) {
  const std::string resultTopic = std::string(kDevicePrefix) + id + "/twin/update/result";
  Json msg;
  const Device* d = request(id, payload, resultTopic, msg, out);
  if (!d) return;
  const std::string eventId = eventIdOf(msg);
  const auto* props = modelOf(*d);
  if (!props) {
    return errorResult(resultTopic, eventId, 404,
                       "device model \"" + d->model + "\" of device " + id + " is not on this node",
                       out);
  }
  auto tw = msg.find("twin");
  if (tw == msg.end() || !tw->is_object() || tw->empty()) {
    return errorResult(resultTopic, eventId, 400, "twin: must be a non-empty object", out);
  }
  const int64_t now = clock_.nowMillis();
  std::map<std::string, TwinValue> updates;
  for (const auto& [property, v] : tw->items()) {
    const std::string field = "twin." + property;
    auto pm = props->find(property);
    if (pm == props->end()) {
      return errorResult(
          resultTopic, eventId, 400,
          field + ": device model \"" + d->model + "\" has no property \"" + property + "\"", out);
    }
    if (!v.is_object())
      return errorResult(resultTopic, eventId, 400, field + ": must be an object", out);
    if (v.contains("expected")) {
      return errorResult(resultTopic, eventId, 400,
                         field +
                             ".expected: desired values are set in the cloud "
                             "(spec.properties[].desired.value)",
                         out);
    }
    auto actual = v.find("actual");
    if (actual == v.end() || !actual->is_object()) {
      return errorResult(resultTopic, eventId, 400, field + ".actual: must be an object", out);
    }
    auto value = actual->find("value");
    if (value == actual->end() || !value->is_string()) {
      return errorResult(resultTopic, eventId, 400, field + ".actual.value: must be a string", out);
    }
    const std::string text = value->get<std::string>();
    if (auto bad = checkValue(pm->second, text); !bad.empty()) {
      return errorResult(resultTopic, eventId, 400, field + ".actual.value: " + bad, out);
    }
    int64_t ts = now;
    if (auto m = actual->find("metadata"); m != actual->end()) {
      if (!m->is_object()) {
        return errorResult(resultTopic, eventId, 400, field + ".actual.metadata: must be an object",
                           out);
      }
      if (auto t = m->find("timestamp"); t != m->end()) {
        if (!t->is_number_integer() || t->get<int64_t>() < 0) {
          return errorResult(
              resultTopic, eventId, 400,
              field + ".actual.metadata.timestamp: must be milliseconds since the epoch", out);
        }
        ts = t->get<int64_t>();
      }
    }
    updates[property] = TwinValue{text, ts};
  }
  DeviceTwinState& t = twins_[key(d->ns, d->name)];
  t.ns = d->ns;
  t.name = d->name;
  Json result = {{"event_id", eventId}, {"timestamp", now}, {"twin", Json::object()}};
  Json document = {{"event_id", newEventId()}, {"timestamp", now}, {"twin", Json::object()}};
  for (auto& [property, tv] : updates) {
    Json last = msgTwin(*d, property);
    t.twins[property].reported = tv;
    if (d->reportToCloud.count(property) > 0) {
      out.data.push_back({d->ns, d->name, property, sampleTime(tv.timestamp, now), tv.value});
    }
    Json current = msgTwin(*d, property);
    result["twin"][property] = {{"actual", twinValueJson(tv)},
                                {"metadata", {{"type", lower(props->at(property).type)}}}};
    document["twin"][property] = {{"last", last}, {"current", current}};
  }
  commitTwin(t, out);
  out.publishes.push_back({resultTopic, result.dump()});
  out.publishes.push_back(
      {std::string(kDevicePrefix) + id + "/twin/update/document", document.dump()});
}

Status TwinEngine::report(const std::string& ns, const std::string& name,
                          const std::vector<ReportedValue>& values,
                          const std::optional<std::string>& state, Effects& out) {
  auto dev = devices_.find(key(ns, name));
  if (dev == devices_.end()) {
    return notFoundError("device " + ns + "/" + name + " is not bound to node " + nodeName_);
  }
  const Device& d = dev->second;
  const auto* props = modelOf(d);
  if (!values.empty() && !props) {
    return notFoundError("device model \"" + d.model + "\" of device " + ns + "/" + name +
                         " is not on this node");
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string field = "twins[" + std::to_string(i) + "]";
    auto pm = props->find(values[i].property);
    if (pm == props->end()) {
      return invalidError(field + ".propertyName: device model \"" + d.model +
                          "\" has no property \"" + values[i].property + "\"");
    }
    if (auto bad = checkValue(pm->second, values[i].value.value); !bad.empty()) {
      return invalidError(field + ".reported.value: " + bad);
    }
  }
  if (state && (state->empty() || state->size() > 64)) {
    return invalidError("state: must be a string of 1..64 bytes");
  }
  DeviceTwinState& t = twins_[key(ns, name)];
  t.ns = ns;
  t.name = name;
  bool changed = false;
  for (const auto& v : values) {
    auto& reported = t.twins[v.property].reported;
    if (!reported || reported->value != v.value.value || reported->timestamp != v.value.timestamp) {
      reported = v.value;
      changed = true;
      if (d.reportToCloud.count(v.property) > 0) {
        out.data.push_back({ns, name, v.property, sampleTime(v.value.timestamp, clock_.nowMillis()),
                            v.value.value});
      }
    }
  }
  if (state) {
    const bool online = lower(*state) == "online";
    if (t.state != *state || online) changed = true;
    t.state = *state;
    if (online) t.lastOnline = clock_.nowMillis();
  }
  if (changed) commitTwin(t, out);
  return Status::ok();
}

void TwinEngine::handleTwinGet(const std::string& id, std::string_view payload, Effects& out) {
  const std::string resultTopic = std::string(kDevicePrefix) + id + "/twin/get/result";
  Json msg;
  const Device* d = request(id, payload, resultTopic, msg, out);
  if (!d) return;
  Json result = {
      {"event_id", eventIdOf(msg)}, {"timestamp", clock_.nowMillis()}, {"twin", Json::object()}};
  std::set<std::string> names(d->propertyOrder.begin(), d->propertyOrder.end());
  if (const auto* props = modelOf(*d)) {
    for (const auto& [p, _] : *props) names.insert(p);
  }
  for (const auto& p : names) result["twin"][p] = msgTwin(*d, p);
  out.publishes.push_back({resultTopic, result.dump()});
}

void TwinEngine::handleStateUpdate(const std::string& id, std::string_view payload, Effects& out) {
  const std::string resultTopic = std::string(kDevicePrefix) + id + "/state/update/result";
  Json msg;
  const Device* d = request(id, payload, resultTopic, msg, out);
  if (!d) return;
  const std::string eventId = eventIdOf(msg);
  auto state = msg.find("state");
  if (state == msg.end() || !state->is_string() || state->get<std::string>().empty() ||
      state->get<std::string>().size() > 64) {
    return errorResult(resultTopic, eventId, 400, "state: must be a string of 1..64 bytes", out);
  }
  const int64_t now = clock_.nowMillis();
  DeviceTwinState& t = twins_[key(d->ns, d->name)];
  t.ns = d->ns;
  t.name = d->name;
  t.state = state->get<std::string>();
  if (lower(t.state) == "online") t.lastOnline = now;
  commitTwin(t, out);
  Json device = {{"name", d->name}, {"state", t.state}};
  if (t.lastOnline > 0) device["last_online"] = formatRfc3339(t.lastOnline);
  Json result = {{"event_id", eventId}, {"timestamp", now}, {"device", device}};
  out.publishes.push_back({resultTopic, result.dump()});
}

void TwinEngine::handleMembershipGet(std::string_view payload, Effects& out) {
  const std::string resultTopic = std::string(kNodePrefix) + nodeName_ + "/membership/get/result";
  Json msg;
  std::string why;
  if (!parsePayload(payload, msg, why)) return errorResult(resultTopic, "", 400, why, out);
  Json devices = Json::array();
  for (const auto& [k, d] : devices_) devices.push_back(membershipDevice(d));
  Json result = {
      {"event_id", eventIdOf(msg)}, {"timestamp", clock_.nowMillis()}, {"devices", devices}};
  out.publishes.push_back({resultTopic, result.dump()});
}

Json TwinEngine::membershipDevice(const Device& d) const {
  Json j = {{"id", d.name}, {"name", d.name}};
  if (!d.description.empty()) j["description"] = d.description;
  if (auto t = twins_.find(key(d.ns, d.name)); t != twins_.end()) {
    if (!t->second.state.empty()) j["state"] = t->second.state;
    if (t->second.lastOnline > 0) j["last_online"] = formatRfc3339(t->second.lastOnline);
  }
  return j;
}

Json TwinEngine::msgTwin(const Device& d, const std::string& property) const {
  Json j = Json::object();
  if (auto it = d.desired.find(property); it != d.desired.end() && !it->second.empty()) {
    int64_t ts = 0;
    if (auto t = twins_.find(key(d.ns, d.name)); t != twins_.end()) {
      if (auto p = t->second.twins.find(property);
          p != t->second.twins.end() && p->second.desired) {
        ts = p->second.desired->timestamp;
      }
    }
    j["expected"] = twinValueJson(TwinValue{it->second, ts});
  }
  if (auto t = twins_.find(key(d.ns, d.name)); t != twins_.end()) {
    if (auto p = t->second.twins.find(property); p != t->second.twins.end() && p->second.reported) {
      j["actual"] = twinValueJson(*p->second.reported);
    }
  }
  std::string type = "string";
  if (const auto* props = modelOf(d)) {
    if (auto it = props->find(property); it != props->end() && !it->second.type.empty()) {
      type = lower(it->second.type);
    }
  }
  j["metadata"] = {{"type", type}};
  return j;
}

void TwinEngine::deliverDesired(const Device& d, Effects& out) {
  DeviceTwinState& t = twins_[key(d.ns, d.name)];
  const int64_t now = clock_.nowMillis();
  Json document = {{"event_id", newEventId()}, {"timestamp", now}, {"twin", Json::object()}};
  std::vector<std::string> changed;
  for (const auto& property : d.propertyOrder) {
    const std::string& want = d.desired.at(property);
    if (want.empty()) continue;
    PropertyTwin& pt = t.twins[property];
    if (pt.desired && pt.desired->value == want) continue;
    Json last = msgTwin(d, property);
    if (pt.desired) {
      last["expected"] = twinValueJson(*pt.desired);
    } else {
      last.erase("expected");
    }
    pt.desired = TwinValue{want, now};
    document["twin"][property] = {{"last", last}, {"current", msgTwin(d, property)}};
    changed.push_back(property);
  }
  if (changed.empty()) return;
  commitTwin(t, out);
  Json delta = {{"event_id", newEventId()},
                {"timestamp", now},
                {"twin", Json::object()},
                {"delta", Json::object()}};
  for (const auto& property : d.propertyOrder) {
    Json mt = msgTwin(d, property);
    if (!mt.contains("expected")) continue;
    const std::string want = mt["expected"]["value"];
    const std::string have = mt.contains("actual") ? mt["actual"]["value"].get<std::string>() : "";
    if (want != have) delta["delta"][property] = want;
    delta["twin"][property] = std::move(mt);
  }
  const std::string base = std::string(kDevicePrefix) + d.name + "/twin/update/";
  if (!delta["delta"].empty()) out.publishes.push_back({base + "delta", delta.dump()});
  out.publishes.push_back({base + "document", document.dump()});
}

void TwinEngine::commitTwin(const DeviceTwinState& t, Effects& out, bool report) {
  Json record = {{"ns", t.ns},
                 {"name", t.name},
                 {"state", t.state},
                 {"lastOnline", t.lastOnline},
                 {"twins", Json::object()}};
  for (const auto& [property, pt] : t.twins) {
    Json p = Json::object();
    if (pt.reported)
      p["reported"] = {{"value", pt.reported->value}, {"timestamp", pt.reported->timestamp}};
    if (pt.desired)
      p["desired"] = {{"value", pt.desired->value}, {"timestamp", pt.desired->timestamp}};
    record["twins"][property] = std::move(p);
  }
  const std::string k = key(t.ns, t.name);
  // Several changes of one device in a batch: the last write wins, reports coalesce anyway.
  out.puts.push_back({kScope, k, record.dump()});
  if (!report) return;
  const std::map<std::string, PropertyModel>* props = nullptr;
  if (auto d = devices_.find(k); d != devices_.end()) props = modelOf(d->second);
  out.reports.push_back({tv1::REPORT_KIND_DEVICE_TWIN, t.ns, t.name, statusJson(t, props).dump()});
}

int64_t sampleTime(int64_t reported, int64_t now) {
  constexpr int64_t kDay = 24 * 3600 * 1000;
  return reported > 0 && reported <= now + kDay ? reported : now;
}

std::vector<metamanager::LocalReport> dataReports(const std::vector<DataSample>& samples,
                                                  size_t maxSamples, size_t maxBytes) {
  std::vector<metamanager::LocalReport> out;
  Json devices = Json::array();
  std::map<std::pair<std::string, std::string>, size_t> index;
  size_t count = 0, bytes = 0;
  auto flush = [&] {
    if (count == 0) return;
    out.push_back({tv1::REPORT_KIND_DATA, "", "", Json{{"devices", std::move(devices)}}.dump()});
    devices = Json::array();
    index.clear();
    count = bytes = 0;
  };
  for (const auto& s : samples) {
    const size_t size = s.property.size() + s.value.size() + s.ns.size() + s.name.size() + 96;
    if (count > 0 && (count + 1 > maxSamples || bytes + size > maxBytes)) flush();
    auto [it, fresh] = index.try_emplace({s.ns, s.name}, devices.size());
    if (fresh) {
      devices.push_back({{"namespace", s.ns}, {"name", s.name}, {"samples", Json::array()}});
    }
    devices[it->second]["samples"].push_back(
        {{"property", s.property}, {"timestamp", s.timestamp}, {"value", s.value}});
    ++count;
    bytes += size;
  }
  flush();
  return out;
}

std::string TwinEngine::newEventId() {
  // Unique per process and readable; devices only echo it back.
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s-%llu-%llu", "ep",
                static_cast<unsigned long long>(clock_.nowMillis()),
                static_cast<unsigned long long>(++eventCounter_));
  return buf;
}

}  // namespace ep::edgecore::devicetwin
