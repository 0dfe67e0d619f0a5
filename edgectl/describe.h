#pragma once

// `edgectl describe`: kubectl-like human-readable descriptions. The formatting functions are
// pure (thread-safe); runDescribe talks to the server through the Context.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/api/kinds.h"
#include "edgectl/context.h"

namespace ep::edgectl {

// Describes one object. `events` is an array of core/v1 Event objects (may be empty), or null
// to omit the Events section. `nowMillis` anchors event ages. Kind-specific sections exist for
// Pod, Node, Deployment, ConfigMap and Secret; every other kind gets the generic layout (API
// Version, Kind, Metadata, Spec, Status as indented "Key:  value" lines).
std::string describeObject(const api::KindInfo& kind, const nlohmann::json& object,
                           const nlohmann::json& events, int64_t nowMillis);

// RFC 1123 with numeric zone in UTC, as kubectl prints times: "Mon, 02 Jan 2006 15:04:05 +0000".
std::string formatRfc1123(int64_t unixMillis);

struct DescribeOptions {
  std::vector<std::string> args;  // KIND [NAME...] | KIND/NAME...
  std::string labelSelector;
  bool showEvents = true;
};

// Returns the process exit status.
int runDescribe(Context& ctx, const DescribeOptions& options);

}  // namespace ep::edgectl
