// Fuzzes object validation and table printing. The input is one JSON document validated as a
// Pod and a Deployment (and printed as every kind). Invariants: no crash; validating an update
// from an object to itself reports nothing for Pods and Deployments.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/api/kinds.h"
#include "common/api/printers.h"
#include "common/api/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json obj = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) return 0;
  for (const char* name : {"pods", "deployments"}) {
    const ep::api::KindInfo* kind = ep::api::findByUserName(name);
    if (kind == nullptr) std::abort();
    auto errs = ep::api::validateObject(*kind, obj);
    for (const auto& e : errs) {
      if (e.reason.empty() || e.message.empty()) std::abort();
    }
    auto upd = ep::api::validateUpdate(*kind, obj, obj);
    if (!upd.empty() && upd.front().message.find("nested too deeply") == std::string::npos) {
      std::abort();
    }
  }
  for (const auto& kind : ep::api::allKinds()) {
    (void)ep::api::validateObject(kind, obj);
    auto cells = ep::api::tableCells(kind, obj, 1'700'000'000'000);
    if (cells.size() != ep::api::tableColumns(kind).size()) std::abort();
  }
  return 0;
}
