#pragma once

// KubeEdge's rules.kubeedge.io/v1 Rule and RuleEndpoint as the router reads them
// (docs/rules.md), shared by cloudcore's router and edgecore's. Pure; thread-compatible.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ep::api {

enum class EndpointType { kUnknown, kRest, kEventbus, kServicebus };

// One Rule with its endpoints resolved. When `problem` is set the rule cannot carry messages
// (a missing endpoint, an unsupported direction, a missing resource key) and says why.
struct RouteRule {
  std::string ns;
  std::string name;
  EndpointType sourceType = EndpointType::kUnknown;
  EndpointType targetType = EndpointType::kUnknown;
  std::string sourcePath;    // rest source: sourceResource.path, "/a/b" (normalized)
  std::string sourceTopic;   // eventbus source: sourceResource.topic
  std::string sourceNode;    // eventbus source: sourceResource.node_name
  std::string targetTopic;   // eventbus target: targetResource.topic
  std::string targetUrl;     // rest target: targetResource.resource, http(s)://...
  uint16_t servicePort = 0;  // servicebus target: the endpoint's properties.service_port
  std::string targetPath;    // servicebus target: targetResource.path (normalized)
  std::string problem;

  // The MQTT topic edge apps publish on for an eventbus source: "{namespace}/{topic}" (KubeEdge).
  std::string edgeTopic() const;
};

// Resolves every Rule against the RuleEndpoints of its namespace. Objects that are not JSON
// objects are skipped. Directions carried: rest -> eventbus, eventbus -> rest,
// rest -> servicebus; anything else gets a `problem`.
std::vector<RouteRule> resolveRules(const std::vector<nlohmann::json>& rules,
                                    const std::vector<nlohmann::json>& endpoints);

// "/a//b/" -> "/a/b"; "" -> "/".
std::string normalizeRoutePath(const std::string& path);

// The rule a REST request to `path` (already normalized, after /NODE/NAMESPACE) in `ns` is for:
// among the usable rules with a rest source in `ns`, the one whose sourcePath is the longest
// prefix of `path` on a segment boundary ("/a" matches "/a" and "/a/b", not "/ab").
// `remainder` receives what follows the prefix ("" or "/b").
const RouteRule* matchRestRule(const std::vector<RouteRule>& rules, const std::string& ns,
                               const std::string& path, std::string* remainder);

// The router's REST entry: /NODE/NAMESPACE[/PATH]. Empty optional when it has fewer than two
// segments or a segment is not a valid name.
struct RouterTarget {
  std::string node;
  std::string ns;
  std::string path;  // normalized, "/" when absent
};
std::optional<RouterTarget> parseRouterPath(const std::string& path);

}  // namespace ep::api
