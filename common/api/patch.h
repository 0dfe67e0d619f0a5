#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string_view>

#include "common/status.h"

namespace ep::api {

// Patch application for PATCH requests and kubectl apply. All functions are pure, thread-safe,
// never throw and never modify their arguments. A target or patch nested deeper than 512 levels
// is refused with kBadRequest.

// RFC 7386 JSON merge patch (application/merge-patch+json): objects merge recursively, null
// deletes a key, anything else (arrays included) replaces.
Result<nlohmann::json> applyMergePatch(const nlohmann::json& target, const nlohmann::json& patch);

// RFC 6902 JSON patch (application/json-patch+json). A malformed patch document (not an array,
// missing or unknown "op", bad pointer syntax) is kBadRequest; an operation that cannot be
// applied (missing path, failed "test") is kInvalid. Operations run in order; the message names
// the failing operation's index. "copy" operations may copy at most 1,000,000 JSON values in
// total (kInvalid beyond that).
Result<nlohmann::json> applyJsonPatch(const nlohmann::json& target, const nlohmann::json& patch);

// Kubernetes strategic merge patch (application/strategic-merge-patch+json) for the built-in
// kinds. Strategies are chosen by field name, whatever the object's kind:
//   - maps merge recursively; null deletes a key;
//   - lists of maps merge by key: containers, initContainers, ephemeralContainers, volumes, env,
//     imagePullSecrets, resourceClaims -> name; hostAliases, podIPs, hostIPs -> ip;
//     volumeMounts -> mountPath; volumeDevices -> devicePath; ports -> containerPort (port for
//     a Service's ports);
//     conditions, addresses -> type; ownerReferences -> uid;
//     topologySpreadConstraints -> topologyKey;
//   - finalizers and podCIDRs are primitive lists merged as an ordered union;
//   - every other list is replaced.
// Directives: "$patch": "replace" | "delete" | "merge" in a map ("delete" leaves an empty map,
// as Kubernetes does); {"$patch": "replace"} as a list element replaces the list;
// {"<key>": v, "$patch": "delete"} removes the element with that merge key;
// "$setElementOrder/<field>" reorders the merged list (elements it does not mention keep their
// relative order after the mentioned ones); "$retainKeys" drops the map's keys not listed (patch
// keys outside the list are kInvalid); "$deleteFromPrimitiveList/<field>" removes values from a
// primitive list. Directives never appear in the result, and nulls inside newly added maps are
// dropped. Malformed directives and a non-object patch are kBadRequest; a list element without
// its merge key is kInvalid.
Result<nlohmann::json> applyStrategicMergePatch(const nlohmann::json& original,
                                                const nlohmann::json& patch);

// The merge key strategic merge patch uses for a list field ("" when the list is replaced or is
// a primitive union list).
std::string_view strategicMergeKey(std::string_view fieldName);

// The merge key for a list with these elements: as above, except that "ports" whose first
// element has a "port" and no "containerPort" (a Service's) are keyed by "port".
std::string_view strategicMergeKey(std::string_view fieldName, const nlohmann::json& list);

// Whether a list of scalars with this field name is merged as a set (finalizers) rather than
// replaced.
bool isPrimitiveMergeList(std::string_view fieldName);

}  // namespace ep::api
