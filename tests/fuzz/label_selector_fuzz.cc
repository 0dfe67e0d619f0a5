// Fuzzes the label selector string parser and the metav1.LabelSelector converter.
// Invariants: no crash; a parsed selector's toString() parses back to the same string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/api/label_selector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto sel = ep::api::parseLabelSelector(text);
  if (sel.isOk()) {
    std::string canonical = sel->toString();
    auto again = ep::api::parseLabelSelector(canonical);
    if (!again.isOk() || again->toString() != canonical) std::abort();
    std::map<std::string, std::string> labels;
    for (const auto& r : sel->requirements()) {
      labels[r.key] = r.values.empty() ? "" : r.values.front();
    }
    (void)sel->matches(labels);
    (void)sel->matches({});
  }
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) {
    auto fromJson = ep::api::labelSelectorFromJson(doc, "spec.selector");
    if (fromJson.isOk()) {
      auto back = ep::api::parseLabelSelector(fromJson->toString());
      if (!fromJson->matchesNothing() && !back.isOk()) std::abort();
    }
  }
  return 0;
}
