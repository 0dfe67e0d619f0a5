// Device messages on KubeEdge's topics: whatever arrives, the twin engine never crashes, answers
// with an error on the result topic and changes nothing when it refuses, and whatever it
// reports is a DeviceStatus JSON object the cloud accepts the shape of.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "edgecore/devicetwin/twin_engine.h"

using namespace ep::edgecore::devicetwin;
using Json = nlohmann::json;

namespace {

TwinEngine& engine() {
  static ep::FakeClock clock;
  static TwinEngine* e = [] {
    auto* t = new TwinEngine("edge-a", clock);
    Effects out;
    t->upsertModel(Json::parse(R"({"metadata":{"name":"m","namespace":"default"},
      "spec":{"properties":[{"name":"t","type":"FLOAT","minimum":"-1","maximum":"1e6"},
      {"name":"i","type":"INT"},{"name":"b","type":"BOOLEAN"},{"name":"s","type":"STRING"}]}})"),
                   out);
    t->upsertDevice(Json::parse(R"({"metadata":{"name":"d","namespace":"default"},
      "spec":{"nodeName":"edge-a","deviceModelRef":{"name":"m"},
      "properties":[{"name":"t"},{"name":"i","desired":{"value":"3"}}]}})"),
                    out);
    return t;
  }();
  return *e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kTopics[] = {"$hw/events/device/d/twin/update", "$hw/events/device/d/twin/get",
                                  "$hw/events/device/d/state/update",
                                  "$hw/events/node/edge-a/membership/get",
                                  "$hw/events/device/x/twin/update"};
  const char* topic = kTopics[data[0] % 5];
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  Effects out;
  engine().onMessage(topic, payload, out);
  bool refused = false;
  for (const auto& p : out.publishes) {
    Json j = Json::parse(p.payload, nullptr, false);
    if (!j.is_object()) std::abort();  // everything published is JSON
    if (j.contains("code")) refused = true;
  }
  if (refused && (!out.puts.empty() || !out.reports.empty())) std::abort();
  for (const auto& r : out.reports) {
    Json status = Json::parse(r.payload, nullptr, false);
    if (!status.is_object()) std::abort();
    for (const auto& [k, v] : status.items()) {
      if (k != "twins" && k != "state" && k != "lastOnlineTime") std::abort();
    }
  }
  return 0;
}
