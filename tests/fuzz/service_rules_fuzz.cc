// Fuzzes the edge service proxy's rule generation (edgecore/serviceproxy/service_rules.h) with
// cached objects as the cloud could send them. The input is one JSON document
// {"services": [...], "slices": [...]}. Invariants: no crash; every line of the iptables-restore
// input is one the proxy means to write (a table, a chain declaration, an -A or -X of one of its
// own chains, COMMIT), so no object field can inject a rule or touch another chain.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "edgecore/serviceproxy/service_rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return 0;
  std::vector<json> services, slices;
  if (auto s = doc.find("services"); s != doc.end() && s->is_array()) {
    for (const auto& v : *s) services.push_back(v);
  }
  if (auto s = doc.find("slices"); s != doc.end() && s->is_array()) {
    for (const auto& v : *s) slices.push_back(v);
  }
  auto ports = ep::edgecore::serviceproxy::computeServicePorts(services, slices, "edge-1");
  std::string rules =
      ep::edgecore::serviceproxy::renderNatRules(ports, {"EDGEPLANE-SVC-0123456789ab", "OTHER"});
  std::istringstream in(rules);
  std::string line;
  while (std::getline(in, line)) {
    bool ok = line == "*nat" || line == "COMMIT" || line.rfind(":EDGEPLANE-", 0) == 0 ||
              line.rfind("-A EDGEPLANE-", 0) == 0 || line.rfind("-X EDGEPLANE-", 0) == 0;
    if (!ok) std::abort();
  }
  return 0;
}
