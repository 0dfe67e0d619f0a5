// Fuzzes the nesting pre-scan that guards every JSON body from outside (common/api/json_limits.h).
// Invariants: nothing nlohmann would build deeper than the limit passes the scan; for text
// without NUL bytes the scan agrees with the parsed tree's depth exactly; no crash on anything.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/api/json_limits.h"
#include "common/api/object_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t maxDepth = data[0] % 8;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool deep = ep::api::jsonNestsDeeperThan(text, maxDepth);
  if (ep::api::jsonNestsDeeperThan(text, 64)) return 0;  // keep the reference parse cheap
  auto v = nlohmann::json::parse(text, nullptr, false);
  if (v.is_discarded()) return 0;
  const bool parsedDeep = ep::api::nestedDeeperThan(v, maxDepth);
  // Nothing deep slips through. nlohmann stops reading at a NUL byte, so the scan (which reads
  // on) may refuse more than it parses then; without one the two agree exactly.
  if (parsedDeep && !deep) std::abort();
  if (text.find('\0') == std::string_view::npos && deep != parsedDeep) std::abort();
  bool tooDeep = false;
  auto bounded = ep::api::parseJsonBounded(text, maxDepth, &tooDeep);
  if (tooDeep != deep || (!deep && bounded != v)) std::abort();
  return 0;
}
