#include "edgectl/apply.h"

#include <ostream>

#include "edgectl/apply_patch.h"
#include "edgectl/manifest.h"
#include "edgectl/paths.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

namespace {

bool isTransportFailure(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTimeout;
}

Status serverFailure(const ApiResponse& r) {
  // kBadRequest keeps server refusals apart from transport failures.
  return badRequestError(serverMessageWithCauses(r));
}

}  // namespace

Result<ApplyOutcome> applyObject(ApiTransport& api, const api::KindInfo& kind, const json& manifest,
                                 std::string* warning, const std::string& fieldManager) {
  std::string ns = effectiveNamespace(kind, stringAt(manifest, {"metadata", "namespace"}));
  std::string name = stringAt(manifest, {"metadata", "name"});
  const std::string query = "?fieldManager=" + percentEncode(fieldManager);
  auto live = api.call("GET", resourcePath(kind, ns, name));
  if (!live) return live.status();
  if (live->status == 404) {
    json body = withLastApplied(manifest);
    auto created = api.call("POST", resourcePath(kind, ns) + query, &body);
    if (!created) return created.status();
    if (!created->ok()) return serverFailure(*created);
    return ApplyOutcome::kCreated;
  }
  if (!live->ok()) return serverFailure(*live);
  ApplyPlan plan = planApply(manifest, live->body);
  if (!plan.hadLastApplied && warning) {
    *warning = "Warning: resource " + kind.resource() + "/" + name + " is missing the " +
               std::string(kLastAppliedAnnotation) +
               " annotation which is required by edgectl apply. The missing annotation will be "
               "patched automatically.";
  }
  if (plan.unchanged) return ApplyOutcome::kUnchanged;
  auto patched = api.call("PATCH", resourcePath(kind, ns, name) + query, &plan.patch, kMergePatch);
  if (!patched) return patched.status();
  if (!patched->ok()) return serverFailure(*patched);
  return ApplyOutcome::kConfigured;
}

Status applyServerSide(ApiTransport& api, const api::KindInfo& kind, const json& manifest,
                       const std::string& fieldManager, bool force) {
  std::string ns = effectiveNamespace(kind, stringAt(manifest, {"metadata", "namespace"}));
  std::string name = stringAt(manifest, {"metadata", "name"});
  std::string path = resourcePath(kind, ns, name) + "?fieldManager=" + percentEncode(fieldManager) +
                     "&force=" + (force ? "true" : "false");
  auto applied = api.call("PATCH", path, &manifest, kApplyPatch);
  if (!applied) return applied.status();
  if (!applied->ok()) {
    Status failure = serverFailure(*applied);
    if (applied->status != 409) return failure;
    return badRequestError(failure.message() +
                           "\nRe-run with --force-conflicts to take these fields, or leave them "
                           "out of the manifest to keep their current managers.");
  }
  return Status::ok();
}

int runApply(Context& ctx, const ApplyOptions& options) {
  std::ostream& out = *ctx.out;
  std::ostream& err = *ctx.err;
  if (options.files.empty()) {
    err << "error: must specify one of -f and -k\n";
    return 1;
  }
  ManifestSet set = readManifests(options.files, options.recursive, *ctx.in);
  int rc = 0;
  for (const auto& e : set.errors) {
    err << "error: " << e << "\n";
    rc = 1;
  }
  if (set.docs.empty()) {
    if (rc == 0) err << "error: no objects passed to apply\n";
    return 1;
  }
  for (const auto& doc : set.docs) {
    std::string where = doc.source + " (document " + std::to_string(doc.index) + ")";
    auto fail = [&](const std::string& message) {
      err << "error: " << where << ": " << message << "\n";
      rc = 1;
    };
    if (Status st = checkManifestObject(doc.object); !st.isOk()) {
      fail(st.message());
      continue;
    }
    std::string apiVersion = doc.object["apiVersion"].get<std::string>();
    std::string kindName = doc.object["kind"].get<std::string>();
    const api::KindInfo* kind = api::findByApiVersionKind(apiVersion, kindName);
    if (!kind) {
      fail("no matches for kind \"" + kindName + "\" in version \"" + apiVersion + "\"");
      continue;
    }
    json manifest = doc.object;
    if (kind->namespaced) {
      std::string objNs = stringAt(manifest, {"metadata", "namespace"});
      if (objNs.empty()) {
        manifest["metadata"]["namespace"] = ctx.ns;
      } else if (ctx.nsExplicit && objNs != ctx.ns) {
        fail("the namespace from the provided object \"" + objNs +
             "\" does not match the namespace \"" + ctx.ns +
             "\". You must pass '--namespace=" + objNs + "' to perform this operation.");
        continue;
      }
    } else {
      manifest["metadata"].erase("namespace");
    }
    if (options.serverSide) {
      Status applied = applyServerSide(
          *ctx.api, *kind, manifest,
          options.fieldManager.empty() ? "kubectl" : options.fieldManager, options.forceConflicts);
      if (!applied.isOk()) {
        if (isTransportFailure(applied)) {
          err << "error: " << applied.message() << "\n";
          return 1;
        }
        fail(applied.message());
        continue;
      }
      out << kindDisplayName(*kind) << "/" << stringAt(manifest, {"metadata", "name"})
          << " serverside-applied\n";
      out.flush();
      continue;
    }
    std::string warning;
    auto outcome = applyObject(
        *ctx.api, *kind, manifest, &warning,
        options.fieldManager.empty() ? "kubectl-client-side-apply" : options.fieldManager);
    if (!warning.empty()) err << warning << "\n";
    if (!outcome) {
      if (isTransportFailure(outcome.status())) {
        err << "error: " << outcome.status().message() << "\n";
        return 1;
      }
      fail(outcome.status().message());
      continue;
    }
    const char* verb = *outcome == ApplyOutcome::kCreated      ? "created"
                       : *outcome == ApplyOutcome::kConfigured ? "configured"
                                                               : "unchanged";
    out << kindDisplayName(*kind) << "/" << stringAt(manifest, {"metadata", "name"}) << " " << verb
        << "\n";
    out.flush();
  }
  return rc;
}

}  // namespace ep::edgectl
