#include "common/api/rules.h"

#include <charconv>
#include <map>

#include "common/api/names.h"

namespace ep::api {

namespace {

using Json = nlohmann::json;

std::string str(const Json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const Json& member(const Json& obj, const char* key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

EndpointType typeOf(const std::string& t) {
  if (t == "rest") return EndpointType::kRest;
  if (t == "eventbus") return EndpointType::kEventbus;
  if (t == "servicebus") return EndpointType::kServicebus;
  return EndpointType::kUnknown;
}

const char* nameOf(EndpointType t) {
  switch (t) {
    case EndpointType::kRest:
      return "rest";
    case EndpointType::kEventbus:
      return "eventbus";
    case EndpointType::kServicebus:
      return "servicebus";
    default:
      return "unknown";
  }
}

struct Endpoint {
  EndpointType type = EndpointType::kUnknown;
  uint16_t servicePort = 0;
};

uint16_t portOf(const std::string& s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) return 0;
  return static_cast<uint16_t>(v);
}

}  // namespace

std::string RouteRule::edgeTopic() const {
  return ns + "/" + sourceTopic;
}

std::string normalizeRoutePath(const std::string& path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out += "/" + path.substr(i, j - i);
    i = j;
  }
  return out.empty() ? "/" : out;
}

std::vector<RouteRule> resolveRules(const std::vector<Json>& rules,
                                    const std::vector<Json>& endpoints) {
  std::map<std::pair<std::string, std::string>, Endpoint> eps;
  for (const auto& e : endpoints) {
    if (!e.is_object()) continue;
    const Json& meta = member(e, "metadata");
    const Json& spec = member(e, "spec");
    Endpoint ep;
    ep.type = typeOf(str(spec, "ruleEndpointType"));
    ep.servicePort = portOf(str(member(spec, "properties"), "service_port"));
    eps[{str(meta, "namespace"), str(meta, "name")}] = ep;
  }
  std::vector<RouteRule> out;
  for (const auto& r : rules) {
    if (!r.is_object()) continue;
    const Json& meta = member(r, "metadata");
    const Json& spec = member(r, "spec");
    RouteRule rule;
    rule.ns = str(meta, "namespace");
    rule.name = str(meta, "name");
    const std::string source = str(spec, "source");
    const std::string target = str(spec, "target");
    const Json& sres = member(spec, "sourceResource");
    const Json& tres = member(spec, "targetResource");
    auto s = eps.find({rule.ns, source});
    auto t = eps.find({rule.ns, target});
    if (s == eps.end()) {
      rule.problem = "source RuleEndpoint \"" + source + "\" not found in namespace " + rule.ns;
    } else if (t == eps.end()) {
      rule.problem = "target RuleEndpoint \"" + target + "\" not found in namespace " + rule.ns;
    } else {
      rule.sourceType = s->second.type;
      rule.targetType = t->second.type;
      const bool restToEventbus =
          rule.sourceType == EndpointType::kRest && rule.targetType == EndpointType::kEventbus;
      const bool eventbusToRest =
          rule.sourceType == EndpointType::kEventbus && rule.targetType == EndpointType::kRest;
      const bool restToServicebus =
          rule.sourceType == EndpointType::kRest && rule.targetType == EndpointType::kServicebus;
      if (!restToEventbus && !eventbusToRest && !restToServicebus) {
        rule.problem = std::string("unsupported direction ") + nameOf(rule.sourceType) + " -> " +
                       nameOf(rule.targetType) +
                       " (supported: rest -> eventbus, eventbus -> rest, rest -> servicebus)";
      }
      if (rule.sourceType == EndpointType::kRest) {
        const std::string p = str(sres, "path");
        if (p.empty()) {
          rule.problem = "spec.sourceResource.path: required for a rest source";
        } else {
          rule.sourcePath = normalizeRoutePath(p);
        }
      } else if (rule.sourceType == EndpointType::kEventbus) {
        rule.sourceTopic = str(sres, "topic");
        rule.sourceNode = str(sres, "node_name");
        if (rule.sourceTopic.empty()) {
          rule.problem = "spec.sourceResource.topic: required for an eventbus source";
        } else if (rule.sourceNode.empty()) {
          rule.problem = "spec.sourceResource.node_name: required for an eventbus source";
        } else if (rule.edgeTopic().find_first_of("+#") != std::string::npos) {
          rule.problem = "spec.sourceResource.topic: must not contain MQTT wildcards (+, #)";
        }
      }
      if (rule.problem.empty()) {
        if (rule.targetType == EndpointType::kEventbus) {
          rule.targetTopic = str(tres, "topic");
          if (rule.targetTopic.empty()) {
            rule.problem = "spec.targetResource.topic: required for an eventbus target";
          } else if (rule.targetTopic.find_first_of("+#") != std::string::npos) {
            rule.problem = "spec.targetResource.topic: must not contain MQTT wildcards (+, #)";
          }
        } else if (rule.targetType == EndpointType::kRest) {
          rule.targetUrl = str(tres, "resource");
          if (rule.targetUrl.rfind("http://", 0) != 0 && rule.targetUrl.rfind("https://", 0) != 0) {
            rule.problem = "spec.targetResource.resource: must be an http:// or https:// URL";
          }
        } else if (rule.targetType == EndpointType::kServicebus) {
          rule.servicePort = t->second.servicePort;
          rule.targetPath = normalizeRoutePath(str(tres, "path"));
          if (rule.servicePort == 0) {
            rule.problem = "RuleEndpoint \"" + target + "\": properties.service_port is not a port";
          }
        }
      }
    }
    out.push_back(std::move(rule));
  }
  return out;
}

const RouteRule* matchRestRule(const std::vector<RouteRule>& rules, const std::string& ns,
                               const std::string& path, std::string* remainder) {
  const RouteRule* best = nullptr;
  for (const auto& r : rules) {
    if (!r.problem.empty() || r.ns != ns || r.sourceType != EndpointType::kRest) continue;
    const std::string& p = r.sourcePath;
    bool match =
        p == "/" || path == p ||
        (path.size() > p.size() && path.compare(0, p.size(), p) == 0 && path[p.size()] == '/');
    if (match && (best == nullptr || p.size() > best->sourcePath.size())) best = &r;
  }
  if (best != nullptr && remainder != nullptr) {
    *remainder =
        best->sourcePath == "/" ? (path == "/" ? "" : path) : path.substr(best->sourcePath.size());
  }
  return best;
}

std::optional<RouterTarget> parseRouterPath(const std::string& path) {
  const std::string p = normalizeRoutePath(path);
  size_t a = p.find('/', 1);
  if (a == std::string::npos) return std::nullopt;
  size_t b = p.find('/', a + 1);
  RouterTarget t;
  t.node = p.substr(1, a - 1);
  t.ns = p.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
  t.path = b == std::string::npos ? "/" : p.substr(b);
  if (!checkDns1123Subdomain(t.node).empty() || !checkDns1123Label(t.ns).empty()) {
    return std::nullopt;
  }
  return t;
}

}  // namespace ep::api
