#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/api/kinds.h"

namespace ep::api {

// One column of a server-side Table (meta.k8s.io/v1 TableColumnDefinition).
struct Column {
  std::string name;         // as Kubernetes names it ("Nominated Node"); kubectl upper-cases it
  std::string type;         // "string" | "integer" | "date"
  std::string format;       // "name" for the NAME column, "" otherwise
  std::string description;  // short text
  int priority = 0;         // 0: default output, 1: -o wide only
};

// Table printing like Kubernetes' built-in printers (kubectl v1.32 columns). Pure functions,
// thread-safe, never throw.
//
//   Pod         Name Ready Status Restarts Age | IP Node "Nominated Node" "Readiness Gates"
//   Node        Name Status Roles Age Version | Internal-IP External-IP OS-Image Kernel-Version
//               Container-Runtime
//   Namespace   Name Status Age
//   ConfigMap   Name Data Age
//   Secret      Name Type Data Age
//   Event       "Last Seen" Type Reason Object |Subobject Source| Message |"First Seen" Count Name|
//   Deployment  Name Ready Up-to-date Available Age | Containers Images Selector
//   ReplicaSet  Name Desired Current Ready Age | Containers Images Selector
//   others      Name Age
// (after '|': priority 1). The returned reference stays valid for the program's lifetime.
const std::vector<Column>& tableColumns(const KindInfo& kind);

// The row cells for `obj`, one per column of tableColumns(kind) in the same order (wide columns
// included, as the API server always sends them). Integer cells are JSON numbers, others
// strings. Ages are relative to `nowMillis` (Unix ms) and "<unknown>" when the timestamp is
// missing. Pod Restarts is a number, or "N (AGE ago)" when a container's last termination time
// is known, as kubectl shows it.
nlohmann::json tableCells(const KindInfo& kind, const nlohmann::json& obj, int64_t nowMillis);

}  // namespace ep::api
