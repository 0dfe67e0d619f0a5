#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ep::api {

// Static description of one resource type the platform serves. The registry is immutable after
// program start, so lookups are thread-safe.
struct KindInfo {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string kind;      // "Pod"
  std::string plural;    // "pods"
  std::string singular;  // "pod"
  std::vector<std::string> shortNames;
  bool namespaced = true;
  bool hasStatus = false;  // status is a subresource: main-resource writes keep the old status
  bool builtin = false;    // a Kubernetes core kind (strategic-merge-patch applies)
  std::vector<std::string> categories;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  std::string listKind() const { return kind + "List"; }
  // Key used by the store: "pods", "deployments.apps", "devices.devices.kubeedge.io".
  std::string resource() const { return group.empty() ? plural : plural + "." + group; }
  // "" for cluster-scoped kinds.
  std::string_view scopeName() const { return namespaced ? "Namespaced" : "Cluster"; }
};

// All kinds, in discovery order.
const std::vector<KindInfo>& allKinds();
// Lookup by apiVersion + kind, e.g. ("apps/v1", "Deployment"). nullptr when unknown.
const KindInfo* findByApiVersionKind(std::string_view apiVersion, std::string_view kind);
// Lookup by group + version + plural as found in a URL path. nullptr when unknown.
const KindInfo* findByResource(std::string_view group, std::string_view version,
                               std::string_view plural);
// Lookup by what a user types on a command line: plural, singular, short name or kind, any
// case, optionally qualified with ".group" (e.g. "deploy", "pods", "Device",
// "devices.devices.kubeedge.io"). nullptr when unknown.
const KindInfo* findByUserName(std::string_view name);
// Groups served under /apis, in discovery order (excludes the core group).
std::vector<std::string> apiGroups();

}  // namespace ep::api
