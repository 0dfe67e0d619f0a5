#pragma once

// `edgectl apply -f`: create-or-patch with kubectl's last-applied-configuration semantics, or
// server-side apply (--server-side).

#include <string>
#include <vector>

#include "common/api/kinds.h"
#include "edgectl/context.h"

namespace ep::edgectl {

struct ApplyOptions {
  std::vector<std::string> files;  // -f arguments: files, directories, "-"
  bool recursive = false;          // -R: descend into subdirectories
  // --server-side: PATCH application/apply-patch+yaml, printed as "serverside-applied";
  // --force-conflicts takes fields other managers own. --field-manager names the manager
  // (default "kubectl", as kubectl's; client-side apply records "kubectl-client-side-apply").
  bool serverSide = false;
  bool forceConflicts = false;
  std::string fieldManager;
};

// Applies every valid document; each failure is printed as
// `error: FILE (document N): <message>`. Returns 1 if anything failed, else 0.
int runApply(Context& ctx, const ApplyOptions& options);

enum class ApplyOutcome { kCreated, kConfigured, kUnchanged };

// Applies one object (already validated, namespace resolved). Server refusals come back as
// errors whose message is the server's (with field causes); transport failures keep their
// code (kUnavailable, kTimeout). `warning` receives a note when the live object lacked the
// last-applied annotation.
Result<ApplyOutcome> applyObject(ApiTransport& api, const api::KindInfo& kind,
                                 const nlohmann::json& manifest, std::string* warning,
                                 const std::string& fieldManager = "kubectl-client-side-apply");

// Server-side apply of one object (namespace resolved) by `fieldManager`.
Status applyServerSide(ApiTransport& api, const api::KindInfo& kind, const nlohmann::json& manifest,
                       const std::string& fieldManager, bool force);

}  // namespace ep::edgectl
