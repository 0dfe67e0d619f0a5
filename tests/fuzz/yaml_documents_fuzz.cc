// Fuzzes the manifest reader edgectl uses for `apply -f`: multi-document YAML/JSON to JSON.
// Invariants: no crash; every document that parses is re-emitted by toYaml and parses back to
// the same JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/yaml/yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto docs = ep::yaml::parseYamlDocuments(text);
  if (!docs.isOk()) return 0;
  for (const auto& doc : *docs) {
    std::string emitted = ep::yaml::toYaml(doc);
    auto back = ep::yaml::parseYamlDocuments(emitted);
    if (!back.isOk()) std::abort();
    if (doc.is_object() && !doc.empty() && (back->size() != 1 || (*back)[0] != doc)) std::abort();
  }
  return 0;
}
