#pragma once

// The device twin's logic, without threads or I/O: it knows the node's devices and their
// models (from the cache), keeps each device's twin (reported values, the desired values it
// delivered, state), and turns KubeEdge's MQTT messages and cache changes into Effects: local
// state to persist, reports for the cloud, and MQTT messages to publish. DeviceTwin
// (device_twin.h) runs it on its worker thread and commits the effects.
//
// Topics and payloads are KubeEdge's (docs/devices.md). The device ID in a topic is the
// Device's name.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "edgecore/metamanager/metamanager.h"

namespace ep::edgecore::devicetwin {

inline constexpr const char* kScope = "devicetwin";  // local_state scope of twin records
inline constexpr size_t kMaxValueBytes = 4096;       // one twin value

struct Publish {
  std::string topic;
  std::string payload;
};

// One reported value of a property whose Device spec says reportToCloud: device data for the
// cloud's time series (docs/devices.md, "Device data").
struct DataSample {
  std::string ns, name, property;
  int64_t timestamp = 0;  // ms since the epoch
  std::string value;
};

// What handling one input produced. `puts` and `reports` must be committed together (they are
// applied in memory already), and `data` with them (dataReport turns it into one report);
// `publishes` go out after the commit.
struct Effects {
  std::vector<metamanager::LocalPut> puts;
  std::vector<metamanager::LocalReport> reports;
  std::vector<DataSample> data;
  std::vector<Publish> publishes;
  bool empty() const {
    return puts.empty() && reports.empty() && data.empty() && publishes.empty();
  }
};

// A sample's time: the device's own timestamp, or `now` when it sent none (0) or one more than
// a day ahead of this node's clock (e.g. microseconds), which would never age out in the cloud.
int64_t sampleTime(int64_t reported, int64_t now);

// The REPORT_KIND_DATA reports carrying `samples`, in order, grouped by device in first-seen
// order: {"devices": [{"namespace", "name", "samples": [{"property", "timestamp", "value"}]}]};
// a new report starts after maxSamples samples or about maxBytes of payload (the cloud refuses
// reports above 65,536 samples, the tunnel messages above 4 MiB).
std::vector<metamanager::LocalReport> dataReports(const std::vector<DataSample>& samples,
                                                  size_t maxSamples = 4096,
                                                  size_t maxBytes = 1024 * 1024);

// One property as the device's model declares it.
struct PropertyModel {
  std::string type;  // INT, FLOAT, DOUBLE, STRING, BOOLEAN, BYTES (upper case as declared)
  std::string accessMode;
  std::optional<double> minimum, maximum;
  std::string minimumText, maximumText;  // as declared, for messages
};

struct TwinValue {
  std::string value;
  int64_t timestamp = 0;  // ms since the epoch
};

struct PropertyTwin {
  std::optional<TwinValue> reported;  // the last value the device reported
  std::optional<TwinValue> desired;   // the last desired value delivered to the device
};

struct DeviceTwinState {
  std::string ns, name;
  std::string state;       // as the device last said ("online", "offline", ...); "" = never
  int64_t lastOnline = 0;  // ms; 0 = never
  std::map<std::string, PropertyTwin> twins;
};

// Checks `value` against a model property's type and bounds; "" when it fits, else why not.
std::string checkValue(const PropertyModel& model, const std::string& value);

// The Device status JSON (devices.kubeedge.io/v1beta1 DeviceStatus) a twin reports.
nlohmann::json statusJson(const DeviceTwinState& twin,
                          const std::map<std::string, PropertyModel>* props);

class TwinEngine {
 public:
  TwinEngine(std::string nodeName, const Clock& clock);

  // Restores twin records persisted under kScope. Records that do not parse are skipped and
  // returned as keys to delete (and logged).
  std::vector<std::string> load(const std::vector<std::pair<std::string, std::string>>& records);

  // Cache changes. Objects are the cached JSON.
  void upsertModel(const nlohmann::json& model, Effects& out);
  void removeModel(const std::string& ns, const std::string& name);
  void upsertDevice(const nlohmann::json& device, Effects& out);
  void removeDevice(const std::string& ns, const std::string& name, Effects& out);
  // After the initial list: drops twins of devices no longer bound here (membership removed).
  void reconcileAfterList(Effects& out);

  // One MQTT message. Topics that are not the twin's are ignored.
  void onMessage(std::string_view topic, std::string_view payload, Effects& out);

  // A report from a DMI mapper: reported values (each checked against the device's model) and
  // optionally the device's state. All or nothing; errors name the field (`field` prefixes
  // them, e.g. "reportedDevice.twins") and are kInvalid (bad value/property), kNotFound (no
  // such device or model here).
  struct ReportedValue {
    std::string property;
    TwinValue value;
  };
  Status report(const std::string& ns, const std::string& name,
                const std::vector<ReportedValue>& values, const std::optional<std::string>& state,
                Effects& out);

  size_t deviceCount() const { return devices_.size(); }
  const DeviceTwinState* twin(const std::string& ns, const std::string& name) const;
  // The topics edgecore subscribes to.
  static std::vector<std::string> subscriptions();

 private:
  struct Device {
    std::string ns, name, model;
    std::string description;
    std::map<std::string, std::string> desired;  // property -> spec desired value ("" none)
    std::vector<std::string> propertyOrder;      // spec.properties order
    std::set<std::string> reportToCloud;         // properties whose values go to the cloud
    // The spec as compact JSON, to tell spec changes from status echoes (far smaller than the
    // parsed tree, which matters with 1,000 devices on a node).
    std::string spec;
  };
  struct Model {
    std::map<std::string, PropertyModel> properties;
  };

  static std::string key(const std::string& ns, const std::string& name) { return ns + "/" + name; }
  const std::map<std::string, PropertyModel>* modelOf(const Device& d) const;
  // Resolves a topic's device ID (a name) to a device; "" with an error reason otherwise.
  const Device* findByName(const std::string& name, int& code, std::string& reason) const;

  // Parses a device's request and finds the device; on failure answers on `resultTopic` and
  // returns null.
  const Device* request(const std::string& id, std::string_view payload,
                        const std::string& resultTopic, nlohmann::json& msg, Effects& out);
  void handleTwinUpdate(const std::string& id, std::string_view payload, Effects& out);
  void handleTwinGet(const std::string& id, std::string_view payload, Effects& out);
  void handleStateUpdate(const std::string& id, std::string_view payload, Effects& out);
  void handleMembershipGet(std::string_view payload, Effects& out);

  // Persists `twin` and queues its status report.
  void commitTwin(const DeviceTwinState& twin, Effects& out, bool report = true);
  // Delivers desired values that differ from what was delivered last (delta + document).
  void deliverDesired(const Device& d, Effects& out);
  nlohmann::json msgTwin(const Device& d, const std::string& property) const;
  nlohmann::json membershipDevice(const Device& d) const;
  std::string newEventId();
  void errorResult(const std::string& topic, const std::string& eventId, int code,
                   const std::string& reason, Effects& out);

  const std::string nodeName_;
  const Clock& clock_;
  uint64_t eventCounter_ = 0;
  std::map<std::string, Model> models_;                  // ns/name
  std::map<std::string, Device> devices_;                // ns/name
  std::map<std::string, DeviceTwinState> twins_;         // ns/name
  std::map<std::string, std::set<std::string>> byName_;  // device name -> keys
};

}  // namespace ep::edgecore::devicetwin
