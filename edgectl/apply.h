#pragma once

// `edgectl apply -f`: create-or-patch with kubectl's last-applied-configuration semantics.

#include <string>
#include <vector>

#include "common/api/kinds.h"
#include "edgectl/context.h"

namespace ep::edgectl {

struct ApplyOptions {
  std::vector<std::string> files;  // -f arguments: files, directories, "-"
  bool recursive = false;          // -R: descend into subdirectories
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
                                 const nlohmann::json& manifest, std::string* warning);

}  // namespace ep::edgectl
