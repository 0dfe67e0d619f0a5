#pragma once

#include <compare>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace ep::cloudhub {

// Store resource keys of the kinds the cloud sends to edge nodes (docs/tunnel.md, "Sync").
inline constexpr const char* kPods = "pods";
inline constexpr const char* kConfigMaps = "configmaps";
inline constexpr const char* kSecrets = "secrets";
inline constexpr const char* kDevices = "devices.devices.kubeedge.io";
inline constexpr const char* kDeviceModels = "devicemodels.devices.kubeedge.io";
inline constexpr const char* kRules = "rules.rules.kubeedge.io";
inline constexpr const char* kRuleEndpoints = "ruleendpoints.rules.kubeedge.io";
inline constexpr const char* kModels = "models.sedna.io";
inline constexpr const char* kServices = "services";
inline constexpr const char* kEndpointSlices = "endpointslices.discovery.k8s.io";
inline constexpr const char* kNodeUpgradeJobs = "nodeupgradejobs.operations.kubeedge.io";
inline constexpr const char* kEdgecoreReleases = "edgecorereleases.upgrade.edgeplane.io";

// Every resource the dispatcher lists and tracks.
const std::vector<std::string>& trackedResources();
bool isTracked(const std::string& resource);

// Identity of one stored object.
struct ObjectKey {
  std::string resource;
  std::string namespace_;
  std::string name;
  auto operator<=>(const ObjectKey&) const = default;
};

// What one object means for placement: the nodes it is bound to (roots: pods, devices, rules,
// models, EndpointSlices: the nodes of their endpoints) and the objects it pulls along to those
// nodes (ConfigMaps/Secrets of a pod, the DeviceModel of a device, the RuleEndpoints of a rule,
// the credential Secret of a Model, the Service of an EndpointSlice; a NodeUpgradeJob goes to the
// nodes it is upgrading now, with its EdgecoreRelease).
// Referenced objects are in the same namespace as the referrer.
// `viaRefs` are followed only when the object is itself pulled along by a root bound to a node:
// a pod's model volume pulls the Model, and the Model (reached that way, never as a root of its
// own through spec.nodeName) pulls its credential Secret, when that Secret's type is a pull
// secret's (api::isPullSecretType). So writing a Model cannot send an arbitrary Secret to a node.
struct Placement {
  std::vector<std::string> nodes;
  std::vector<ObjectKey> refs;
  std::vector<ObjectKey> viaRefs;
};

// Computes the placement of `object` (a parsed stored object of `resource`). Pure, thread-safe,
// never throws; malformed fields are ignored.
Placement placementOf(const std::string& resource, const std::string& ns,
                      const nlohmann::json& object);

}  // namespace ep::cloudhub
