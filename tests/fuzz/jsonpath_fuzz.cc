// libFuzzer: edgectl's JSONPath templates (-o jsonpath=), which a user types: the input up to
// the first newline is the template, the rest a JSON document (a fixed one when the rest is not
// JSON). Parsing and executing end with a result or an error, never a crash, a hang or output
// beyond the executor's limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "edgectl/jsonpath.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  std::string_view tmpl = in.substr(0, nl);
  std::string_view rest = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  auto parsed = ep::edgectl::JsonPathTemplate::parse(tmpl);
  if (!parsed.isOk()) return 0;
  nlohmann::json doc = nlohmann::json::parse(rest, nullptr, false);
  if (doc.is_discarded()) {
    doc = {{"kind", "List"},
           {"items",
            {{{"metadata", {{"name", "a"}, {"labels", {{"k", "v"}}}}},
              {"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}},
             {{"metadata", {{"name", "b"}}}, {"spec", {{"replicas", 3}}}}}}};
  }
  auto out = parsed->execute(doc);
  if (out.isOk() && out->size() > (64u << 20) + (1u << 20)) std::abort();
  return 0;
}
