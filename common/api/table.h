#pragma once

// Server-side Table (meta.k8s.io/v1) rendering shared by cloudcore's API server and edgecore's
// local API, on top of the column/cell printers in printers.h. Pure functions: thread-safe.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/api/kinds.h"

namespace ep::api {

// The columnDefinitions of a Table for kind.
nlohmann::json tableColumnsJson(const KindInfo& kind);

// One row for obj: its cells (ages relative to nowMillis) and, per includeObject, the object:
// "Object" the whole object, "None" nothing, anything else ("Metadata") a PartialObjectMetadata.
nlohmann::json tableRowJson(const KindInfo& kind, const nlohmann::json& obj, int64_t nowMillis,
                            std::string_view includeObject);

// A Table of items. metadata carries resourceVersion and continue when not empty;
// columnDefinitions is empty unless withColumns (watch events after the first one).
nlohmann::json tableJson(const KindInfo& kind, const std::vector<nlohmann::json>& items,
                         int64_t nowMillis, std::string_view includeObject,
                         const std::string& resourceVersion, const std::string& continueToken,
                         bool withColumns);

}  // namespace ep::api
