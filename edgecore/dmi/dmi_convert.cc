#include "edgecore/dmi/dmi_convert.h"

#include <cmath>
#include <cstring>

namespace ep::edgecore::dmi {
namespace {

using Json = nlohmann::json;

constexpr const char* kTypePrefix = "type.googleapis.com/google.protobuf.";

void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool getVarint(const std::string& in, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
    const auto b = static_cast<uint8_t>(in[pos++]);
    v |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

v1beta1::AnyValue wrap(const Json& v) {
  v1beta1::AnyValue any;
  std::string value;
  if (v.is_boolean()) {
    any.set_type_url(std::string(kTypePrefix) + "BoolValue");
    if (v.get<bool>()) value = std::string("\x08\x01", 2);
  } else if (v.is_number_integer()) {
    any.set_type_url(std::string(kTypePrefix) + "Int64Value");
    const int64_t i = v.get<int64_t>();
    if (i != 0) {
      value.push_back(0x08);
      putVarint(value, static_cast<uint64_t>(i));
    }
  } else if (v.is_number()) {
    any.set_type_url(std::string(kTypePrefix) + "DoubleValue");
    const double d = v.get<double>();
    if (d != 0.0) {
      value.push_back(0x09);
      char raw[8];
      std::memcpy(raw, &d, 8);  // little-endian on every target this builds for
      value.append(raw, 8);
    }
  } else {
    any.set_type_url(std::string(kTypePrefix) + "StringValue");
    const std::string s = v.is_string() ? v.get<std::string>() : v.dump();
    if (!s.empty()) {
      value.push_back(0x0A);
      putVarint(value, s.size());
      value.append(s);
    }
  }
  any.set_value(value);
  return any;
}

std::string str(const Json& j, const char* k) {
  if (!j.is_object()) return "";
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t integer(const Json& j, const char* k) {
  if (!j.is_object()) return 0;
  auto it = j.find(k);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

bool boolean(const Json& j, const char* k) {
  if (!j.is_object()) return false;
  auto it = j.find(k);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const Json& obj(const Json& j, const char* k) {
  static const Json kEmpty = Json::object();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(k);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

void twinProperty(const Json& j, v1beta1::TwinProperty* out) {
  out->set_value(str(j, "value"));
  for (const auto& [k, v] : obj(j, "metadata").items()) {
    if (v.is_string()) (*out->mutable_metadata())[k] = v.get<std::string>();
  }
}

void pushMethod(const Json& p, v1beta1::PushMethod* out) {
  if (p.contains("http")) {
    const Json& h = obj(p, "http");
    auto* o = out->mutable_http();
    o->set_hostname(str(h, "hostName"));
    o->set_port(integer(h, "port"));
    o->set_requestpath(str(h, "requestPath"));
    o->set_timeout(integer(h, "timeout"));
  }
  if (p.contains("mqtt")) {
    const Json& m = obj(p, "mqtt");
    auto* o = out->mutable_mqtt();
    o->set_address(str(m, "address"));
    o->set_topic(str(m, "topic"));
    o->set_qos(static_cast<int32_t>(integer(m, "qos")));
    o->set_retained(boolean(m, "retained"));
  }
  if (p.contains("otel")) out->mutable_otel()->set_endpointurl(str(obj(p, "otel"), "endpointURL"));
  if (p.contains("dbMethod")) {
    const Json& db = obj(p, "dbMethod");
    auto* o = out->mutable_dbmethod();
    if (db.contains("influxdb2")) {
      const Json& i = obj(db, "influxdb2");
      auto* c = o->mutable_influxdb2()->mutable_influxdb2clientconfig();
      c->set_url(str(obj(i, "influxdb2ClientConfig"), "url"));
      c->set_org(str(obj(i, "influxdb2ClientConfig"), "org"));
      c->set_bucket(str(obj(i, "influxdb2ClientConfig"), "bucket"));
      const Json& d = obj(i, "influxdb2DataConfig");
      auto* dc = o->mutable_influxdb2()->mutable_influxdb2dataconfig();
      dc->set_measurement(str(d, "measurement"));
      dc->set_fieldkey(str(d, "fieldKey"));
      for (const auto& [k, v] : obj(d, "tag").items()) {
        if (v.is_string()) (*dc->mutable_tag())[k] = v.get<std::string>();
      }
    }
    if (db.contains("redis")) {
      const Json& r = obj(obj(db, "redis"), "redisClientConfig");
      auto* c = o->mutable_redis()->mutable_redisclientconfig();
      c->set_addr(str(r, "addr"));
      c->set_db(static_cast<int32_t>(integer(r, "db")));
      c->set_poolsize(static_cast<int32_t>(integer(r, "poolsize")));
      c->set_minidleconns(static_cast<int32_t>(integer(r, "minIdleConns")));
    }
    if (db.contains("TDEngine")) {
      const Json& t = obj(obj(db, "TDEngine"), "TDEngineClientConfig");
      auto* c = o->mutable_tdengine()->mutable_tdengineclientconfig();
      c->set_addr(str(t, "addr"));
      c->set_dbname(str(t, "dbName"));
    }
    if (db.contains("mysql")) {
      const Json& m = obj(obj(db, "mysql"), "mysqlClientConfig");
      auto* c = o->mutable_mysql()->mutable_mysqlclientconfig();
      c->set_addr(str(m, "addr"));
      c->set_database(str(m, "database"));
      c->set_username(str(m, "userName"));
    }
  }
}

}  // namespace

void toCustomizedValue(const Json& object, v1beta1::CustomizedValue* out) {
  if (!object.is_object()) return;
  for (const auto& [k, v] : object.items()) (*out->mutable_data())[k] = wrap(v);
}

Json fromAnyValue(const v1beta1::AnyValue& any) {
  const std::string& t = any.type_url();
  const std::string& v = any.value();
  auto is = [&](const char* name) { return t == std::string(kTypePrefix) + name; };
  size_t pos = 0;
  if (is("StringValue")) {
    if (v.empty()) return "";
    uint64_t len = 0;
    if (v[0] != 0x0A || !getVarint(v, ++pos, len) || pos + len != v.size()) return nullptr;
    return v.substr(pos, len);
  }
  if (is("BoolValue") || is("Int64Value") || is("Int32Value")) {
    if (v.empty()) return is("BoolValue") ? Json(false) : Json(0);
    uint64_t x = 0;
    if (v[0] != 0x08 || !getVarint(v, ++pos, x) || pos != v.size()) return nullptr;
    if (is("BoolValue")) return x != 0;
    return static_cast<int64_t>(x);
  }
  if (is("DoubleValue")) {
    if (v.empty()) return 0.0;
    if (v.size() != 9 || v[0] != 0x09) return nullptr;
    double d;
    std::memcpy(&d, v.data() + 1, 8);
    return d;
  }
  if (is("FloatValue")) {
    if (v.empty()) return 0.0;
    if (v.size() != 5 || v[0] != 0x0D) return nullptr;
    float f;
    std::memcpy(&f, v.data() + 1, 4);
    return static_cast<double>(f);
  }
  return nullptr;
}

std::string deviceProtocol(const Json& device) {
  return str(obj(obj(device, "spec"), "protocol"), "protocolName");
}

std::string modelProtocol(const Json& model) {
  return str(obj(model, "spec"), "protocol");
}

v1beta1::Device toDmiDevice(const Json& device) {
  v1beta1::Device d;
  const Json& meta = obj(device, "metadata");
  const Json& spec = obj(device, "spec");
  d.set_name(str(meta, "name"));
  d.set_namespace_(str(meta, "namespace"));
  auto* s = d.mutable_spec();
  s->set_devicemodelreference(str(obj(spec, "deviceModelRef"), "name"));
  const Json& protocol = obj(spec, "protocol");
  s->mutable_protocol()->set_protocolname(str(protocol, "protocolName"));
  toCustomizedValue(obj(protocol, "configData"), s->mutable_protocol()->mutable_configdata());
  if (auto props = spec.find("properties"); props != spec.end() && props->is_array()) {
    for (const auto& p : *props) {
      if (!p.is_object()) continue;
      auto* dp = s->add_properties();
      dp->set_name(str(p, "name"));
      if (p.contains("desired")) twinProperty(obj(p, "desired"), dp->mutable_desired());
      const Json& visitors = obj(p, "visitors");
      dp->mutable_visitors()->set_protocolname(str(visitors, "protocolName"));
      toCustomizedValue(obj(visitors, "configData"), dp->mutable_visitors()->mutable_configdata());
      dp->set_reportcycle(integer(p, "reportCycle"));
      dp->set_collectcycle(integer(p, "collectCycle"));
      dp->set_reporttocloud(boolean(p, "reportToCloud"));
      if (p.contains("pushMethod")) pushMethod(obj(p, "pushMethod"), dp->mutable_pushmethod());
    }
  }
  if (auto methods = spec.find("methods"); methods != spec.end() && methods->is_array()) {
    for (const auto& m : *methods) {
      if (!m.is_object()) continue;
      auto* dm = s->add_methods();
      dm->set_name(str(m, "name"));
      dm->set_description(str(m, "description"));
      if (auto names = m.find("propertyNames"); names != m.end() && names->is_array()) {
        for (const auto& n : *names) {
          if (n.is_string()) dm->add_propertynames(n.get<std::string>());
        }
      }
    }
  }
  const Json& status = obj(device, "status");
  if (auto twins = status.find("twins"); twins != status.end() && twins->is_array()) {
    for (const auto& t : *twins) {
      if (!t.is_object()) continue;
      auto* tw = d.mutable_status()->add_twins();
      tw->set_propertyname(str(t, "propertyName"));
      if (t.contains("reported")) twinProperty(obj(t, "reported"), tw->mutable_reported());
      if (t.contains("observedDesired")) {
        twinProperty(obj(t, "observedDesired"), tw->mutable_observeddesired());
      }
    }
  }
  return d;
}

v1beta1::DeviceModel toDmiModel(const Json& model) {
  v1beta1::DeviceModel m;
  const Json& meta = obj(model, "metadata");
  m.set_name(str(meta, "name"));
  m.set_namespace_(str(meta, "namespace"));
  const Json& spec = obj(model, "spec");
  if (auto props = spec.find("properties"); props != spec.end() && props->is_array()) {
    for (const auto& p : *props) {
      if (!p.is_object()) continue;
      auto* mp = m.mutable_spec()->add_properties();
      mp->set_name(str(p, "name"));
      mp->set_description(str(p, "description"));
      mp->set_type(str(p, "type"));
      mp->set_accessmode(str(p, "accessMode"));
      mp->set_minimum(str(p, "minimum"));
      mp->set_maximum(str(p, "maximum"));
      mp->set_unit(str(p, "unit"));
    }
  }
  return m;
}

Result<std::vector<devicetwin::TwinEngine::ReportedValue>> reportedValues(
    const v1beta1::DeviceStatus& status, int64_t nowMillis) {
  std::vector<devicetwin::TwinEngine::ReportedValue> out;
  for (int i = 0; i < status.twins_size(); ++i) {
    const auto& t = status.twins(i);
    const std::string field = "reportedDevice.twins[" + std::to_string(i) + "]";
    if (t.propertyname().empty()) return invalidError(field + ".propertyName: required");
    if (!t.has_reported()) continue;  // observedDesired alone: the edge already knows it
    int64_t ts = nowMillis;
    if (auto m = t.reported().metadata().find("timestamp"); m != t.reported().metadata().end()) {
      char* end = nullptr;
      const long long v = std::strtoll(m->second.c_str(), &end, 10);
      if (end != m->second.c_str() && *end == '\0' && v > 0) ts = v;
    }
    out.push_back({t.propertyname(), {t.reported().value(), ts}});
  }
  return out;
}

}  // namespace ep::edgecore::dmi
