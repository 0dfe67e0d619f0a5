// Fuzzes the field checks every API write body goes through (common/api/field_validation.h).
// Invariants: the duplicate scan reports at most 100 paths; pruning a parsed body for any kind
// leaves nothing unknown (a second pruning finds nothing); no crash on anything.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/api/field_validation.h"
#include "common/api/json_limits.h"
#include "common/api/kinds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& kinds = ep::api::allKinds();
  const ep::api::KindInfo& kind = kinds[data[0] % kinds.size()];
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto duplicates = ep::api::duplicateFields(text);
  if (duplicates.size() > 100) std::abort();
  bool tooDeep = false;
  auto body = ep::api::parseJsonBounded(text, 512, &tooDeep);
  if (tooDeep || body.is_discarded()) return 0;
  (void)ep::api::pruneUnknownFields(kind, body);
  if (!ep::api::pruneUnknownFields(kind, body).empty()) std::abort();
  return 0;
}
