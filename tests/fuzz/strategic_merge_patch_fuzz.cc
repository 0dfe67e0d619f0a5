// Fuzzes strategic merge patch, JSON merge patch and JSON patch. The input holds two JSON
// documents separated by the first newline: the original object, then the patch.
// Invariants: no crash; directives ($patch, $retainKeys, $setElementOrder/...,
// $deleteFromPrimitiveList/...) never appear in a strategic-merge result when the original had
// none; merge patch with an object patch always yields an object.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/api/patch.h"

namespace {

using nlohmann::json;

bool hasDirectiveKey(const json& v, int depth = 0) {
  if (depth > 600) return false;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string_view k = it.key();
      if (k == "$patch" || k == "$retainKeys" || k.substr(0, 17) == "$setElementOrder/" ||
          k.substr(0, 25) == "$deleteFromPrimitiveList/") {
        return true;
      }
      if (hasDirectiveKey(it.value(), depth + 1)) return true;
    }
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (hasDirectiveKey(e, depth + 1)) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  json original = json::parse(text.substr(0, nl), nullptr, false);
  json patch = json::parse(text.substr(nl + 1), nullptr, false);
  if (original.is_discarded() || patch.is_discarded()) return 0;

  auto smp = ep::api::applyStrategicMergePatch(original, patch);
  if (smp.isOk() && !hasDirectiveKey(original) && hasDirectiveKey(*smp)) std::abort();

  auto merged = ep::api::applyMergePatch(original, patch);
  if (merged.isOk() && patch.is_object() && !merged->is_object()) std::abort();

  (void)ep::api::applyJsonPatch(original, patch);
  return 0;
}
