#include "common/api/table.h"

#include <nlohmann/json.hpp>

#include "common/api/printers.h"

namespace ep::api {

using Json = nlohmann::json;

Json tableColumnsJson(const KindInfo& kind) {
  Json cols = Json::array();
  for (const auto& c : tableColumns(kind)) {
    cols.push_back({{"name", c.name},
                    {"type", c.type},
                    {"format", c.format},
                    {"description", c.description},
                    {"priority", c.priority}});
  }
  return cols;
}

Json tableRowJson(const KindInfo& kind, const Json& obj, int64_t nowMillis,
                  std::string_view includeObject) {
  Json row = {{"cells", tableCells(kind, obj, nowMillis)}};
  if (includeObject == "Object") {
    row["object"] = obj;
  } else if (includeObject != "None") {
    row["object"] = {{"kind", "PartialObjectMetadata"},
                     {"apiVersion", "meta.k8s.io/v1"},
                     {"metadata", obj.value("metadata", Json::object())}};
  }
  return row;
}

Json tableJson(const KindInfo& kind, const std::vector<Json>& items, int64_t nowMillis,
               std::string_view includeObject, const std::string& resourceVersion,
               const std::string& continueToken, bool withColumns) {
  Json rows = Json::array();
  for (const auto& o : items) rows.push_back(tableRowJson(kind, o, nowMillis, includeObject));
  Json meta = Json::object();
  if (!resourceVersion.empty()) meta["resourceVersion"] = resourceVersion;
  if (!continueToken.empty()) meta["continue"] = continueToken;
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", std::move(meta)},
          {"columnDefinitions", withColumns ? tableColumnsJson(kind) : Json::array()},
          {"rows", std::move(rows)}};
}

}  // namespace ep::api
