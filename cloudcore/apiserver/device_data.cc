#include "cloudcore/apiserver/device_data.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/api/status_json.h"
#include "common/clock.h"

namespace ep::apiserver {
namespace {

using Json = nlohmann::json;

// A non-negative decimal integer parameter; -1 when absent, -2 when malformed.
int64_t intParam(const std::string& text) {
  if (text.empty()) return -1;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) return -2;
  return v;
}

// `kind` is Device (series: the device's properties) or Rule (series: the messages it carried,
// devicedata::ruleSeries).
http::ServerResponse serve(registry::Registry& registry, devicedata::DeviceDataStore& data,
                           const Clock& clock, const http::ServerRequest& req,
                           const api::KindInfo* kind, const std::string& ns,
                           const std::string& name) {
  const bool rule = kind->kind == "Rule";
  const bool node = kind->kind == "Node";
  if (req.method != "GET") {
    return api::errorResponse(
        Status(Code::kMethodNotAllowed,
               "the server does not allow this method on " + kind->plural + "/data"));
  }
  devicedata::Query q;
  q.ns = ns;
  q.device = rule ? devicedata::ruleSeries(name) : node ? devicedata::nodeSeries(name) : name;
  q.property = req.param("property");
  if (q.property.size() > 253) {
    return api::errorResponse(badRequestError("property: longer than 253 bytes"));
  }
  const int64_t sinceSeconds = intParam(req.param("sinceSeconds"));
  if (sinceSeconds == -2) {
    return api::errorResponse(badRequestError("sinceSeconds: must be a non-negative integer"));
  }
  if (sinceSeconds >= 0) {
    q.sinceMillis = clock.nowMillis() - std::min<int64_t>(sinceSeconds, int64_t{1} << 40) * 1000;
  }
  if (const std::string t = req.param("sinceTime"); !t.empty()) {
    if (sinceSeconds >= 0) {
      return api::errorResponse(
          badRequestError("sinceSeconds and sinceTime: at most one may be set"));
    }
    q.sinceMillis = parseRfc3339(t);
    if (q.sinceMillis < 0) {
      return api::errorResponse(badRequestError("sinceTime: not an RFC 3339 time: \"" + t + "\""));
    }
  }
  const int64_t limit = intParam(req.param("limit"));
  if (limit == -2 || limit == 0 || limit > static_cast<int64_t>(devicedata::kMaxQueryLimit)) {
    return api::errorResponse(badRequestError("limit: must be an integer from 1 to " +
                                              std::to_string(devicedata::kMaxQueryLimit)));
  }
  if (limit > 0) q.limit = static_cast<size_t>(limit);
  if (auto device = registry.get(*kind, ns, name); !device.isOk()) {
    return api::errorResponse(device.status(), kind, name);
  }
  auto samples = data.query(q);
  if (!samples.isOk()) return api::errorResponse(samples.status());
  Json items = Json::array();
  for (const auto& s : *samples) {
    items.push_back({{"property", s.property},
                     {"timestamp", formatRfc3339Millis(s.timestamp)},
                     {"value", s.value}});
  }
  return api::jsonResponse(200, Json{{"kind", rule   ? "RuleData"
                                              : node ? "NodeData"
                                                     : "DeviceData"},
                                     {"apiVersion", "data.edgeplane.io/v1alpha1"},
                                     {"metadata", {{"namespace", ns}, {"name", name}}},
                                     {"items", std::move(items)}});
}

}  // namespace

std::string formatRfc3339Millis(int64_t unixMillis) {
  std::string s = formatRfc3339(unixMillis - unixMillis % 1000);  // ...:05Z
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(unixMillis % 1000));
  s.pop_back();
  return s + frac;
}

void installDeviceData(ApiHandler& handler, registry::Registry& registry,
                       devicedata::DeviceDataStore& data, const Clock& clock) {
  for (const auto* kind : {api::findByApiVersionKind("devices.kubeedge.io/v1beta1", "Device"),
                           api::findByApiVersionKind("rules.kubeedge.io/v1", "Rule"),
                           api::findByApiVersionKind("v1", "Node")}) {
    handler.addSubresource(
        kind->plural, "data",
        [&registry, &data, &clock, kind](http::ServerRequest& req, const std::string& ns,
                                         const std::string& name) {
          return serve(registry, data, clock, req, kind, ns, name);
        });
  }
}

}  // namespace ep::apiserver
