#pragma once

// REST paths, query strings and the names kubectl prints for kinds. Pure functions; thread-safe.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/api/kinds.h"

namespace ep::edgectl {

// /api/v1[/namespaces/NS]/PLURAL[/NAME] for the core group,
// /apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME] otherwise. `ns` is ignored for
// cluster-scoped kinds; an empty `ns` on a namespaced kind addresses all namespaces. Segments are
// percent-encoded.
std::string resourcePath(const api::KindInfo& kind, std::string_view ns,
                         std::string_view name = {});

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string percentEncode(std::string_view text);

// "?k=v&k2=v2" with encoded values, skipping pairs whose value is empty; "" when none remain.
std::string buildQuery(const std::vector<std::pair<std::string, std::string>>& params);

// What kubectl prints before "/NAME" and in messages: "pod", "deployment.apps",
// "device.devices.kubeedge.io".
std::string kindDisplayName(const api::KindInfo& kind);

// The namespace a command should use for `kind`: "" for cluster-scoped kinds.
std::string effectiveNamespace(const api::KindInfo& kind, std::string_view ns);

}  // namespace ep::edgectl
