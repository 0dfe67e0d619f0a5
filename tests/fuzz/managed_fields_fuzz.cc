// Fuzzes field ownership and server-side apply. The input holds two JSON documents separated by
// the first newline: the live object (with any managedFields), then the applied configuration.
// Invariants: no crash; an apply result carries valid managedFields with exactly one Apply entry
// of the applier; reapplying the same configuration to the result is accepted and changes
// nothing; recordUpdate keeps valid managedFields valid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/api/managed_fields.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  json live = json::parse(text.substr(0, nl), nullptr, false);
  json config = json::parse(text.substr(nl + 1), nullptr, false);
  if (live.is_discarded() || config.is_discarded() || !live.is_object()) return 0;
  const ep::api::ManagerInfo who{"fuzz", "v1", "2026-01-01T00:00:00Z"};
  for (bool builtin : {true, false}) {
    json before = live.contains("metadata") && live["metadata"].is_object()
                      ? live["metadata"].value("managedFields", json::array())
                      : json::array();
    json managed = ep::api::recordUpdate(before, &live, config, who, builtin);
    // Valid in, valid out (an invalid list comes back as it was).
    if (ep::api::validManagedFields(before) && !ep::api::validManagedFields(managed)) std::abort();
    (void)ep::api::fieldSetPaths(ep::api::fieldSetOf(config, builtin));
    for (bool force : {false, true}) {
      auto applied = ep::api::applyConfiguration(live, config, who, force, builtin);
      if (!applied.isOk()) continue;
      const json& mf = (*applied)["metadata"]["managedFields"];
      if (!ep::api::validManagedFields(mf)) std::abort();
      int mine = 0;
      for (const auto& e : mf) mine += e["manager"] == "fuzz" && e["operation"] == "Apply";
      if (mine != 1) std::abort();
      auto again = ep::api::applyConfiguration(*applied, config, who, false, builtin);
      if (!again.isOk() || *again != *applied) std::abort();
    }
  }
  return 0;
}
