// Fuzzes what the router reads from outside: the REST entry's path (any request) and Rules and
// RuleEndpoints as stored objects (anything the API accepted, or an edge cache's copy).
// Input: a path line, then JSON (an array of objects). Invariants: no crash; a parsed router
// path is normalized (re-parsing its pieces gives them back); a matched rule is a usable rest
// rule of the namespace whose source path prefixes the request path.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "common/api/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  std::string path = text.substr(0, nl);
  auto target = ep::api::parseRouterPath(path);
  if (target) {
    auto again = ep::api::parseRouterPath("/" + target->node + "/" + target->ns + target->path);
    if (!again || again->node != target->node || again->ns != target->ns ||
        again->path != target->path) {
      std::abort();
    }
  }
  if (nl == std::string::npos) return 0;
  auto doc = nlohmann::json::parse(text.substr(nl + 1), nullptr, false);
  if (!doc.is_array()) return 0;
  std::vector<nlohmann::json> items(doc.begin(), doc.end());
  auto rules = ep::api::resolveRules(items, items);
  const std::string ns = target ? target->ns : "default";
  const std::string p = ep::api::normalizeRoutePath(target ? target->path : path);
  std::string rest;
  if (const auto* r = ep::api::matchRestRule(rules, ns, p, &rest)) {
    if (!r->problem.empty() || r->ns != ns || r->sourceType != ep::api::EndpointType::kRest) {
      std::abort();
    }
    if (r->sourcePath != "/" && p.compare(0, r->sourcePath.size(), r->sourcePath) != 0)
      std::abort();
  }
  for (const auto& r : rules) (void)r.edgeTopic();
  return 0;
}
